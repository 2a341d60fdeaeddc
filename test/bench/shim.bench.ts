/**
 * `make bench`, shim part: `ctr task checkpoint` of the same 256 MiB
 * container run by containerd's runc shim (CRIU in the guest) and by
 * containerd-shim-ovmigrate-v1 (the dump made by `ovmigrate serve` on the
 * host), in one run: total time, time the container was frozen, and guest
 * CPU time spent, with ratios.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, guestSh } from '../helpers/cli.js';
import { startGuestContainerd } from '../lab/containerd.js';
import { downTestGuests, labUp } from '../helpers/lab-guests.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';
import { median } from './median.js';

const PROGRAMS = path.resolve(__dirname, '..', '..', '..', 'test', 'programs');
const REPS = 3;

interface Sample {
  totalS: number;
  frozenS: number;
  guestCpuS: number;
}

async function main(): Promise<void> {
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
  const share = fs.mkdtempSync('/var/tmp/ovmigrate-shim-bench-');
  // A share of its own: the backend's staging directory, beside it, stays out of the guest's sight.
  const imagesParent = fs.mkdtempSync('/var/tmp/ovmigrate-shim-bench-images-');
  const images = path.join(imagesParent, 'images');
  fs.mkdirSync(images);
  let serve: ChildProcess | undefined;
  try {
    progress('booting a 3 GiB guest, containerd with both shims, ovmigrate serve');
    const guest = await labUp('sbench', ['--memory', '3072', '--share', share, '--share', images]);
    execFileSync('gcc', ['-O1', '-static', '-o', `${share}/hog`, path.join(PROGRAMS, 'hog.c')]);
    await buildBusyboxImage(`${share}/busybox.tar`);
    await startGuestContainerd(guest.name);
    serve = spawn(process.execPath, [CLI, '--log-level', 'warn', 'serve', '--vm', guest.name, '--images', images], { stdio: 'ignore' });
    await guestSh(guest.name, `mkdir -p /etc/ovmigrate && echo '{"images":"${images}"}' > /etc/ovmigrate/shim.json
      ctr image import ${share}/busybox.tar >/dev/null
      for rt in runc:io.containerd.runc.v2 ovm:io.containerd.ovmigrate.v1; do
        ctr run -d --runtime \${rt#*:} --mount type=bind,src=${share}/hog,dst=/hog,options=rbind:ro ${BUSYBOX_IMAGE} hog-\${rt%%:*} /hog 256 /gaps
      done
      for c in runc ovm; do
        for i in $(seq 600); do [ "$(cat /sys/fs/cgroup/default/hog-$c/memory.current 2>/dev/null || echo 0)" -gt 268435456 ] && break; sleep 0.5; done
      done`, 900);

    /**
     * One `ctr task checkpoint`, timed in the guest, making a checkpoint image as containerd does by default (ctr 1.6
     * passes --image-path and --work-path to runc's shims only); guest CPU from /proc/stat (all CPUs, not idle or
     * iowait), in USER_HZ ticks. The image is removed afterwards.
     */
    const checkpoint = async (id: string): Promise<{ totalS: number; guestCpuS: number }> => {
      const out = await guestSh(guest.name, `
        busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
        c0=$(busy); t0=$(date +%s%N)
        ctr task checkpoint ${id} >&2
        t1=$(date +%s%N); c1=$(busy)
        ctr image ls -q | grep "^containerd.io/checkpoint/${id}:" | xargs -r ctr image rm >/dev/null
        echo $((t1 - t0)) $((c1 - c0))`, 900);
      const [ns, ticks] = out.trim().split(' ').map(Number);
      return { totalS: ns / 1e9, guestCpuS: ticks / 100 };
    };

    /**
     * How long the container was kept from running, seen from inside: the longest wake-up gap its hog logged while
     * the checkpoint ran (it wakes every 20 ms; the log is emptied before each checkpoint). The same measure for both
     * shims: containerd's client pauses the task around the whole checkpoint either way.
     */
    const gaps = (id: string) => `/run/containerd/io.containerd.runtime.v2.task/default/${id}/rootfs/gaps`;
    const longestGapS = async (id: string): Promise<number> =>
      Number((await guestSh(guest.name, `sort -n ${gaps(id)} | tail -1`)).trim() || NaN) / 1000;

    const runc: Sample[] = [];
    const ovm: Sample[] = [];
    for (let rep = 1; rep <= REPS; rep++) {
      for (const [label, id, samples] of [
        ['runc shim (CRIU in the guest)', 'hog-runc', runc],
        ['ovmigrate shim (dump from the host)', 'hog-ovm', ovm],
      ] as const) {
        progress(`${label} #${rep}`);
        await guestSh(guest.name, `: > ${gaps(id)}`);
        samples.push({ ...(await checkpoint(id)), frozenS: await longestGapS(id) });
      }
    }

    const m = (xs: Sample[], k: keyof Sample) => median(xs.map((x) => x[k]));
    const s = (v: number) => `${v.toFixed(2)} s`;
    console.log(`shim: ctr task checkpoint of a 256 MiB container (busybox + hog) into a containerd checkpoint image; medians of ${REPS}`);
    for (const [label, k] of [['total', 'totalS'], ['frozen', 'frozenS'], ['guest CPU', 'guestCpuS']] as const) {
      const a = m(runc, k);
      const b = m(ovm, k);
      console.log(`  ${label.padEnd(10)} runc shim + CRIU ${s(a).padStart(9)}   ovmigrate shim ${s(b).padStart(9)}   ratio ${(a / b).toFixed(1)}x`);
    }
  } finally {
    serve?.kill('SIGKILL');
    await downTestGuests();
    fs.rmSync(share, { recursive: true, force: true });
    fs.rmSync(imagesParent, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
