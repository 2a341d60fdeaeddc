/**
 * `make bench`, dump part: the same frozen process (256 MiB and 1 GiB
 * touched) checkpointed in one run by in-guest `criu dump` and by
 * `ovmigrate dump` from the host, with the guest idle and with one of its
 * two vCPUs kept busy by a CPU hog.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { dumpTree } from '../../introspect/dump/dump.js';
import { treeOfPid } from '../../introspect/dump/tree.js';
import { Program } from '../../introspect/kernel/program.js';
import { FileMemory } from '../../introspect/memory/physical-memory.js';
import { QmpPause } from '../../introspect/qemu/vm-pause.js';
import { CLI, guestSh } from '../helpers/cli.js';
import { UpResult, downTestGuests, labUp } from '../helpers/lab-guests.js';

const MiB = 1 << 20;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

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
  const mem = new FileMemory(guest.memoryFile, guest.layout.map((s) => ({ gpa: BigInt(s.gpa), size: BigInt(s.size), fileOffset: BigInt(s.fileOffset) })));
  const rows: Row[] = [];
  try {
    // Attached once, as the backend (`ovmigrate serve`) stays attached to its VM.
    const prog = Program.attach(mem);
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
          // QEMU serves one QMP client at a time: the CLI run below needs it free.
          const pause = await QmpPause.connect(guest.qmpSocket);
          const t0 = process.hrtime.bigint();
          const report = await dumpTree(prog, treeOfPid(prog, pid), `${share}/img`, { pause });
          ovm.push(secs(t0));
          pause.close();
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
  } finally {
    mem.close();
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
  for (const size of [256, 1024]) {
    const idle = rows.find((r) => r.size === size && !r.busy)!;
    const busy = rows.find((r) => r.size === size && r.busy)!;
    console.log(`  ${String(size).padStart(4)} MiB: ovmigrate vs criu ${(idle.criuLocal / idle.ovm).toFixed(1)}x (local) / ${(idle.criuShared / idle.ovm).toFixed(1)}x (shared), ` +
      `target >= 20x; busy/idle: ovmigrate ${(busy.ovm / idle.ovm).toFixed(2)}x (target <= 1.1x), criu ${(busy.criuLocal / idle.criuLocal).toFixed(2)}x local, ` +
      `${(busy.criuShared / idle.criuShared).toFixed(2)}x shared`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
