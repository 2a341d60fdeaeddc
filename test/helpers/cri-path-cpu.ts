/**
 * Guest CPU ticks (utime + stime) of a CRI node's checkpoint path: ovmigrate-cri, the relay, and the shim of
 * container `id` (its node and its subreaper), from the guest's /proc through `sh`.
 */
export async function pathCpuTicks(sh: (script: string) => Promise<string>, id: string): Promise<Record<string, number>> {
  const out = await sh(`
    for p in $(ls /proc | grep -E '^[0-9]+$'); do
      # Not this shell nor its subshells: their command line holds the patterns below.
      [ "$p" = "$$" ] && continue
      [ "$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status 2>/dev/null)" = "$$" ] && continue
      cmd=$(tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null) || continue
      case "$cmd" in
        *dist/shim/cri/main.js*) k=cri ;;
        *relay-main.js*) k=relay ;;
        *"-id ${id}"*) k=shim ;;
        *) continue ;;
      esac
      echo "$k $(cut -d' ' -f14,15 /proc/$p/stat 2>/dev/null)"
    done`);
  const ticks: Record<string, number> = { cri: 0, relay: 0, shim: 0 };
  for (const line of out.split('\n').filter(Boolean)) {
    const [k, u, s] = line.split(' ');
    ticks[k] += Number(u) + Number(s);
  }
  return ticks;
}
