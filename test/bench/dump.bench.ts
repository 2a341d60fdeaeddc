/**
 * `make bench`, dump part: the same frozen process (256 MiB and 1 GiB
 * touched) checkpointed in one run by in-guest `criu dump` and by
 * `ovmigrate dump` from the host, with the guest idle and with one of its
 * two vCPUs kept busy by a CPU hog.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { CLI, guestSh } from '../helpers/cli.js';
import { downTestGuests, labUp } from '../helpers/lab-guests.js';

const MiB = 1 << 20;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

interface Row {
  size: number;
  busy: boolean;
  criuMs: number;
  ovmMs: number;
  ovmInternalMs: number;
  pauseMs: number;
}

async function main(): Promise<void> {
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
  const out = fs.mkdtempSync('/var/tmp/ovmigrate-bench-');
  progress('booting a 3 GiB guest (room for a 1 GiB process and CRIU\'s 1 GiB of images on its tmpfs)');
  const guest = await labUp('dbench', ['--memory', '3072']);
  const rows: Row[] = [];
  try {
    for (const size of [256, 1024]) {
      progress(`touching ${size} MiB in a guest process`);
      const pid = Number((await guestSh(guest.name, `
        mkdir -p /sys/fs/cgroup/bench
        setsid sh -c 'echo $$ > /sys/fs/cgroup/bench/cgroup.procs; exec python3 -c "import os,time; b=bytearray(b\\"\\\\x5a\\")*(${size}<<20); print(os.getpid(), flush=True); time.sleep(100000)"' > /run/bench.pid 2>&1 </dev/null &
        while [ ! -s /run/bench.pid ]; do sleep 0.5; done; cat /run/bench.pid`, 900)).trim());
      await guestSh(guest.name, 'echo 1 > /sys/fs/cgroup/bench/cgroup.freeze; while ! grep -q "frozen 1" /sys/fs/cgroup/bench/cgroup.events; do sleep 0.1; done');
      for (const busy of [false, true]) {
        if (busy) await guestSh(guest.name, 'setsid sh -c "while :; do :; done" >/dev/null 2>&1 </dev/null & echo $! > /run/hog.pid');
        const criu: number[] = [];
        const ovm: number[] = [];
        const internal: number[] = [];
        const pause: number[] = [];
        for (let rep = 0; rep < 2; rep++) {
          progress(`${size} MiB, ${busy ? 'busy' : 'idle'} guest: in-guest criu dump #${rep + 1}`);
          const ns = (await guestSh(guest.name, `rm -rf /run/img; mkdir /run/img; t0=$(date +%s%N)
            criu dump -t ${pid} -D /run/img --leave-running --freeze-cgroup /sys/fs/cgroup/bench -o dump.log || { tail /run/img/dump.log >&2; exit 1; }
            t1=$(date +%s%N); rm -rf /run/img; echo $((t1 - t0))`, 900)).trim();
          criu.push(Number(ns) / 1e6);
          for (let i = 0; i < 2; i++) {
            progress(`${size} MiB, ${busy ? 'busy' : 'idle'} guest: ovmigrate dump #${rep * 2 + i + 1}`);
            const dir = `${out}/img`;
            fs.rmSync(dir, { recursive: true, force: true });
            const t0 = process.hrtime.bigint();
            const report = JSON.parse(execFileSync(process.execPath, [CLI, '--log-level', 'warn', 'dump', '--vm', guest.name, '--pid', String(pid), '-D', dir,
              '--leave-running', '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 }));
            ovm.push(Number(process.hrtime.bigint() - t0) / 1e6);
            internal.push(report.ms.total);
            pause.push(report.pauseMs ?? 0);
          }
        }
        if (busy) await guestSh(guest.name, 'kill $(cat /run/hog.pid)');
        rows.push({ size, busy, criuMs: median(criu), ovmMs: median(ovm), ovmInternalMs: median(internal), pauseMs: median(pause) });
      }
      await guestSh(guest.name, `kill -9 ${pid}; echo 0 > /sys/fs/cgroup/bench/cgroup.freeze`);
    }
  } finally {
    await downTestGuests();
    fs.rmSync(out, { recursive: true, force: true });
  }

  const s = (ms: number) => (ms / 1000).toFixed(2).padStart(7) + ' s';
  console.log('dump benchmark: the same frozen process, in-guest `criu dump` (images to the guest\'s tmpfs) vs `ovmigrate dump` from the host');
  console.log('(images to the host\'s /var/tmp); guest: 3 GiB, 2 vCPUs under TCG; medians; ovmigrate times are whole CLI runs incl. node start');
  console.log('  touched  guest   criu in guest   ovmigrate  (in-process, VM pause)   speed-up   ovmigrate throughput');
  for (const r of rows) {
    console.log(`  ${String(r.size).padStart(4)} MiB  ${r.busy ? 'busy' : 'idle'}  ${s(r.criuMs)}      ${s(r.ovmMs)}  (${s(r.ovmInternalMs)}, ${r.pauseMs.toFixed(0).padStart(3)} ms)   ` +
      `${(r.criuMs / r.ovmMs).toFixed(1).padStart(6)}x   ${((r.size * MiB) / (r.ovmMs / 1000) / 1e9).toFixed(2)} GB/s`);
  }
  console.log('busy: one of the guest\'s two vCPUs runs a CPU hog. This machine has 2 cores, so QEMU\'s busy vCPU thread takes one of');
  console.log('them from the host side too; a fully busy guest would starve ovmigrate of CPU as well, which is why one vCPU, not both.');
  for (const size of [256, 1024]) {
    const idle = rows.find((r) => r.size === size && !r.busy)!;
    const busy = rows.find((r) => r.size === size && r.busy)!;
    console.log(`  ${String(size).padStart(4)} MiB: ovmigrate ${(idle.criuMs / idle.ovmMs).toFixed(1)}x faster than criu (target >= 20x); ` +
      `busy/idle: ovmigrate ${(busy.ovmMs / idle.ovmMs).toFixed(2)}x (target <= 1.1x), criu ${(busy.criuMs / idle.criuMs).toFixed(2)}x`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
