/**
 * `make bench`, dump part: the same frozen process (256 MiB and 1 GiB
 * touched) checkpointed in one run by in-guest `criu dump` and by
 * `ovmigrate dump` from the host, with the guest idle and with one of its
 * two vCPUs kept busy by a CPU hog.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { GuestRam } from '../../introspect/backend/index.js';
import { readContainerSpec } from '../../introspect/dump/container.js';
import { FileMemory } from '../../introspect/memory/physical-memory.js';
import { CLI, guestSh } from '../helpers/cli.js';
import { startGuestContainerd } from '../lab/containerd.js';
import { UpResult, downTestGuests, labUp } from '../helpers/lab-guests.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';
import { median } from './median.js';

const MiB = 1 << 20;
const PROGRAMS = path.resolve(__dirname, '..', '..', '..', 'test', 'programs');

interface Row {
  size: number;
  busy: boolean;
  criuLocal: number;
  criuShared: number;
  ovm: number;
  ovmCli: number;
  pause: number;
}

const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

async function main(): Promise<void> {
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
  const share = fs.mkdtempSync('/var/tmp/ovmigrate-bench-');
  progress('booting a 3 GiB guest (room for a 1 GiB process and CRIU\'s 1 GiB of images on its tmpfs)');
  const guest: UpResult = await labUp('dbench', ['--memory', '3072', '--share', share]);
  // Read as the backend (`ovmigrate serve`) reads: attached once, the tree found from fresh RAM at each dump
  // (CRIU and runc change kernel objects between dumps), the VM paused over a QMP connection of the dump's own.
  const ram = new GuestRam({
    open: async () => new FileMemory(guest.memoryFile, guest.layout.map((s) => ({ gpa: BigInt(s.gpa), size: BigInt(s.size), fileOffset: BigInt(s.fileOffset) }))),
    qmpSocket: guest.qmpSocket,
  });
  const rows: Row[] = [];
  let container: { runc: number; ovm: number; cli: number } | undefined;
  try {
    for (const size of [256, 1024]) {
      progress(`touching ${size} MiB in a guest process`);
      const pid = Number((await guestSh(guest.name, `
        mkdir -p /sys/fs/cgroup/bench; rm -f /run/bench.pid
        setsid sh -c 'echo $$ > /sys/fs/cgroup/bench/cgroup.procs; exec python3 -c "import os,time; b=bytearray(b\\"\\\\x5a\\")*(${size}<<20); print(os.getpid(), flush=True); time.sleep(100000)"' > /run/bench.pid 2>&1 </dev/null &
        while [ ! -s /run/bench.pid ]; do sleep 0.5; done; cat /run/bench.pid`, 900)).trim());
      await guestSh(guest.name, 'echo 1 > /sys/fs/cgroup/bench/cgroup.freeze; while ! grep -q "frozen 1" /sys/fs/cgroup/bench/cgroup.events; do sleep 0.1; done');
      const criu = async (dir: string) => Number((await guestSh(guest.name, `rm -rf ${dir}; mkdir ${dir}; t0=$(date +%s%N)
        criu dump -t ${pid} -D ${dir} --leave-running --freeze-cgroup /sys/fs/cgroup/bench -o dump.log || { tail ${dir}/dump.log >&2; exit 1; }
        t1=$(date +%s%N); rm -rf ${dir}; echo $((t1 - t0))`, 1800)).trim()) / 1e9;
      progress(`${size} MiB: warming up criu`);
      await criu('/run/img');
      for (const busy of [false, true]) {
        if (busy) await guestSh(guest.name, 'setsid sh -c "while :; do :; done" >/dev/null 2>&1 </dev/null & echo $! > /run/hog.pid');
        const label = `${size} MiB, ${busy ? 'busy' : 'idle'} guest`;
        const local: number[] = [];
        const ovm: number[] = [];
        const pauses: number[] = [];
        for (let rep = 0; rep < 3; rep++) {
          progress(`${label}: in-guest criu dump to its tmpfs #${rep + 1}`);
          local.push(await criu('/run/img'));
          progress(`${label}: ovmigrate dump #${rep + 1}`);
          fs.rmSync(`${share}/img`, { recursive: true, force: true });
          const t0 = process.hrtime.bigint();
          // The cgroup holds this one process, as `criu dump -t PID` takes it.
          const report = await ram.dump('/bench', `${share}/img`, undefined);
          ovm.push(secs(t0));
          pauses.push(report.pauseMs ?? 0);
        }
        progress(`${label}: in-guest criu dump to the shared directory`);
        const shared = await criu(`${share}/criu-img`);
        progress(`${label}: ovmigrate dump, the whole CLI`);
        fs.rmSync(`${share}/img`, { recursive: true, force: true });
        const t0 = process.hrtime.bigint();
        execFileSync(process.execPath, [CLI, '--log-level', 'warn', 'dump', '--vm', guest.name, '--pid', String(pid), '-D', `${share}/img`, '--leave-running'],
          { stdio: 'ignore' });
        const cli = secs(t0);
        fs.rmSync(`${share}/img`, { recursive: true, force: true });
        if (busy) await guestSh(guest.name, 'kill $(cat /run/hog.pid)');
        rows.push({ size, busy, criuLocal: median(local), criuShared: shared, ovm: median(ovm), ovmCli: cli, pause: median(pauses) });
      }
      await guestSh(guest.name, `kill -9 ${pid}; echo 0 > /sys/fs/cgroup/bench/cgroup.freeze`);
    }
    container = await containerPart(guest, ram, share, progress);
  } finally {
    ram.reset();
    await downTestGuests();
    fs.rmSync(share, { recursive: true, force: true });
  }

  const s = (x: number) => `${x.toFixed(2).padStart(6)} s`;
  console.log('dump benchmark: one frozen process, in-guest `criu dump` vs `ovmigrate dump` from the host; guest: 3 GiB, 2 vCPUs, TCG');
  console.log('  criu local:  images to the guest\'s own tmpfs (best case for CRIU; a migration must still move them out)');
  console.log('  criu shared: images to the directory the guest shares with the host (virtio-9p), where a migration needs them');
  console.log('  ovmigrate:   images to that same directory, from the host; backend already attached (as `ovmigrate serve` is);');
  console.log('               "cli" is one whole `ovmigrate dump` run (node start and attach included). Medians of 3, shared and cli: 1 run.');
  console.log('  touched  guest   criu local  criu shared   ovmigrate  (VM pause)   ovmigrate cli   speed-up local  shared   throughput');
  for (const r of rows) {
    console.log(`  ${String(r.size).padStart(4)} MiB  ${r.busy ? 'busy' : 'idle'}  ${s(r.criuLocal)}   ${s(r.criuShared)}    ${s(r.ovm)}  (${r.pause.toFixed(0).padStart(3)} ms)   ` +
      `${s(r.ovmCli)}        ${(r.criuLocal / r.ovm).toFixed(1).padStart(5)}x  ${(r.criuShared / r.ovm).toFixed(1).padStart(5)}x   ` +
      `${((r.size * MiB) / r.ovm / 1e9).toFixed(2)} GB/s`);
  }
  console.log('busy: one of the guest\'s two vCPUs runs a CPU hog. This machine has 2 cores, so QEMU\'s busy vCPU thread takes one of');
  console.log('them from the host side too; a fully busy guest would starve ovmigrate of CPU as well, which is why one vCPU, not both.');
  if (container) {
    console.log(`container (runc, made by containerd; 256 MiB touched; images to the guest's tmpfs for runc, to the shared directory for ovmigrate):`);
    console.log(`  in-guest runc checkpoint ${s(container.runc)}   ovmigrate dump --container ${s(container.ovm)} (cli ${s(container.cli)})   ` +
      `speed-up ${(container.runc / container.ovm).toFixed(1)}x`);
  }
  for (const size of [256, 1024]) {
    const idle = rows.find((r) => r.size === size && !r.busy)!;
    const busy = rows.find((r) => r.size === size && r.busy)!;
    console.log(`  ${String(size).padStart(4)} MiB: ovmigrate vs criu ${(idle.criuLocal / idle.ovm).toFixed(1)}x (local) / ${(idle.criuShared / idle.ovm).toFixed(1)}x (shared), ` +
      `target >= 20x; busy/idle: ovmigrate ${(busy.ovm / idle.ovm).toFixed(2)}x (target <= 1.1x), criu ${(busy.criuLocal / idle.criuLocal).toFixed(2)}x local, ` +
      `${(busy.criuShared / idle.criuShared).toFixed(2)}x shared`);
  }
}

/**
 * The container part: a runc container (made by containerd) with 256 MiB
 * touched, checkpointed in one run by in-guest `runc checkpoint` and by
 * `ovmigrate dump --container`.
 */
async function containerPart(guest: UpResult, ram: GuestRam, share: string, progress: (s: string) => void): Promise<{ runc: number; ovm: number; cli: number }> {
  progress('container: containerd, a busybox container with 256 MiB touched');
  execFileSync('gcc', ['-O1', '-static', '-o', `${share}/hog`, path.join(PROGRAMS, 'hog.c')]);
  await buildBusyboxImage(`${share}/busybox.tar`);
  await startGuestContainerd(guest.name);
  await guestSh(guest.name, `ctr image import ${share}/busybox.tar >/dev/null
    ctr run -d --mount type=bind,src=${share}/hog,dst=/hog,options=rbind:ro ${BUSYBOX_IMAGE} hogc /hog 256
    for i in $(seq 600); do [ "$(cat /sys/fs/cgroup/default/hogc/memory.current 2>/dev/null || echo 0)" -gt 268435456 ] && break; sleep 0.5; done
    mkdir -p ${share}/bundle; cp /run/containerd/io.containerd.runtime.v2.task/default/hogc/config.json ${share}/bundle/; ctr task pause hogc`, 900);
  const spec = readContainerSpec(`${share}/bundle`);
  const runc: number[] = [];
  const ovm: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    progress(`container: in-guest runc checkpoint #${rep + 1}`);
    runc.push(Number((await guestSh(guest.name, `rm -rf /run/img; mkdir /run/img; t0=$(date +%s%N)
      runc --root /run/containerd/runc/default checkpoint --leave-running --image-path /run/img --work-path /run/img hogc || { tail /run/img/dump.log >&2; exit 1; }
      t1=$(date +%s%N); rm -rf /run/img; echo $((t1 - t0))`, 900)).trim()) / 1e9);
    progress(`container: ovmigrate dump --container #${rep + 1}`);
    fs.rmSync(`${share}/img`, { recursive: true, force: true });
    const t0 = process.hrtime.bigint();
    await ram.dump('/default/hogc', `${share}/img`, spec);
    ovm.push(secs(t0));
  }
  fs.rmSync(`${share}/img`, { recursive: true, force: true });
  const t0 = process.hrtime.bigint();
  execFileSync(process.execPath, [CLI, '--log-level', 'warn', 'dump', '--vm', guest.name, '--cgroup', '/default/hogc', '--container', '--bundle', `${share}/bundle`,
    '-D', `${share}/img`, '--leave-running'], { stdio: 'ignore' });
  return { runc: median(runc), ovm: median(ovm), cli: secs(t0) };
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
