import assert from 'node:assert/strict';
import { ProcessInfo } from '../../introspect/linux/tasks.js';
import { cliOk, requirePrograms } from '../helpers/cli.js';
import { attachGuest } from '../helpers/guest-ram.js';
import { UpResult } from '../helpers/lab-guests.js';
import { POOL_KERNELS, PoolKey } from '../helpers/guest-pool.js';
import { PoolSuite } from '../helpers/pool-suite.js';

type Proc = ProcessInfo;

/** The guests ps reads: both paging modes on 6.1, and each other kernel of the run (sharing the dump suite's guest). */
const VARIANTS: { title: string; key: PoolKey }[] = [
  ...(POOL_KERNELS.includes('6.1') ? [{ title: '5-level', key: {} }, { title: '4-level', key: { paging: 4 as const } }] : []),
  ...POOL_KERNELS.filter((k) => k !== '6.1').map((kernel) => ({ title: `kernel ${kernel}, 5-level`, key: { kernel, slot: 'a' as const } })),
];
const suite = new PoolSuite('ps', VARIANTS.map((v) => v.key));
const sh = suite.sh;
const CG = suite.cgroup;

/** Starts long-lived processes of several kinds in the guest and returns their pids. */
async function startWorkloads(guest: string): Promise<Record<string, number>> {
  const out = await sh(guest, `
    mkdir -p /sys/fs/cgroup${CG}/test/inner
    setsid sh -c 'echo $$ > /sys/fs/cgroup${CG}/test/inner/cgroup.procs; exec sleep 1000' </dev/null >/dev/null 2>&1 &
    echo sleeper=$!
    rm -f /tmp/ps-node-online
    setsid node -e 'const w=require("worker_threads"); let n=0; for (let i=0;i<2;i++) new w.Worker("setInterval(()=>{},1000)",{eval:true}).on("online",()=>{if(++n===2)require("fs").writeFileSync("/tmp/ps-node-online","")}); setInterval(()=>{},1000)' </dev/null >/dev/null 2>&1 &
    node=$!
    echo threads=$node
    # node and V8 start some threads lazily: its workers online, wait until its thread count holds for a second.
    for i in $(seq 300); do [ -e /tmp/ps-node-online ] && break; sleep 0.1; done
    last=; for i in $(seq 30); do now=$(ls /proc/$node/task | wc -l); [ "$now" = "$last" ] && break; last=$now; sleep 1; done
    setsid unshare -p -f --mount-proc sh -c 'sleep 1000 & exec sleep 1001' </dev/null >/dev/null 2>&1 &
    echo unshare=$!
    setsid sh -c 'exec setpriv --reuid=1234 --regid=4321 --clear-groups sleep 1000' </dev/null >/dev/null 2>&1 &
    echo user=$!
    sleep 2`);
  return Object.fromEntries(out.trim().split('\n').map((l) => { const [k, v] = l.split('='); return [k, Number(v)]; }));
}

/** What the guest's own /proc says about these pids. */
async function procTruth(guest: string, pids: number[]): Promise<Proc[]> {
  const out = await sh(guest, `
    for p in ${pids.join(' ')}; do
      [ -d /proc/$p ] || continue
      s=/proc/$p/status
      printf '{"pid":%s,"tgid":%s,"ppid":%s,"comm":"%s","state":"%s","nspid":[%s],"uid":%s,"gid":%s,"cgroup":"%s","threads":[%s]}\\n' \\
        $p "$(awk '/^Tgid:/{print $2}' $s)" "$(awk '/^PPid:/{print $2}' $s)" "$(cat /proc/$p/comm)" \\
        "$(awk '/^State:/{print $2}' $s)" "$(awk '/^NSpid:/{$1=""; print substr($0,2)}' $s | tr ' ' ,)" \\
        "$(awk '/^Uid:/{print $2}' $s)" "$(awk '/^Gid:/{print $2}' $s)" "$(sed -n 's/^0:://p' /proc/$p/cgroup)" \\
        "$(ls /proc/$p/task | sort -n | tr '\\n' , | sed 's/,$//')"
    done`);
  return out.trim().split('\n').map((l) => JSON.parse(l) as Proc);
}

describe('ps from guest RAM matches the guest\'s /proc', function () {
  const guests: { name: string; title: string; up: UpResult }[] = [];

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64']);
    const ups = await suite.guests();
    ups.forEach((up, i) => guests.push({ name: up.name, title: VARIANTS[i].title, up }));
  });
  after(() => suite.leave());

  for (const { title } of VARIANTS) {
    it(`lists init, kernel threads, a cgroup member, threads, a pid namespace and another user (${title})`, async () => {
      const guest = guests.find((g) => g.title === title)!.name;
      const w = await startWorkloads(guest);
      const ps = JSON.parse(await cliOk(['ps', '--vm', guest, '--json'])) as Proc[];
      const byPid = new Map(ps.map((p) => [p.pid, p]));
      // The unshare'd namespace: its init (a forked child of unshare) and that init's child.
      const nsInit = ps.find((p) => p.ppid === w.unshare)!;
      assert.ok(nsInit, 'the process unshare forked into the new pid namespace');
      const nsChild = ps.find((p) => p.ppid === nsInit.pid && p.comm === 'sleep')!;
      const pids = [1, 2, w.sleeper, w.threads, w.unshare, nsInit.pid, nsChild.pid, w.user];
      const truth = await procTruth(guest, pids);
      assert.equal(truth.length, pids.length, 'every workload still runs');
      for (const t of truth) {
        const { frozen: _f, onCpu: _o, ...got } = byPid.get(t.pid)!;
        void _f; void _o;
        // node wakes every second: its state may change between the two readings.
        if (t.pid === w.threads) assert.match(got.state, /^[RS]$/), got.state = t.state;
        assert.deepEqual(got, t, `pid ${t.pid} (${t.comm})`);
      }

      assert.equal(byPid.get(w.sleeper)!.cgroup, `${CG}/test/inner`);
      assert.ok(byPid.get(w.threads)!.threads.length >= 3, 'node with two workers has several threads');
      assert.deepEqual(nsInit.nspid.slice(1), [1]);
      assert.deepEqual(nsChild.nspid.length, 2);
      assert.deepEqual([byPid.get(w.user)!.uid, byPid.get(w.user)!.gid], [1234, 4321]);
      // Every process /proc lists right now that also existed when ps read RAM agrees on pid, ppid and comm.
      const all = await sh(guest, 'for d in /proc/[0-9]*; do p=${d#/proc/}; echo "$p $(awk \'/^PPid:/{print $2}\' $d/status 2>/dev/null) $(cat $d/comm 2>/dev/null)"; done');
      let compared = 0;
      for (const line of all.trim().split('\n')) {
        const [pid, ppid, comm] = line.split(' ');
        const p = byPid.get(Number(pid));
        if (!p || !ppid) continue;
        // A workqueue worker's name ends with its latest work, which changes between the two readings.
        const norm = (c: string) => c.replace(/^(kworker\/[^+-]*)[+-].*$/, '$1');
        assert.deepEqual([p.ppid, norm(p.comm)], [Number(ppid), norm(comm)], `pid ${pid}`);
        compared++;
      }
      assert.ok(compared > 20, `compared ${compared} processes`);
      // maps in this paging mode too; node frozen first, so that V8 cannot move its heap between the two reads.
      await sh(guest, `
        mkdir -p /sys/fs/cgroup${CG}/test/node
        echo ${w.threads} > /sys/fs/cgroup${CG}/test/node/cgroup.procs
        echo 1 > /sys/fs/cgroup${CG}/test/node/cgroup.freeze
        while ! grep -q 'frozen 1' /sys/fs/cgroup${CG}/test/node/cgroup.events; do sleep 0.2; done`);
      for (const p of [w.sleeper, w.threads]) {
        assert.equal(await cliOk(['maps', '--vm', guest, '--pid', String(p)]), await sh(guest, `cat /proc/${p}/maps`), `maps of ${p}`);
      }
    });
  }

  /** The first guest of each kernel: 6.1's 5-level one, then one per other kernel. */
  const perKernel = VARIANTS.filter((v) => v.key.paging !== 4).map((v) => v.title);
  for (const title of perKernel) {
    it(`tells frozen (cgroup v2 freezer) and on-CPU tasks${title === '5-level' ? '' : ` (${title})`}`, async () => {
      const { name } = guests.find((g) => g.title === title)!;
      const pids = (await sh(name, `
        mkdir -p /sys/fs/cgroup${CG}/frozen
        setsid sh -c 'echo $$ > /sys/fs/cgroup${CG}/frozen/cgroup.procs; exec sleep 1000' </dev/null >/dev/null 2>&1 & echo $!
        setsid sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 & echo $!
        sleep 1; echo 1 > /sys/fs/cgroup${CG}/frozen/cgroup.freeze
        while ! grep -q 'frozen 1' /sys/fs/cgroup${CG}/frozen/cgroup.events; do sleep 0.2; done`)).trim().split('\n').map(Number);
      const [frozenPid, busyPid] = pids;
      let sawBusyOnCpu = false;
      for (let i = 0; i < 10 && !sawBusyOnCpu; i++) {
        const ps = JSON.parse(await cliOk(['ps', '--vm', name, '--json'])) as Proc[];
        const byPid = new Map(ps.map((p) => [p.pid, p]));
        assert.equal(byPid.get(frozenPid)!.frozen, true);
        assert.equal(byPid.get(busyPid)!.frozen, false);
        assert.equal(byPid.get(frozenPid)!.onCpu, false);
        sawBusyOnCpu = byPid.get(busyPid)!.onCpu;
      }
      assert.ok(sawBusyOnCpu, 'a busy loop is seen on a CPU');
      await sh(name, `echo 0 > /sys/fs/cgroup${CG}/frozen/cgroup.freeze; kill ${busyPid}`);
    });

    it(`decodes the same kernel symbols from RAM as the guest's /proc/kallsyms${title === '5-level' ? '' : ` (${title})`}`, async () => {
      const { name, up } = guests.find((g) => g.title === title)!;
      const truth = (await sh(name, "grep -v '\\[' /proc/kallsyms")).trim().split('\n');
      const { prog, close } = attachGuest(up);
      try {
        const ours = prog.symbols.symbols.map((s) => `${s.address.toString(16).padStart(16, '0')} ${s.type} ${s.name}`);
        assert.equal(ours.length, truth.length);
        assert.deepEqual([...ours].sort(), [...truth].sort());
      } finally {
        close();
      }
    });
  }
});
