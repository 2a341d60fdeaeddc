/**
 * `make bench`, the CRI node's guest CPU: in one lab guest made a CRI node
 * (containerd 1.6, ovmigrate-cri, crictl) with `ovmigrate serve` on the host,
 *  - `crictl checkpoint --export` of one 64 MiB container three ways: the
 *    host writes the archive and the guest links it (location on the share's
 *    mount), the host writes it and the guest's kernel copies it (location on
 *    the guest's tmpfs), and the images through the guest (metadata too large
 *    for one backend request: the proxy tars them). Guest CPU seconds of
 *    ovmigrate-cri, the shim and the relay, wall time, and ratios to the last;
 *  - ovmigrate-cri's CPU under kubelet-style polling in the guest, beside
 *    containerd's for the same calls, and its idle CPU before and after
 *    (OVMIGRATE_CRI_BEFORE=<checkout with dist/> adds an older build's).
 * cri-faults.test.ts no longer measures the polling; cri-checkpoint.test.ts
 * still prints the checkpoint's guest CPU (its 64 MiB container stays until
 * its deadline case is shown to pass with a small one).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { guestSh } from '../helpers/cli.js';
import { pathCpuTicks } from '../helpers/cri-path-cpu.js';
import { downTestGuests, labUp } from '../helpers/lab-guests.js';
import { ServedBackend } from '../helpers/served-backend.js';
import { BUSYBOX_IMAGE } from '../lab/busybox-image.js';
import { GUEST_CRI_LOG, GUEST_CRI_PID, GUEST_CRI_SOCKET, startGuestCri } from '../lab/cri-node.js';
import { projectRoot } from '../lab/paths.js';
import { median } from './median.js';

const PROGRAMS = path.join(projectRoot, 'test', 'programs');
const POLL = path.join(projectRoot, 'dist', 'test', 'bench', 'cri-poll-main.js');
const HOG_MIB = 64;
/** Checkpoints of each way (OVMIGRATE_CRI_BENCH_REPS); medians are printed. */
const REPS = Number(process.env.OVMIGRATE_CRI_BENCH_REPS ?? 3);
const POLL_ROUNDS = 20;
/** The guest's tmpfs: an archive there is copied in by the guest's kernel. */
const OUT = '/var/lib/ovm-cribench';
/** TCG on a loaded host. */
const SLOW_S = 900;

interface Sample {
  wallS: number;
  cpu: Record<'cri' | 'shim' | 'relay', number>;
  byHost: boolean;
}

async function main(): Promise<void> {
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
  const root = fs.mkdtempSync('/var/tmp/ovmigrate-cri-bench-');
  const share = path.join(root, 'share');
  const images = path.join(share, 'images');
  const onShare = path.join(share, 'checkpoints');
  const staging = path.join(root, 'staging');
  for (const d of [share, images, onShare, staging]) fs.mkdirSync(d, { recursive: true });
  let backend: ServedBackend | undefined;
  try {
    progress('booting a guest, a CRI node in it, ovmigrate serve');
    const guest = await labUp('cbench', ['--share', share]);
    const sh = (script: string, timeoutS = SLOW_S) => guestSh(guest.name, script, timeoutS);
    execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, 'hog'), path.join(PROGRAMS, 'hog.c')]);
    await startGuestCri(guest.name, { work: path.join(share, '.cri-images'), line: '1.6' });
    await sh(`mkdir -p /etc/ovmigrate ${OUT} && echo '${JSON.stringify({ images })}' > /etc/ovmigrate/shim.json`);
    backend = new ServedBackend(guest.name, images, staging);
    await backend.start();

    fs.writeFileSync(path.join(share, 'pod.json'), JSON.stringify({
      metadata: { name: 'cribench', namespace: 'default', uid: `uid-cribench-${process.pid}`, attempt: 0 },
      log_directory: '/var/log/ovm-cribench',
      linux: { cgroup_parent: '/ovm-cribench', security_context: { namespace_options: { network: 2, pid: 1 } } },
    }));
    fs.writeFileSync(path.join(share, 'hog.json'), JSON.stringify({
      metadata: { name: 'hog' }, image: { image: BUSYBOX_IMAGE }, log_path: 'hog.log',
      command: ['sh', '-c', `/hog ${HOG_MIB} >/dev/null & while true; do sleep 1; done`],
      mounts: [{ container_path: '/hog', host_path: path.join(share, 'hog'), readonly: true }],
    }));
    progress(`a pod with a ${HOG_MIB} MiB container`);
    const pod = (await sh(`crictl -t 300s runp ${share}/pod.json`)).trim();
    const id = (await sh(`crictl -t 300s create ${pod} ${share}/hog.json ${share}/pod.json`)).trim();
    await sh(`crictl -t 300s start ${id}`);
    await sh(`for i in $(seq 600); do [ "$(cat /sys/fs/cgroup/ovm-cribench/${id}/memory.current 2>/dev/null || echo 0)" -gt ${HOG_MIB << 20} ] && break; sleep 0.5; done; sleep 2`);

    const ticks = () => pathCpuTicks(sh, id);
    const hz = Number((await sh('getconf CLK_TCK')).trim()) || 100;
    const checkpoint = async (location: string): Promise<Sample> => {
      const before = await ticks();
      const t0 = Date.now();
      await sh(`crictl -t 600s checkpoint --export=${location} ${id} >/dev/null`);
      const wallS = (Date.now() - t0) / 1000;
      const after = await ticks();
      const line = (await sh(`grep -F '${location} in' ${GUEST_CRI_LOG} | tail -1`)).trim();
      await sh(`rm -f ${location}`);
      const cpu = { cri: (after.cri - before.cri) / hz, shim: (after.shim - before.shim) / hz, relay: (after.relay - before.relay) / hz };
      return { wallS, cpu, byHost: line.includes('the archive written by the host') };
    };

    const ways = [
      { label: 'host archive, linked on the share', location: `${onShare}/c.tar`, samples: [] as Sample[] },
      { label: 'host archive, copied by the guest kernel', location: `${OUT}/c.tar`, samples: [] as Sample[] },
      { label: 'images through the guest (metadata too large)', location: `${OUT}/c-guest.tar`, samples: [] as Sample[] },
    ];
    for (let rep = 1; rep <= REPS; rep++) {
      for (const w of ways) {
        progress(`${w.label} #${rep}`);
        const big = w === ways[2];
        // A rw layer past what one backend request carries sends the images through the guest.
        if (big) await sh(`crictl exec ${id} sh -c 'head -c 1300000 /dev/urandom > /big'`);
        try {
          w.samples.push(await checkpoint(w.location));
        } finally {
          if (big) await sh(`crictl exec ${id} rm -f /big`);
        }
      }
    }

    const total = (x: Sample) => x.cpu.cri + x.cpu.shim + x.cpu.relay;
    const through = median(ways[2].samples.map(total));
    console.log(`cri: crictl checkpoint --export of a ${HOG_MIB} MiB container through ovmigrate-cri, guest CPU seconds (ovmigrate-cri + shim + relay); medians of ${REPS}`);
    for (const w of ways) {
      const m = (f: (x: Sample) => number) => median(w.samples.map(f));
      const host = w.samples.every((x) => x.byHost) ? 'host' : w.samples.some((x) => x.byHost) ? 'host/guest' : 'guest';
      console.log(`  ${w.label.padEnd(48)} wall ${m((x) => x.wallS).toFixed(2).padStart(6)} s   CPU ${m(total).toFixed(2).padStart(5)} s`
        + ` (cri ${m((x) => x.cpu.cri).toFixed(2)}, shim ${m((x) => x.cpu.shim).toFixed(2)}, relay ${m((x) => x.cpu.relay).toFixed(2)})`
        + `   archive by the ${host}   ${(through / m(total)).toFixed(1)}x less than through the guest`);
    }

    progress('kubelet-style polling');
    await pollingReport(sh);
  } finally {
    await backend?.stop();
    await downTestGuests();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/**
 * ovmigrate-cri's CPU per 100 forwarded calls of the kubelet's polling in the guest, beside containerd's for the same
 * calls, and its idle CPU over 10 s before and after.
 */
async function pollingReport(sh: (script: string, timeoutS?: number) => Promise<string>): Promise<void> {
  const containerdPid = '$(pgrep -o -x containerd)';
  const idle = async (pidFile: string) => {
    const t = await sh(`p=$(cat ${pidFile}); a=$(cut -d' ' -f14,15 /proc/$p/stat); sleep 10; b=$(cut -d' ' -f14,15 /proc/$p/stat); echo $a $b`);
    const [u0, s0, u1, s1] = t.trim().split(/\s+/).map(Number);
    return (u1 + s1 - u0 - s0) / 10;
  };
  const report = async (what: string, socket: string, pidFile: string) => {
    const idleBefore = await idle(pidFile);
    const m = JSON.parse(await sh(`node ${POLL} ${socket} $(cat ${pidFile}),${containerdPid} ${POLL_ROUNDS}`)) as { calls: number; cpuS: number[] };
    const idleAfter = await idle(pidFile);
    const per100 = (s: number) => ((s * 1000 * 100) / m.calls).toFixed(0);
    console.log(`cri: ${what} under kubelet-style polling in the guest: ${per100(m.cpuS[0])} ms CPU per 100 calls, containerd ${per100(m.cpuS[1])} ms`
      + ` (${m.calls} calls, TCG guest); idle ${idleBefore.toFixed(1)}% of a CPU before, ${idleAfter.toFixed(1)}% after`);
  };
  await report('ovmigrate-cri (this build)', GUEST_CRI_SOCKET, GUEST_CRI_PID);
  const before = process.env.OVMIGRATE_CRI_BEFORE;
  if (!before) return;
  const sock = '/run/ovm-cribench-before.sock';
  await sh(`setsid node ${before}/dist/shim/cri/main.js --listen ${sock} --containerd /run/containerd/containerd.sock </dev/null >/run/ovm-cribench-before.log 2>&1 &
    echo $! > /run/ovm-cribench-before.pid
    for i in $(seq 600); do [ -S ${sock} ] && break; sleep 0.5; done`);
  try {
    await report(`ovmigrate-cri (${before})`, sock, '/run/ovm-cribench-before.pid');
  } finally {
    await sh(`kill $(cat /run/ovm-cribench-before.pid); rm -f ${sock} /run/ovm-cribench-before.pid`).catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
