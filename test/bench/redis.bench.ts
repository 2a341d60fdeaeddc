/**
 * `make bench`, server row (issue 13): redis-server holding 512 MiB of data
 * (OVMIGRATE_BENCH_REDIS_MIB for another size), frozen, checkpointed in one
 * run by in-guest `criu dump` and by `ovmigrate dump` from the host.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { GuestRam } from '../../introspect/backend/index.js';
import { FileMemory } from '../../introspect/memory/physical-memory.js';
import { CLI, guestSh } from '../helpers/cli.js';
import { UpResult, downTestGuests, labUp } from '../helpers/lab-guests.js';
import { median } from './median.js';

const MiB = 1 << 20;
const SIZE_MIB = Number(process.env.OVMIGRATE_BENCH_REDIS_MIB ?? 512);
const PORT = 7690;
/** Values that fill jemalloc's 4 KiB class with their sds header (4096 itself would take 5 KiB); one per 4 KiB of SIZE_MIB. */
const VALUE = 4000;

const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

async function main(): Promise<void> {
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
  const share = fs.mkdtempSync('/var/tmp/ovmigrate-bench-redis-');
  // Room for redis (data plus allocator overhead) and CRIU's images of it on the guest's tmpfs.
  const memory = Math.max(1536, Math.ceil((SIZE_MIB * 2.6 + 512) / 256) * 256);
  progress(`booting a ${memory} MiB guest`);
  const guest: UpResult = await labUp('rbench', ['--memory', String(memory), '--share', share]);
  const ram = new GuestRam({
    open: async () => new FileMemory(guest.memoryFile, guest.layout.map((s) => ({ gpa: BigInt(s.gpa), size: BigInt(s.size), fileOffset: BigInt(s.fileOffset) }))),
    qmpSocket: guest.qmpSocket,
  });
  const local: number[] = [];
  const ovm: number[] = [];
  const pauses: number[] = [];
  let shared = 0;
  let cli = 0;
  let rss = 0;
  let keys = 0;
  try {
    progress(`redis-server with ${SIZE_MIB} MiB of values`);
    const pid = Number((await guestSh(guest.name, `
      mkdir -p /sys/fs/cgroup/rbench /run/redis; rm -f /run/redis.log
      setsid sh -c 'echo $$ > /sys/fs/cgroup/rbench/cgroup.procs; exec redis-server --port ${PORT} --bind 127.0.0.1 --save "" --appendonly no --dir /run/redis --enable-debug-command yes' > /run/redis.log 2>&1 </dev/null &
      for i in $(seq 300); do redis-cli -p ${PORT} PING >/dev/null 2>&1 && break; sleep 0.2; done
      redis-cli -p ${PORT} DEBUG POPULATE ${SIZE_MIB * 256} key ${VALUE} >/dev/null
      head -1 /sys/fs/cgroup/rbench/cgroup.procs`, 1800)).trim());
    keys = Number((await guestSh(guest.name, `redis-cli -p ${PORT} DBSIZE`)).trim());
    rss = Number((await guestSh(guest.name, `awk '/^VmRSS/ {print $2}' /proc/${pid}/status`)).trim()) * 1024;
    await guestSh(guest.name, 'echo 1 > /sys/fs/cgroup/rbench/cgroup.freeze; while ! grep -q "frozen 1" /sys/fs/cgroup/rbench/cgroup.events; do sleep 0.1; done');
    const criu = async (dir: string) => Number((await guestSh(guest.name, `rm -rf ${dir}; mkdir ${dir}; t0=$(date +%s%N)
      criu dump -t ${pid} -D ${dir} --leave-running --freeze-cgroup /sys/fs/cgroup/rbench -o dump.log || { tail ${dir}/dump.log >&2; exit 1; }
      t1=$(date +%s%N); rm -rf ${dir}; echo $((t1 - t0))`, 1800)).trim()) / 1e9;
    progress('warming up criu');
    await criu('/run/img');
    for (let rep = 0; rep < 3; rep++) {
      progress(`in-guest criu dump to its tmpfs #${rep + 1}`);
      local.push(await criu('/run/img'));
      progress(`ovmigrate dump #${rep + 1}`);
      fs.rmSync(`${share}/img`, { recursive: true, force: true });
      const t0 = process.hrtime.bigint();
      const report = await ram.dump('/rbench', `${share}/img`, undefined);
      ovm.push(secs(t0));
      pauses.push(report.pauseMs ?? 0);
    }
    progress('in-guest criu dump to the shared directory');
    shared = await criu(`${share}/criu-img`);
    progress('ovmigrate dump, the whole CLI');
    fs.rmSync(`${share}/img`, { recursive: true, force: true });
    const t0 = process.hrtime.bigint();
    execFileSync(process.execPath, [CLI, '--log-level', 'warn', 'dump', '--vm', guest.name, '--pid', String(pid), '-D', `${share}/img`, '--leave-running'], { stdio: 'ignore' });
    cli = secs(t0);
  } finally {
    ram.reset();
    await downTestGuests();
    fs.rmSync(share, { recursive: true, force: true });
  }

  const s = (x: number) => `${x.toFixed(2).padStart(6)} s`;
  const [l, o] = [median(local), median(ovm)];
  console.log(`server benchmark: redis-server holding ${SIZE_MIB} MiB (${keys} keys of ${VALUE} B; RSS ${(rss / MiB).toFixed(0)} MiB), frozen; ` +
    `in-guest \`criu dump\` vs \`ovmigrate dump\` from the host, same run; guest: 2 vCPUs, TCG`);
  console.log('  criu local: images to the guest\'s tmpfs; criu shared: to the virtio-9p share; ovmigrate: to that share, backend attached. Medians of 3.');
  console.log('  criu local  criu shared   ovmigrate  (VM pause)   ovmigrate cli   speed-up local  shared   throughput');
  console.log(`   ${s(l)}    ${s(shared)}    ${s(o)}  (${median(pauses).toFixed(0).padStart(3)} ms)   ${s(cli)}        ` +
    `${(l / o).toFixed(1).padStart(5)}x  ${(shared / o).toFixed(1).padStart(5)}x   ${(rss / o / 1e9).toFixed(2)} GB/s`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
