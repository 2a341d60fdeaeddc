import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli, cliOk, requirePrograms } from '../helpers/cli.js';
import { buildCheckpointArchive } from '../helpers/checkpoint-archive.js';
import { Json, KnownDifferences, assertSameDump, critDecode, decodeDir, isZombie } from '../helpers/criu-images.js';
import { UpResult } from '../helpers/lab-guests.js';
import { POOL_KERNELS, kernelTag, kernelTitle } from '../helpers/guest-pool.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { PG_BIN, initPostgresCluster, timersThatRan } from '../helpers/servers.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';
import { HOST_USR_IMAGE, buildHostUsrImage } from '../lab/host-usr-image.js';

const PROGRAMS = path.resolve(__dirname, '..', '..', '..', 'test', 'programs');

/** A counter appending to a file of the container's rootfs every 0.2 s. */
const LOOP = (file: string) => `i=0; while true; do i=$((i+1)); echo $i >> ${file}; sleep 0.2; done`;

/** Takes a terminal's master from runc's --console-socket in a guest (it sees the checkout at the same path). */
const CONSOLE_RECEIVER = path.resolve('test/lab/console-receiver.py');

/** The numbers in a counter file: they must go up by one, across the checkpoint and restore. */
function counts(file: string): number[] {
  return fs.readFileSync(file, 'utf8').trim().split('\n').map(Number);
}

function assertCounting(file: string, before: number, what: string): void {
  const seq = counts(file);
  assert.deepEqual(seq, seq.map((_, i) => i + 1), `${what}: every number once, in order`);
  assert.ok(seq.length > before + 3, `${what}: counts on after the restore (${before} before, ${seq.length} now)`);
}

/** The checks test/programs/sysvipc.c logged ("sysv ok N"); a "sysv bad" line fails. */
function sysvTicks(file: string): number[] {
  const text = fs.readFileSync(file, 'utf8');
  assert.doesNotMatch(text, /^sysv bad/m, text.slice(-300));
  return [...text.matchAll(/^sysv ok (\d+)$/gm)].map((m) => Number(m[1]));
}

type Mountpoint = { mnt_id: number; mountpoint: string; fstype: number };
type RegFile = { id: number; reg?: { name: string; mnt_id?: number } };
const OVERLAYFS = 17;

/**
 * A file mapped from overlayfs is its layer's own file (ovl_mmap puts the real file in the VMA, on overlayfs's private
 * clone of the layer's mount), so CRIU 3.17 looks for an overlayfs mount to name by the file's path from the namespace's
 * root (criu/files-reg.c, lookup_overlayfs): the container's root, also for a file under another overlayfs mount bound
 * in (the guest's /usr). ovmigrate names that mount. Restore opens the path from the namespace's root either way.
 * Set aside for those files only: CRIU's names the root mount, ours an overlayfs mount the path is under.
 */
function overlayFilesNamedByRoot(criuDir: string): KnownDifferences {
  const mountsFile = fs.readdirSync(criuDir).find((f) => /^mountpoints-\d+\.img$/.test(f))!;
  const mounts = critDecode(path.join(criuDir, mountsFile)) as unknown as Mountpoint[];
  const root = mounts.find((m) => m.mountpoint === '/' && m.fstype === OVERLAYFS);
  return {
    'files.img': (ours, criu) => {
      const mine = new Map((ours as unknown as RegFile[]).map((f) => [f.id, f]));
      for (const f of criu as unknown as RegFile[]) {
        const o = mine.get(f.id)?.reg;
        if (!root || !f.reg || !o || f.reg.mnt_id !== root.mnt_id || o.name !== f.reg.name) continue;
        const under = mounts.find((m) => m.mnt_id === o.mnt_id);
        if (under?.fstype === OVERLAYFS && under.mountpoint !== '/' && f.reg.name.startsWith(`${under.mountpoint}/`)) f.reg.mnt_id = o.mnt_id;
      }
    },
  };
}

/**
 * Containers that containerd and runc made inside guest A, dumped from
 * guest A's RAM with `ovmigrate dump --container`, restored by stock runc
 * (and once by containerd) in guest B.
 */
// On each kernel; the 6.12 pair is the dump suite's (a pooled guest runs containerd when any suite asks).
for (const kernel of POOL_KERNELS) {
  const on = kernelTitle(kernel);
  describe(`ovmigrate dump --container: runc containers from guest RAM, restored by runc and containerd in another guest${on}`, function () {
    const suite = new PoolSuite(`dumpctr${kernelTag(kernel)}`, [
      { containerd: true, slot: 'a', kernel }, { containerd: true, slot: 'b', kernel },
    ]);
    const guestSh = suite.sh;
    const ns = suite.namespace;
    const TASKS = `/run/containerd/io.containerd.runtime.v2.task/${ns}`;
    let share: string;
    let a: UpResult;
    let b: UpResult;
    // The host's postgres user, which owns the cluster on the share.
    const postgres = { name: 'postgres', uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) };

    const ctr = (guest: UpResult, args: string) => guestSh(guest.name, `ctr -n ${ns} ${args}`);
    const initPid = async (name: string) => Number((await ctr(a, 'task ls')).split('\n').find((l) => l.startsWith(`${name} `))!.split(/\s+/)[1]);
    const bundle = (name: string) => path.join(share, `bundle-${name}`);

    /** Runs a container in guest A; its bundle's config.json goes to the share. */
    async function run(name: string, command: string, flags = '', image = BUSYBOX_IMAGE): Promise<number> {
      await ctr(a, `run -d ${flags} ${image} ${name} sh -c '${command}'`);
      await guestSh(a.name, `sleep 1.5; mkdir -p ${bundle(name)}; cp ${TASKS}/${name}/config.json ${bundle(name)}/`);
      return initPid(name);
    }

    /** Freezes a container (runc pause) and copies its rootfs to the share, as shared storage would hold it. */
    async function freezeAndShare(name: string): Promise<void> {
      await ctr(a, `task pause ${name}`);
      await guestSh(a.name, `mkdir -p ${bundle(name)}/rootfs; cp -a ${TASKS}/${name}/rootfs/. ${bundle(name)}/rootfs/`);
    }

    /** Field by field: ovmigrate's images against `runc checkpoint --leave-running` of the same frozen container. */
    async function compareWithRunc(name: string, known: (theirs: string, elapsedS: number) => KnownDifferences = () => ({})): Promise<void> {
      const ours = path.join(share, `${name}-ours`);
      const theirs = path.join(share, `${name}-runc`);
      const t0 = Date.now();
      await cliOk(['dump', '--vm', a.name, '--cgroup', `/${ns}/${name}`, '--container', '--bundle', bundle(name), '-D', ours, '--leave-running']);
      await guestSh(a.name, `mkdir ${theirs} && runc --root /run/containerd/runc/${ns} checkpoint --leave-running --image-path ${theirs} --work-path ${theirs} ${name}` +
        ` || { tail -20 ${theirs}/dump.log; exit 1; }`, 180);
      assertSameDump(ours, theirs, known(theirs, (Date.now() - t0) / 1000));
    }

    /**
     * The final dump (it kills the container in guest A) and `runc restore` in guest B; with `console`, runc hands the
     * terminal's new master to a receiver that copies what the container writes on it to that file of guest B.
     */
    async function moveWithRunc(name: string, console?: string): Promise<void> {
      const dir = path.join(share, `${name}-final`);
      await cliOk(['dump', '--vm', a.name, '--cgroup', `/${ns}/${name}`, '--container', '--bundle', bundle(name), '-D', dir]);
      assert.match(await ctr(a, 'task ls'), new RegExp(`^${name}\\s+\\d+\\s+STOPPED$`, 'm'), 'killed in guest A');
      const socket = `/tmp/console-${name}.sock`;
      const receive = console ? `${CONSOLE_RECEIVER} ${socket} ${console} && ` : '';
      await guestSh(b.name, `${receive}runc restore -d ${console ? `--console-socket ${socket} ` : ''}--image-path ${dir} --work-path /tmp/rw-${name} --bundle ${bundle(name)} ${name} </dev/null >/tmp/restore-${name}.out 2>&1` +
        ` || { cat /tmp/restore-${name}.out; tail -20 /tmp/rw-${name}/restore.log; exit 1; }; sleep 2.5`, 180);
      assert.match(await guestSh(b.name, 'runc list'), new RegExp(`^${name}\\s+\\d+\\s+running`, 'm'));
    }

    before(async function () {
      requirePrograms(this, ['qemu-system-x86_64', 'containerd', 'ctr', 'runc', 'criu', 'crit', 'tar', 'busybox', 'ip', 'gcc', `${PG_BIN}/postgres`]);
      share = suite.dir;
      [[a, b]] = await Promise.all([suite.guests(), buildBusyboxImage(path.join(share, 'busybox.tar')),
        buildHostUsrImage(path.join(share, 'host-usr.tar'), [postgres])]);
      await Promise.all([a, b].map((g) => ctr(g, `image import ${share}/busybox.tar >/dev/null && ctr -n ${ns} image import ${share}/host-usr.tar >/dev/null`)));
    });
    after(async () => {
      await Promise.all([a, b].filter(Boolean).map((g) => guestSh(g.name, 'ip netns del pod1 2>/dev/null; ip netns del ovmnet 2>/dev/null; true')));
      await suite.leave();
    });

    // One container per kind of state, each dumped twice (against runc's dump, then to move it) and restored once:
    // the plain shell loop is the multi-process container's init, the pod's network namespace the mounts container's.
    it('a shell loop writing into its rootfs, with several processes in a cgroup namespace of its own and containerd\'s default seccomp profile: same images as runc checkpoint, continues under runc restore in guest B', async () => {
      // An empty path makes ctr add the namespace rather than join one; --seccomp is containerd's default profile (RuntimeDefault's).
      const init = await run('multi', `(${LOOP('/tmp/a')}) & (${LOOP('/tmp/b')}) & ${LOOP('/tmp/count')}`, '--with-ns cgroup: --seccomp');
      await freezeAndShare('multi');
      await compareWithRunc('multi');
      const descriptors = JSON.parse(fs.readFileSync(path.join(share, 'multi-ours', 'descriptors.json'), 'utf8')) as string[];
      assert.match(descriptors.join(' '), /^pipe:\[\d+\] pipe:\[\d+\] pipe:\[\d+\]$/, "the init's stdio are pipes to containerd's shim");
      const files = ['count', 'a', 'b'];
      const before = files.map((f) => counts(`${bundle('multi')}/rootfs/tmp/${f}`).length);
      await moveWithRunc('multi');
      files.forEach((f, i) => assertCounting(`${bundle('multi')}/rootfs/tmp/${f}`, before[i], `/tmp/${f}`));
      assert.ok(init > 1);
      assert.equal((await guestSh(b.name, 'runc exec multi cat /proc/1/comm')).trim(), 'sh', "the restored init is pid 1 of the container's pid namespace");
      // A process that only passes through the cgroup (a runc exec's, just reaped) may be listed for a moment: wait it out.
      const listed = (await guestSh(b.name, 'for i in $(seq 50); do [ "$(runc ps multi | tail -n +2 | wc -l)" = 3 ] && break; sleep 0.1; done; runc ps multi'))
        .trim().split('\n').slice(1);
      assert.equal(listed.length, 3, `init and its two children: ${listed.join(' | ')}`);
      assert.equal((await guestSh(b.name, 'runc exec multi cat /proc/1/cgroup')).trim(), '0::/', 'its cgroup namespace is rooted at its cgroup again');
      const ours = decodeDir(path.join(share, 'multi-ours'));
      const live = (ours.get('pstree.img') as { pid: number }[]).filter((p) => !isZombie(ours, p.pid));
      const filters = (ours.get('seccomp.img')![0] as { seccomp_filters?: Json[] }).seccomp_filters ?? [];
      assert.equal(filters.length, live.length, 'the profile\'s filter, once per process as criu writes it');
      assert.match(await guestSh(b.name, 'runc exec multi grep Seccomp: /proc/1/status'), /^Seccomp:\s+2$/m, 'the restored init runs under the filter');
    });

    it('a tmpfs mount and a bind mount, in an existing network namespace (a pod\'s), with SysV IPC objects in its own IPC namespace: tmpfs contents, the bind and the SysV objects continue, the external netns joined again on restore', async () => {
      const data = path.join(share, 'data');
      fs.mkdirSync(data);
      // test/programs/sysvipc.c: segments (one removed while attached), a semaphore set and a queue of messages, checked every 0.3 s.
      execFileSync('gcc', ['-O1', '-static', '-o', path.join(data, 'sysvipc'), path.join(PROGRAMS, 'sysvipc.c')]);
      await Promise.all([a, b].map((g) => guestSh(g.name, 'ip netns add pod1 && ip -n pod1 link set lo up')));
      await run('mounts', `/data/sysvipc /data/sysvipc.log & ${LOOP('/scratch/count')} & ${LOOP('/data/count')}`,
        `--mount type=tmpfs,destination=/scratch,options=size=8m --mount type=bind,src=${data},dst=/data,options=rbind:rw --with-ns network:/var/run/netns/pod1`);
      await freezeAndShare('mounts');
      await compareWithRunc('mounts');
      assert.ok(fs.readdirSync(path.join(share, 'mounts-ours')).some((f) => /^netns-\d+\.img$/.test(f)), 'a netns image naming the external namespace');
      const ipc = decodeDir(path.join(share, 'mounts-ours'));
      const [ipcShm, ipcSem, ipcMsg] = ['shm', 'sem', 'msg'].map((k) => [...ipc.entries()].find(([f]) => f.startsWith(`ipcns-${k}-`))?.[1] ?? []);
      assert.deepEqual(ipcShm.map((e) => (e as { desc: { key: number } }).desc.key), [0x5157, 0], 'both segments, the removed one without its key');
      assert.deepEqual((ipcSem[0] as { extra: number[] }).extra, [3, 1, 4, 1, 5], 'the semaphore values');
      assert.equal((ipcMsg[0] as { qnum: number }).qnum, 3, 'the queued messages');
      const sysvBefore = sysvTicks(path.join(data, 'sysvipc.log'));
      const scratch = Number((await guestSh(a.name, `cat /proc/${await initPid('mounts')}/root/scratch/count | wc -l`)).trim());
      const before = counts(`${data}/count`).length;
      await moveWithRunc('mounts');
      assertCounting(`${data}/count`, before, 'the bind mount');
      const ticks = sysvTicks(path.join(data, 'sysvipc.log'));
      assert.deepEqual(ticks, ticks.map((_, i) => i), 'the SysV program reads back its segments, semaphores and messages every time, across the restore');
      assert.ok(ticks.length > sysvBefore.length + 3, `and goes on in guest B (${sysvBefore.length} checks before, ${ticks.length} now)`);
      const seq = (await guestSh(b.name, 'runc exec mounts cat /scratch/count')).trim().split('\n').map(Number);
      assert.deepEqual(seq, seq.map((_, i) => i + 1), 'the tmpfs file came back whole and goes on');
      assert.ok(seq.length > scratch, `the tmpfs counter goes on (${scratch} before, ${seq.length} now)`);
      const inode = (g: UpResult) => guestSh(g.name, 'stat -L -c %i /var/run/netns/pod1');
      const restored = Number((await guestSh(b.name, "runc state mounts | sed -n 's/.*\"pid\": \\([0-9]*\\).*/\\1/p'")).trim());
      assert.equal((await guestSh(b.name, `stat -L -c %i /proc/${restored}/ns/net`)).trim(), (await inode(b)).trim(), "in guest B's pod1");
    });

    // postgres's defaults: its main shared memory a MAP_SHARED|MAP_ANONYMOUS mapping (shared_memory_type=mmap) beside its
    // SysV interlock segment, dynamic shared memory files in the container's /dev/shm (dynamic_shared_memory_type=posix), and
    // its latches an epoll on a signalfd. Debian's programs come from the guest's /usr (the host's), bound read-only and not
    // recursively (the guest's modules are a 9p mount under it); its socket is in a tmpfs, as Debian's /run/postgresql is.
    it('postgres with its default shared memory (anonymous shared main memory, SysV interlock segment, POSIX dynamic shared memory in /dev/shm) and signalfd latches: same images as runc checkpoint, restored by runc in guest B, where it answers with its rows, takes new ones and runs a parallel query', async () => {
      const psql = (sql: string) => `${PG_BIN}/psql -X -q -h /run/postgresql -U postgres -Atc "${sql}"`;
      let execs = 0;
      const inA = (cmd: string) => ctr(a, `task exec --exec-id pg${++execs} pg ${cmd}`);
      const inB = (cmd: string) => guestSh(b.name, `runc exec pg ${cmd}`);
      // Every cost of a parallel plan zeroed, so that a scan of a small table gets workers, each attaching the query's DSM segment.
      const parallel = 'set max_parallel_workers_per_gather = 2; set parallel_setup_cost = 0; set parallel_tuple_cost = 0; set min_parallel_table_scan_size = 0;' +
        ' explain (analyze, costs off, timing off, summary off) select count(*) from t';
      const launched = (plan: string) => Number(/Workers Launched: (\d+)/.exec(plan)?.[1] ?? 0);
      initPostgresCluster(path.join(share, 'pgdata'));
      await run('pg', `exec setpriv --reuid=${postgres.uid} --regid=${postgres.gid} --clear-groups ${PG_BIN}/postgres -D /pgdata` +
        ' -c listen_addresses= -c unix_socket_directories=/run/postgresql -c fsync=off -c shared_buffers=16MB -c max_connections=10',
        `--mount type=tmpfs,destination=/run/postgresql,options=size=1m:mode=1777 --mount type=bind,src=/usr,dst=/usr,options=bind:ro --mount type=bind,src=${share}/pgdata,dst=/pgdata,options=rbind:rw`, HOST_USR_IMAGE);
      await guestSh(a.name, `for i in $(seq 120); do ctr -n ${ns} task exec --exec-id ready$i pg ${psql('select 1')} >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1`, 300);
      await inA(psql("create table t (v text); insert into t values ('from guest A')"));
      assert.ok(launched(await inA(psql(parallel))) > 0, 'a parallel query in guest A');
      const shm = (await inA('ls /dev/shm')).trim().split('\n');
      assert.ok(shm.some((f) => /^PostgreSQL\.\d+$/.test(f)), `its DSM control segment is a file of the container's /dev/shm: ${shm}`);
      await freezeAndShare('pg');
      await compareWithRunc('pg', (theirs, elapsed) => ({ ...timersThatRan(theirs, elapsed), ...overlayFilesNamedByRoot(theirs) }));
      const ours = decodeDir(path.join(share, 'pg-ours'));
      const memfds = (ours.get('memfd.img') ?? []) as { name: string }[];
      assert.ok(memfds.some((m) => m.name === '/dev/zero'), `the main shared memory, anonymous (as CRIU names it, a memfd "/dev/zero"): ${JSON.stringify(memfds)}`);
      const ipcShm = [...ours.entries()].find(([f]) => f.startsWith('ipcns-shm-'))?.[1] ?? [];
      assert.equal(ipcShm.length, 1, 'the SysV interlock segment, in the container\'s IPC namespace');
      const files = ours.get('files.img') as { sgfd?: Json; reg?: { name: string } }[];
      assert.ok(files.some((f) => f.sgfd), 'a signalfd');
      assert.ok(files.some((f) => /^\/dev\/shm\/PostgreSQL\.\d+$/.test(f.reg?.name ?? '')), 'the DSM control segment, mapped from /dev/shm');
      const tarballs = fs.readdirSync(path.join(share, 'pg-ours')).filter((f) => /^tmpfs-dev-\d+\.tar\.gz\.img$/.test(f));
      const listed = tarballs.flatMap((f) => execFileSync('tar', ['-tzf', path.join(share, 'pg-ours', f)], { encoding: 'utf8' }).split('\n'));
      assert.ok(shm.filter((f) => f.startsWith('PostgreSQL.')).every((f) => listed.some((l) => l.replace(/^\.\//, '') === f)), `/dev/shm's contents in a tmpfs image: ${listed}`);
      await moveWithRunc('pg');
      assert.equal((await inB(psql('select v from t order by 1'))).trim(), 'from guest A', 'the row stored before the checkpoint');
      assert.equal((await inB(psql("insert into t values ('in guest B'); select v from t order by 1"))).trim(), 'from guest A\nin guest B', 'and a new one');
      assert.ok(launched(await inB(psql(parallel))) > 0, 'a parallel query in guest B: new DSM segments, registered in the restored control segment');
      assert.ok((await inB('ls /dev/shm')).includes(shm.find((f) => f.startsWith('PostgreSQL.'))!), 'the control segment\'s file, back in /dev/shm');
    });

    it('through containerd in guest B: ctr containers restore of a checkpoint image carrying these images', async () => {
      await run('viactr', LOOP('/tmp/count'));
      await ctr(a, 'task pause viactr');
      const upper = (await guestSh(a.name, `grep -o 'upperdir=[^,]*' /proc/${await initPid('viactr')}/mountinfo | head -1 | cut -d= -f2`)).trim();
      await guestSh(a.name, `tar -C ${upper} -czf ${share}/viactr-rw.tar.gz .`);
      const before = Number((await guestSh(a.name, `wc -l < ${upper}/tmp/count`)).trim());
      const dir = path.join(share, 'viactr-final');
      await cliOk(['dump', '--vm', a.name, '--cgroup', `/${ns}/viactr`, '--container', '--bundle', bundle('viactr'), '-D', dir]);
      await buildCheckpointArchive(path.join(share, 'viactr-ckpt.tar'), {
        name: 'checkpoint/viactr:ovmigrate', image: BUSYBOX_IMAGE, imagesDir: dir,
        spec: fs.readFileSync(path.join(bundle('viactr'), 'config.json')), rwLayer: fs.readFileSync(path.join(share, 'viactr-rw.tar.gz')),
      });
      await ctr(b, `image import --no-unpack --all-platforms ${share}/viactr-ckpt.tar >/dev/null`);
      await guestSh(b.name, `ctr -n ${ns} containers restore --rw --live viactr checkpoint/viactr:ovmigrate </dev/null >/tmp/viactr.out 2>&1 || { cat /tmp/viactr.out; exit 1; }; sleep 2.5`, 180);
      assert.match(await ctr(b, 'task ls'), /^viactr\s+\d+\s+RUNNING$/m);
      const seq = (await ctr(b, 'task exec --exec-id c1 viactr cat /tmp/count')).trim().split('\n').map(Number);
      assert.deepEqual(seq, seq.map((_, i) => i + 1), 'the counter file came with the rw layer and goes on');
      assert.ok(seq.length > before + 3, `counts on (${before} before, ${seq.length} now)`);
    });

    it('a zombie its parent never reaps: dumped as criu dumps it (pstree entry, TASK_DEAD core), a zombie again in guest B', async () => {
      // After exec, sleep never reaps the child the subshell forked: `sh -c "exit 3"` stays a zombie with wait status 3 << 8.
      await run('zombie', `(sh -c "exit 3" & exec sleep 100000) & ${LOOP('/tmp/count')}`);
      await freezeAndShare('zombie');
      await compareWithRunc('zombie');
      const ours = decodeDir(path.join(share, 'zombie-ours'));
      const tree = ours.get('pstree.img') as { pid: number; ppid: number; threads: number[] }[];
      // The loop's own sleep may be a zombie too, caught between its exit and the shell's wait(): the one that matters exited with 3.
      const exitCode = (pid: number) => (ours.get(`core-${pid}.img`)![0] as { tc: { exit_code: number } }).tc.exit_code;
      const zombies = tree.filter((p) => isZombie(ours, p.pid) && exitCode(p.pid) === 3 << 8);
      assert.equal(zombies.length, 1, 'the zombie is in pstree.img');
      const [z] = zombies;
      assert.deepEqual(z.threads, [z.pid]);
      assert.deepEqual(ours.get(`core-${z.pid}.img`), [{ mtype: 'X86_64', tc: { task_state: 2, exit_code: 3 << 8, personality: 0, flags: 0, blk_sigset: 0, comm: 'sh' } }]);
      assert.deepEqual([...ours.keys()].filter((f) => f.includes(`-${z.pid}.`)), [`core-${z.pid}.img`], 'nothing but its core');
      const before = counts(`${bundle('zombie')}/rootfs/tmp/count`).length;
      await moveWithRunc('zombie');
      assertCounting(`${bundle('zombie')}/rootfs/tmp/count`, before, 'the counter');
      // pid (comm) state ppid of every process the container's pid namespace shows (cgroup.procs, and so runc ps, leave zombies out).
      const stat = (await guestSh(b.name, 'runc exec zombie sh -c "cat /proc/[0-9]*/stat 2>/dev/null; true"')).trim().split('\n')
        .map((l) => /^(\d+) \((.*)\) (\S) (\d+) /.exec(l)!).map((m) => ({ pid: Number(m[1]), comm: m[2], state: m[3], ppid: Number(m[4]) }));
      assert.deepEqual(stat.find((p) => p.pid === z.pid), { pid: z.pid, comm: 'sh', state: 'Z', ppid: z.ppid }, 'the zombie is there again, under the same pid and parent');
      assert.deepEqual(stat.filter((p) => p.pid === z.ppid).map((p) => [p.comm, p.state]), [['sleep', 'S']], 'its parent is the sleep that never reaps it');
    });

    it('a container started with `ctr run -t` (a pty slave as stdio, its master in containerd\'s shim): the tty as runc checkpoint dumps it, restored by runc with a console socket in guest B, still writing to its terminal', async () => {
      // ctr run -t wants a terminal of its own (script gives it one); with -d the shim keeps the master. The container
      // sets the window size and termios of its terminal first, as a shell would.
      const command = `stty rows 33 cols 77 -echo; i=0; while true; do i=$((i+1)); echo tick $i; echo $i >> /tmp/count; sleep 0.2; done`;
      fs.writeFileSync(path.join(share, 'run-tty.sh'), `exec ctr -n ${ns} run -t -d ${BUSYBOX_IMAGE} tty sh -c '${command}'\n`);
      // The first count comes after stty: a busy guest can take longer than any fixed wait to get there.
      await guestSh(a.name, `script -qec "sh ${share}/run-tty.sh" /dev/null </dev/null >/dev/null; ` +
        `for i in $(seq 600); do [ -s ${TASKS}/tty/rootfs/tmp/count ] && break; sleep 0.2; done; mkdir -p ${bundle('tty')}; cp ${TASKS}/tty/config.json ${bundle('tty')}/`);
      await freezeAndShare('tty');
      await compareWithRunc('tty');
      const ours = decodeDir(path.join(share, 'tty-ours'));
      const [info] = ours.get('tty-info.img') as { type: string; sid: number; pgrp: number; pty: { index: number }; winsize: Json; termios: { c_lflag: number } }[];
      assert.deepEqual([info.type, info.sid, info.pgrp, info.pty], ['PTY', 1, 1, { index: 0 }], 'pts/0, the terminal of the init\'s session and group');
      assert.deepEqual(info.winsize, { ws_row: 33, ws_col: 77, ws_xpixel: 0, ws_ypixel: 0 }, 'the window size stty set');
      assert.equal(info.termios.c_lflag & 0o10, 0, 'ECHO off');
      const fds = (ours.get('fdinfo-2.img') ?? []) as { type: string; fd: number }[];
      assert.deepEqual(fds.filter((f) => f.fd <= 2).map((f) => f.type), ['TTY', 'TTY', 'TTY'], 'stdio on the pty');
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(share, 'tty-ours', 'descriptors.json'), 'utf8')), ['/dev/null', '/dev/null', '/dev/null'],
        'as runc saw them when its init started, before the init took its pty (containerd\'s shim gives runc no stdio then)');
      const before = counts(`${bundle('tty')}/rootfs/tmp/count`).length;
      await moveWithRunc('tty', '/tmp/tty.out');
      assertCounting(`${bundle('tty')}/rootfs/tmp/count`, before, 'the counter');
      const ticks = async () => (await guestSh(b.name, 'cat /tmp/tty.out')).split('\n').map((l) => /^tick (\d+)\r?$/.exec(l)).filter(Boolean).map((m) => Number(m![1]));
      const first = await ticks();
      await guestSh(b.name, 'sleep 1');
      const later = await ticks();
      assert.ok(first.length > 0 && first[0] > before, `the restored loop writes on its new terminal, going on from ${before} (${first[0]})`);
      assert.ok(later.length > first.length, `and keeps writing (${first.length} lines, then ${later.length})`);
      assert.equal((await guestSh(b.name, 'runc exec tty stty -F /dev/pts/0 size </dev/null')).trim(), '33 77', 'window size restored');
      assert.match(await guestSh(b.name, 'runc exec tty stty -F /dev/pts/0 </dev/null'), /-echo/, 'termios restored');
      const stat = (await guestSh(b.name, 'runc exec tty cat /proc/1/stat </dev/null')).split(' ');
      assert.deepEqual([stat[5], stat[6]], ['1', String(136 << 8)], 'the init leads its session again, with pts/0 as its controlling terminal');
    });

    // runc passes empty_ns network on every checkpoint and restore (runc setEmptyNsMask): a runc container's own network
    // namespace is never in CRIU's images nor restored from them, so the namespace's contents are shown on a process tree
    // of its own network namespace, dumped with --net-ns and restored by criu itself.
    it('a server in a network namespace of its own (an address on lo; a veth to the guest\'s namespace with IPv4 and IPv6 addresses and a default route), dumped with --net-ns: same images as criu dump, restored by criu restore --veth-pair in guest B, where it answers over the veth and on lo', async () => {
      const www = path.join(share, 'www');
      fs.mkdirSync(www);
      fs.writeFileSync(path.join(www, 'x'), 'from the namespace\n');
      await guestSh(a.name, `ip netns add ovmnet && ip link add ovmnet-h type veth peer name ovm0 netns ovmnet
        ip addr add 10.77.0.1/24 dev ovmnet-h && ip link set ovmnet-h up
        ip -n ovmnet link set lo up && ip -n ovmnet addr add 10.78.0.1/32 dev lo && ip -n ovmnet addr add 10.77.0.2/24 dev ovm0
        ip -n ovmnet link set ovm0 up && ip -n ovmnet route add default via 10.77.0.1 && ip -n ovmnet -6 addr add fd77::2/64 dev ovm0 nodad
        echo 31000 > /proc/sys/kernel/ns_last_pid`);
      // Its pid from 31000 up (below pid_max 32768, apart from the other suites' ranges): restore needs it free in guest B.
      const pid = await suite.startProgram(a.name, 'netsrv', `nsenter --net=/run/netns/ovmnet sh -c "echo serving; exec busybox httpd -f -p 8080 -h ${www}"`);
      assert.equal((await guestSh(a.name, 'busybox wget -q -O - http://10.77.0.2:8080/x')).trim(), 'from the namespace');
      const ours = path.join(share, 'netsrv-ours');
      const theirs = path.join(share, 'netsrv-criu');
      // Ours first: criu dump's network lock leaves nftables chains in the namespace, which ovmigrate then refuses.
      await cliOk(['dump', '--vm', a.name, '--cgroup', `${suite.cgroup}/netsrv`, '--net-ns', '-D', ours, '--leave-running']);
      await guestSh(a.name, `mkdir ${theirs} && criu dump -t ${pid} --leave-running -D ${theirs} -o dump.log || { tail -20 ${theirs}/dump.log; exit 1; }`, 180);
      assertSameDump(ours, theirs);
      const images = decodeDir(ours);
      const netdev = [...images.entries()].find(([f]) => f.startsWith('netdev-'))![1] as { type: string; name: string; peer_nsid?: number }[];
      assert.deepEqual(netdev.map((d) => [d.type, d.name, d.peer_nsid === undefined]), [['LOOPBACK', 'lo', false], ['VETH', 'ovm0', true]], "lo, and the veth whose peer is outside");
      await guestSh(a.name, `kill ${pid}`);
      await guestSh(b.name, `criu restore -D ${ours} -d --veth-pair ovm0=ovmnet-h -o /tmp/netsrv-restore.log || { tail -20 /tmp/netsrv-restore.log; exit 1; }
        ip link set ovmnet-h up && ip addr add 10.77.0.1/24 dev ovmnet-h`, 180);
      const inside = (cmd: string) => guestSh(b.name, `nsenter -t ${pid} -n ${cmd}`);
      assert.match(await inside('ip -4 -o addr'), /lo\s+inet 127\.0\.0\.1\/8 .*\n.*lo\s+inet 10\.78\.0\.1\/32 .*\n.*ovm0\s+inet 10\.77\.0\.2\/24 /s, 'its IPv4 addresses');
      assert.match(await inside('ip -6 -o addr'), /ovm0\s+inet6 fd77::2\/64 scope global/, 'its IPv6 address');
      assert.equal((await inside('ip route')).trim(), 'default via 10.77.0.1 dev ovm0 \n10.77.0.0/24 dev ovm0 proto kernel scope link src 10.77.0.2', 'its routes');
      assert.equal((await guestSh(b.name, 'busybox wget -q -O - http://10.77.0.2:8080/x')).trim(), 'from the namespace', 'TCP over the veth from guest B');
      assert.equal((await inside('busybox wget -q -O - http://10.78.0.1:8080/x')).trim(), 'from the namespace', 'TCP to its address on lo');
      await guestSh(b.name, `kill ${pid}`);
    });

    it('refuses a container with an unsupported socket (raw ICMP: CRIU has no image for it) before writing anything, and leaves it running', async () => {
      await run('nc', `ping -q -i 5 127.0.0.1 >/dev/null & ${LOOP('/tmp/count')}`);
      const dir = path.join(share, 'nc-img');
      const r = await cli(['dump', '--vm', a.name, '--cgroup', `/${ns}/nc`, '--container', '--bundle', bundle('nc'), '-D', dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /\(ping\) fd \d+: .*only TCP and UDP sockets are supported/);
      assert.ok(!fs.existsSync(dir));
      assert.match(await ctr(a, 'task ls'), /^nc\s+\d+\s+RUNNING$/m);
      const n = Number((await ctr(a, 'task exec --exec-id c1 nc wc -l /tmp/count')).trim().split(/\s+/)[0]);
      await guestSh(a.name, 'sleep 1');
      assert.ok(Number((await ctr(a, 'task exec --exec-id c2 nc wc -l /tmp/count')).trim().split(/\s+/)[0]) > n, 'still counting');
    });
  });
}
