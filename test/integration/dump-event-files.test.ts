import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli, cliOk, requirePrograms } from '../helpers/cli.js';
import { Json, KnownDifferences, assertSameDump, decodeDir, isZombie } from '../helpers/criu-images.js';
import { POOL_KERNELS, kernelTag, kernelTitle } from '../helpers/guest-pool.js';
import { UpResult } from '../helpers/lab-guests.js';
import { PoolSuite } from '../helpers/pool-suite.js';

const PROGRAMS = path.resolve(__dirname, '..', '..', '..', 'test', 'programs');
/** Two io_uring rings (io_uring_setup through syscall()): the first's fd kept, the second only mapped, its fd closed. */
const URING_C = `#include <linux/io_uring.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
  struct io_uring_params p1 = {0}, p2 = {0};
  int kept = syscall(SYS_io_uring_setup, 4, &p1), mapped = syscall(SYS_io_uring_setup, 4, &p2);
  if (kept < 0 || mapped < 0) { perror("io_uring_setup"); return 1; }
  void *ring = mmap(NULL, p2.sq_off.array + p2.sq_entries * 4, PROT_READ | PROT_WRITE, MAP_SHARED, mapped, IORING_OFF_SQ_RING);
  if (ring == MAP_FAILED) { perror("mmap"); return 1; }
  close(mapped);
  printf("uring %d %p\\n", kept, ring);
  fflush(stdout);
  for (;;) pause();
}
`;
const NSEC = 1_000_000_000;
/**
 * files.c's directory: a tmpfs in both guests, made the same before the program starts and before the restore.
 * A lease being broken is removed at the next lease operation past fs.lease-break-time (45 s): raised so the
 * one files.c breaks stays breaking through both dumps, and through the restore, which breaks it again.
 */
const FILES_DIR = '/dev/shm/ovm-files';
const FILES_DIR_SETUP = `rm -rf ${FILES_DIR}; mkdir -p ${FILES_DIR} && : > ${FILES_DIR}/watched && : > ${FILES_DIR}/lock && mkfifo ${FILES_DIR}/fifo` +
  ` && for f in rlease wlease blease; do : > ${FILES_DIR}/$f; done && echo 3600 > /proc/sys/fs/lease-break-time`;
/** criu/include/file-lock.h: file_lock_entry.flag of a lease, and LEASE_BREAKING ORed into its type. */
const FL_LEASE = 8;
const LEASE_BREAKING = 4;

type TimerEntry = { type: string; id: number; tfd: { ticks: number; vsec: number; vnsec: number; isec: number; insec: number } };

/**
 * timerfd values that differ from criu dump's, with why: the time left is
 * measured at each dump's own instant (CRIU's comes later); and a periodic
 * timer that expired unread shows CRIU it_value 0 and ticks 1 (fdinfo),
 * which restores a disarmed timer, while ovmigrate forwards it to its next
 * expiry and counts the expirations missed meanwhile.
 */
function timerfdDifferences(ours: Json[], criu: Json[]): void {
  const timers = (entries: Json[]) => new Map((entries as TimerEntry[]).filter((e) => e.type === 'TIMERFD').map((e) => [e.id, e.tfd]));
  const mine = timers(ours);
  const theirs = timers(criu);
  assert.deepEqual([...mine.keys()].sort(), [...theirs.keys()].sort(), 'the same timerfds');
  for (const [id, t] of theirs) {
    const o = mine.get(id)!;
    const left = (x: typeof t) => Number(x.vsec) * NSEC + Number(x.vnsec);
    const interval = Number(t.isec) * NSEC + Number(t.insec);
    if (interval > 0) {
      assert.deepEqual([left(t), Number(t.ticks)], [0, 1], `timerfd ${id}: CRIU keeps the expired periodic timer at it_value 0, ticks 1`);
      assert.ok(left(o) > 0 && left(o) <= interval, `timerfd ${id}: forwarded to its next expiry (${left(o)} ns left)`);
      assert.ok(Number(o.ticks) >= 1, `timerfd ${id}: the unread expirations are counted (${o.ticks})`);
    } else {
      const ahead = left(o) - left(t);
      assert.ok(ahead >= 0 && ahead < 600 * NSEC, `timerfd ${id}: ${left(o)} ns left at our dump, ${left(t)} at CRIU's, later`);
      assert.equal(Number(o.ticks), Number(t.ticks));
    }
    Object.assign(o, { vsec: t.vsec, vnsec: t.vnsec, ticks: t.ticks });
  }
}

/**
 * What `criu dump --link-remap` writes for a deleted file that still has
 * another name, set aside: a reg-file entry for the DIR/link_remap.N it
 * links in the guest (an id of its own, which every later file id follows)
 * and a LINKED remap from the file's entry (named by its old name) to it.
 * ovmigrate's entry names the other name instead, with no remap; the rest
 * (flags, pos, size, mode) must be equal.
 */
function linkRemapDifferences(id: number, old: string, other: string, pid: number): KnownDifferences {
  let link = 0;
  const renumber = (n: number) => (Number(n) > link ? Number(n) - 1 : Number(n));
  return {
    'remap-fpath.img': (_ours, criu) => {
      const linked = (criu as { orig_id: number; remap_id: number; remap_type?: string | number }[]).findIndex((r) => r.remap_type === undefined || r.remap_type === 'LINKED' || r.remap_type === 0);
      assert.ok(linked >= 0, `CRIU's LINKED remap: ${JSON.stringify(criu)}`);
      const r = criu[linked] as { orig_id: number; remap_id: number };
      assert.equal(Number(r.orig_id), id, 'from the file\'s entry');
      link = Number(r.remap_id);
      criu.splice(linked, 1);
    },
    'files.img': (_ours, criu) => {
      const entries = criu as { id: number; reg?: { id: number; name: string } }[];
      const at = entries.findIndex((e) => Number(e.id) === link);
      assert.match(entries[at]?.reg?.name ?? '', /\/link_remap\.\d+$/, 'the entry of the link CRIU made');
      entries.splice(at, 1);
      const orig = entries.find((e) => Number(e.id) === id)!.reg!;
      assert.equal(orig.name, old, 'CRIU\'s entry keeps the old name');
      orig.name = other;
      for (const e of entries) {
        e.id = renumber(e.id);
        if (e.reg) e.reg.id = renumber(e.reg.id);
      }
    },
    [`fs-${pid}.img`]: (_ours, criu) => {
      for (const f of criu as { cwd_id: number; root_id: number }[]) Object.assign(f, { cwd_id: renumber(f.cwd_id), root_id: renumber(f.root_id) });
    },
  };
}

type Itimer = { isec: number; iusec: number; vsec: number; vusec: number };
type Posix = { it_id: number; isec: number; insec: number; vsec: number; vnsec: number };
type Timers = { real: Itimer; virt: Itimer; prof: Itimer; posix?: Posix[] };

/**
 * Timer values that differ from criu dump's, with why: time left is
 * measured at each dump's own instant, and CRIU's comes later (for
 * ITIMER_VIRTUAL and ITIMER_PROF its parasite's own CPU time counts too);
 * a periodic POSIX timer whose signal is pending is forwarded past each
 * dump's now, so both read less than one interval, in no set order.
 * Intervals, ids and everything else must be equal.
 */
function timerDifferences(ours: Json[], criu: Json[]): void {
  const mine = (ours[0] as { tc: { timers: Timers } }).tc.timers;
  const theirs = (criu[0] as { tc: { timers: Timers } }).tc.timers;
  for (const kind of ['real', 'virt', 'prof'] as const) {
    const us = (t: Itimer) => Number(t.vsec) * 1e6 + Number(t.vusec);
    const ahead = us(mine[kind]) - us(theirs[kind]);
    assert.ok(ahead >= 0 && ahead < 600e6, `ITIMER ${kind}: ${us(mine[kind])} us left at our dump, ${us(theirs[kind])} at CRIU's, later`);
    Object.assign(mine[kind], { vsec: theirs[kind].vsec, vusec: theirs[kind].vusec });
  }
  assert.deepEqual((mine.posix ?? []).map((p) => p.it_id), (theirs.posix ?? []).map((p) => p.it_id), 'the same POSIX timers, in the same order');
  (theirs.posix ?? []).forEach((t, i) => {
    const o = mine.posix![i];
    const ns = (sec: number, nsec: number) => Number(sec) * NSEC + Number(nsec);
    const interval = ns(t.isec, t.insec);
    const [l, r] = [ns(o.vsec, o.vnsec), ns(t.vsec, t.vnsec)];
    if (interval > 0) assert.ok(l > 0 && l <= interval && r > 0 && r <= interval, `POSIX timer ${t.it_id}: ${l} and ${r} ns left, within an interval`);
    else assert.ok(l >= r && l - r < 600 * NSEC, `POSIX timer ${t.it_id}: ${l} ns left at our dump, ${r} at CRIU's, later`);
    Object.assign(o, { vsec: t.vsec, vnsec: t.vnsec });
  });
}

// One program on each kernel; guest A for the dumps (ovmigrate's and CRIU's of the same frozen tree), guest B for the restore.
for (const kernel of POOL_KERNELS) {
  describe(`ovmigrate dump: eventfd, epoll, signalfd, timerfd, inotify, fanotify, FIFOs, file locks, leases and deleted files${kernelTitle(kernel)}`, function () {
    const suite = new PoolSuite(`dumpevents${kernelTag(kernel)}`, [{ slot: 'a', kernel }, { slot: 'b', kernel }]);
    const sh = suite.sh;
    const cg = suite.cgroup;
    let share: string;
    let a: UpResult;
    let b: UpResult;
    /** The tree's root (files.c), the child holding its flock, and events.c, its other child. */
    let pid: number;
    let locker: number;
    let events: number;
    let fdsLine: number[];
    const log = (name = 'events') => fs.readFileSync(path.join(share, `${name}.log`), 'utf8');

    /** Starts a program in guest A in a cgroup of its own, output appended to NAME.log; its pid once it has printed a line. */
    async function start(name: string, command: string): Promise<number> {
      const pid = Number((await sh(a.name, `
        mkdir -p /sys/fs/cgroup${cg}/${name}; cd ${share}
        setsid sh -c 'echo $$ > /sys/fs/cgroup${cg}/${name}/cgroup.procs; exec ${command}' >> ${share}/${name}.log 2>&1 </dev/null &
        for i in $(seq 100); do [ -s ${share}/${name}.log ] && break; sleep 0.1; done
        head -1 /sys/fs/cgroup${cg}/${name}/cgroup.procs`)).trim());
      assert.ok(pid > 1, `${name} started`);
      return pid;
    }

    before(async function () {
      requirePrograms(this, ['qemu-system-x86_64', 'gcc', 'criu', 'crit']);
      share = suite.dir;
      execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, 'events'), path.join(PROGRAMS, 'events.c')]);
      execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, 'files'), path.join(PROGRAMS, 'files.c')]);
      execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, 'linked'), path.join(PROGRAMS, 'linked.c')]);
      execFileSync('gcc', ['-O1', '-static', '-pthread', '-o', path.join(share, 'taskstate'), path.join(PROGRAMS, 'taskstate.c')]);
      fs.writeFileSync(path.join(share, 'uring.c'), URING_C);
      execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, 'uring'), path.join(share, 'uring.c')]);
      [a, b] = await suite.guests();
      // Pids far above guest B's own (and the dump suite's), so the restored process finds its pid free there.
      await sh(a.name, 'echo 32000 > /proc/sys/kernel/ns_last_pid');
      // One tree, one dump: files.c holds the file objects and runs events.c as its second child.
      await sh(a.name, FILES_DIR_SETUP);
      await start('events', `${share}/files ${FILES_DIR} ${share}/events`);
      await sh(a.name, `for i in $(seq 100); do grep -q '^tick' ${share}/events.log && break; sleep 0.1; done`);
      [pid, locker, events] = /^files (\d+) (\d+) (\d+)$/m.exec(log())!.slice(1).map(Number);
      fdsLine = /^start ([\d ]+)$/m.exec(log())![1].split(' ').map(Number);
      await sh(a.name, `echo 1 > /sys/fs/cgroup${cg}/events/cgroup.freeze; while ! grep -q 'frozen 1' /sys/fs/cgroup${cg}/events/cgroup.events; do sleep 0.1; done; sleep 0.5`);
    });
    after(() => suite.leave());

    it('images equal CRIU\'s own dump of the same frozen tree, field by field (timerfd times as listed)', async () => {
      const ours = path.join(share, 'ours');
      const theirs = path.join(share, 'criu');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', ours, '--leave-running']);
      await sh(a.name, `mkdir ${theirs} && criu dump -t ${pid} -D ${theirs} --leave-running --file-locks --freeze-cgroup /sys/fs/cgroup${cg}/events -o dump.log` +
        ` || { tail -20 ${theirs}/dump.log; exit 1; }`, 120);
      assertSameDump(ours, theirs, { 'files.img': timerfdDifferences });
      const decode = (name: string) => JSON.parse(execFileSync('crit', ['decode', '-i', path.join(ours, name)], { encoding: 'utf8' })) as { entries: Record<string, Json>[] };
      // The epoll's eventfd was added under an fd closed since: both name the dup that still holds it.
      const files = decode('files.img');
      const epoll = files.entries.find((e) => e.type === 'EVENTPOLL')!.epfd as { tfd: { tfd: number; data: number | string }[] };
      const owned = files.entries.find((e) => e.type === 'TIMERFD' && Number((e.tfd as { settime_flags: string }).settime_flags) === 1)!.tfd as { fown: Record<string, number> };
      assert.deepEqual([owned.fown.pid, owned.fown.signum], [events, 12], 'the absolute timerfd is owned for SIGIO by the process, with SIGUSR2');
      const [, pipe, ev1, ev2, sock] = fdsLine;
      assert.deepEqual(epoll.tfd.map((t) => t.tfd).sort((x, y) => x - y), [pipe, ev2, sock].sort((x, y) => x - y),
        `the eventfd added as fd ${ev1} is watched through its dup, fd ${ev2}: ${JSON.stringify(epoll.tfd)}`);
      // files.c: inotify on tmpfs (wd 1 was removed), a FIFO with data, a POSIX lock and a child's flock, leases, deleted files.
      const ify = files.entries.find((e) => e.type === 'INOTIFY')!.ify as { wd: { wd: number; mask: string | number; f_handle: { path: string } }[] };
      assert.deepEqual(ify.wd.map((w) => [w.wd, Number(w.mask), w.f_handle.path]).sort(), [[2, 0x100, FILES_DIR], [3, 0x2, `${FILES_DIR}/watched`]]);
      const locks = decode('filelocks.img').entries.map((l) => [l.flag, l.type, l.pid, l.start, l.len].map(Number));
      assert.deepEqual(locks.filter(([flag]) => flag !== FL_LEASE).map(([flag, , p, start, len]) => [flag, p, start, len]).sort(),
        [[1, pid, 0, 10], [2, locker, 0, 0]].sort(), 'the POSIX lock of the process and the flock of its child');
      // The read lease, the write lease and the read lease being broken to F_UNLCK, at the process's fds (its child shares the files).
      assert.deepEqual(locks.filter(([flag]) => flag === FL_LEASE).map(([, type, p]) => [type, p]), [[0, pid], [1, pid], [LEASE_BREAKING | 2, pid]],
        'the leases, the breaking one with LEASE_BREAKING and the type it is broken to');
      // fanotify: an ignore-only mark on lock (FAN_MARK_IGNORED_SURV_MODIFY), a mount mark on DIR's mount, an inode mark on watched, the newest first.
      type Mark = { type: string; mflags: string | number; mask: string | number; ignored_mask: string | number; ie?: { f_handle: { path: string } }; me?: { path: string } };
      const ffy = files.entries.find((e) => e.type === 'FANOTIFY')!.ffy as { faflags: string | number; evflags: string | number; mark: Mark[] };
      assert.deepEqual([Number(ffy.faflags), Number(ffy.evflags)], [0x3, 0x8000], 'FAN_CLOEXEC|FAN_NONBLOCK, events opened O_RDONLY|O_LARGEFILE');
      assert.deepEqual(ffy.mark.map((m) => [m.type, Number(m.mflags), Number(m.mask), Number(m.ignored_mask), m.ie?.f_handle.path ?? m.me?.path]), [
        ['INODE', 0x40, 0, 0x8, `${FILES_DIR}/lock`], ['MOUNT', 0, 0x8, 0, '/dev/shm'], ['INODE', 0, 0x2, 0, `${FILES_DIR}/watched`],
      ]);
      assert.deepEqual(decode('fifo-data.img').entries.map((e) => Number(e.bytes)), [14], 'the FIFO\'s queued bytes');
      // Three deleted files (two fds, one mapping), each a ghost; crit leaves out a small ghost's raw bytes, so compare the files whole.
      assert.equal(decode('remap-fpath.img').entries.length, 3);
      const ghosts = (d: string) => fs.readdirSync(d).filter((f) => f.startsWith('ghost-file-')).sort();
      assert.deepEqual(ghosts(ours), ghosts(theirs));
      assert.equal(ghosts(ours).length, 3);
      for (const g of ghosts(ours)) assert.ok(fs.readFileSync(path.join(ours, g)).equals(fs.readFileSync(path.join(theirs, g))), `${g} byte for byte`);
    });

    it('restored by stock CRIU in guest B: timers, counters, epoll, signalfd, inotify, fanotify, the FIFO and deleted files go on; the locks and leases are held', async () => {
      const dir = path.join(share, 'final');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir]);
      const before = log().length;
      // Guest B's tmpfs has the same names (tmpfs contents are not carried when the mount namespace is not dumped).
      await sh(b.name, `${FILES_DIR_SETUP}; criu restore -D ${dir} -d --file-locks -o restore.log || { tail -20 ${dir}/restore.log; exit 1; }; sleep 2;` +
        ` touch ${FILES_DIR}/after; echo more >> ${FILES_DIR}/watched; sleep 0.5; kill -USR1 ${events} ${pid}; sleep 1.5`, 120);
      const held = await sh(b.name, `python3 -c "
import fcntl
f = open('${FILES_DIR}/lock', 'r+')
for name, take in (('flock', lambda: fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)), ('posix', lambda: fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0))):
    try:
        take(); print(name, 'free')
    except OSError:
        print(name, 'held')
"; grep LEASE /proc/locks; sleep 1`);
      await sh(b.name, `kill -9 ${pid} ${locker} ${events}`);
      const after = log().slice(before);
      const ticks = [...after.matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1]));
      assert.ok(ticks.length >= 4, `the periodic timerfd keeps firing after the restore:\n${after.slice(0, 400)}`);
      assert.ok(ticks[0] >= 1, 'its expirations unread at the dump are read first');
      assert.match(after, /^signal 10$/m, 'the signalfd takes a SIGUSR1 sent after the restore');
      const epoll = /^epoll (\d+)(.*)$/m.exec(after)!;
      assert.equal(Number(epoll[1]), 3, `the pipe, the eventfd and the socket are still ready: ${epoll[0]}`);
      const data = epoll[2].trim().split(' ').map((x) => x.split(':')[0]).sort();
      const [, pipe, ev1, , sock] = fdsLine;
      assert.deepEqual(data, [(0x1000 + pipe).toString(16), (0x2000 + ev1).toString(16), 'abcdef0123456789'].sort(), `each target's data (socket fd ${sock})`);
      const values = /^eventfd (\d+) semaphore (\d+) absolute (-?\d+) interval (\d+)$/m.exec(after)!;
      assert.ok(values, after);
      assert.equal(values[1], '5', 'the eventfd counter');
      // CRIU 3.17 restores eventfd(counter, 0): EFD_SEMAPHORE is lost, so the read takes the whole counter.
      assert.equal(values[2], '3', 'the semaphore eventfd counter (read whole: CRIU 3.17 does not keep EFD_SEMAPHORE)');
      assert.ok(Number(values[3]) > 3000 && Number(values[3]) <= 3600, `the absolute timer is still about an hour ahead (${values[3]} s)`);
      assert.equal(values[4], '200000000', 'the periodic timer keeps its interval');
      assert.match(after, /^inotify 2 100 after$/m, 'the directory\'s watch reports a file created after the restore');
      assert.match(after, /^inotify 3 2 -$/m, 'the file\'s watch reports its change');
      assert.match(after, /^fifo queued-in-fifo$/m, 'the FIFO\'s queued data reads back');
      assert.match(after, /^deleted 0 ghost-contents$/m, 'the deleted file\'s contents read back, and it is deleted again');
      assert.match(after, /^sparse 20480 first last$/m, 'the sparse deleted file: its size and both data parts');
      assert.match(after, /^mapped mapped-contents$/m, 'the mapping of a deleted file');
      assert.match(held, /flock held/, 'the child\'s flock is still held');
      assert.match(held, /posix held/, 'the POSIX lock is still held');
      // F_GETLEASE of each lease's fd in the restored process; /proc/locks shows the third being broken again (by CRIU's restore).
      assert.match(after, /^lease 0 1 2$/m, 'the read and the write lease are held, the third is being broken to F_UNLCK');
      for (const state of ['ACTIVE +READ', 'ACTIVE +WRITE', 'BREAKING +UNLCK']) assert.match(held, new RegExp(`LEASE +${state} ${pid} `), held);
      // fanotify: the inode mark on watched (FAN_MODIFY) and the mount mark (FAN_CLOSE_WRITE, also for the file touched after the
      // restore) report; the ignore mark keeps lock's FAN_CLOSE_WRITE (the python check's open) away.
      const fan = [...after.matchAll(/^fanotify ([0-9a-f]+) (\S+)$/gm)].map((m) => [parseInt(m[1], 16), m[2]] as const);
      const on = (name: string) => fan.filter(([, p]) => p === `${FILES_DIR}/${name}`).reduce((a, [mask]) => a | mask, 0);
      assert.equal(on('watched'), 0x2 | 0x8, `FAN_MODIFY and FAN_CLOSE_WRITE on watched: ${JSON.stringify(fan)}`);
      assert.equal(on('after') & 0x8, 0x8, `FAN_CLOSE_WRITE on the file created after the restore: ${JSON.stringify(fan)}`);
      assert.equal(on('lock'), 0, `nothing on lock, whose mark ignores FAN_CLOSE_WRITE: ${JSON.stringify(fan)}`);
    });

    it('a deleted open file that still has another name: opened by that name (criu dump 3.17 refuses it, or with --link-remap links it back in ' +
      'the guest; the images otherwise equal), restored by stock CRIU in guest B where the process reads and writes the file that name shows', async () => {
      const dir = '/dev/shm/ovm-linked';
      await sh(a.name, `rm -rf ${dir}; mkdir -p ${dir}`);
      const pid = await start('linked', `${share}/linked ${dir}`);
      const fd = Number(/^linked \d+ (\d+)$/m.exec(log('linked'))![1]);
      await suite.freeze(a.name, 'linked', 1);
      const ours = path.join(share, 'linked-ours');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', ours, '--leave-running']);
      const images = decodeDir(ours);
      const fdinfo = [...images].find(([n]) => n.startsWith('fdinfo-'))![1] as { fd: number; id: number }[];
      const id = fdinfo.find((f) => f.fd === fd)!.id;
      const reg = (images.get('files.img') as { id: number; reg?: { name: string } }[]).find((e) => e.id === id)!.reg!;
      assert.equal(reg.name, `${dir}/other`, 'the entry opens the other name');
      assert.deepEqual((images.get('remap-fpath.img') as { orig_id: number }[]).map((r) => r.orig_id).includes(id), false, 'no remap for it');
      // criu --link-remap makes DIR/link_remap.N in guest A (criu/files-reg.c create_link_remap).
      const theirs = path.join(share, 'linked-criu');
      await sh(a.name, `mkdir ${theirs} && criu dump -t ${pid} -D ${theirs} --leave-running --link-remap --freeze-cgroup /sys/fs/cgroup${cg}/linked -o dump.log` +
        ` || { tail -20 ${theirs}/dump.log; exit 1; }`, 120);
      assertSameDump(ours, theirs, linkRemapDifferences(id, `${dir}/orig`, `${dir}/other`, pid));
      // With --leave-running criu unlinks its link again at the end (criu/cr-dump.c: delete_link_remaps), so its images would
      // not restore: ovmigrate's need nothing of the kind.
      assert.equal((await sh(a.name, `ls ${dir}`)).trim(), 'other', 'only the other name is left in guest A');
      // Without --link-remap criu refuses. (After the comparison: its dump reads the ghost, which moves its atime.)
      const refused = path.join(share, 'linked-refused');
      const criu = await sh(a.name, `mkdir ${refused}; criu dump -t ${pid} -D ${refused} --leave-running --freeze-cgroup /sys/fs/cgroup${cg}/linked -o dump.log` +
        ` && echo dumped || { echo refused; grep -o "Can't create link remap for .*" ${refused}/dump.log; }`, 120);
      assert.match(criu, new RegExp(`^refused\\nCan't create link remap for .*${dir.slice(1)}/orig`, 'm'), criu);

      const final = path.join(share, 'linked-final');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', final]);
      const before = log('linked').length;
      // Guest B has the other name with the same contents and mode (restore checks both), as a container's rootfs would carry it.
      const after = await sh(b.name, `rm -rf ${dir}; mkdir -p ${dir}; printf linked-contents > ${dir}/other; chmod 640 ${dir}/other;` +
        ` criu restore -D ${final} -d -o restore.log || { tail -20 ${final}/restore.log; exit 1; }; sleep 1;` +
        ` readlink /proc/${pid}/fd/${fd}; printf +name >> ${dir}/other; kill -USR1 ${pid}; sleep 1; cat ${dir}/other; echo; kill -9 ${pid}`, 120);
      const lines = log('linked').slice(before);
      assert.match(lines, /^read 1 linked-contents\+name$/m, `the process reads through its fd what was written by the name:\n${lines}`);
      assert.match(lines, /^appended$/m, lines);
      assert.deepEqual(after.trim().split('\n'), [`${dir}/other`, 'linked-contents+name+fd'], 'the fd is the name\'s file; the name shows what the process wrote');
    });

    it('task state: two stacked seccomp filters, interval and POSIX timers and a zombie, the same images as CRIU\'s (times as listed), restored by stock CRIU in guest B where the timers fire and the filters hold', async () => {
      const pid = await start('taskstate', `${share}/taskstate`);
      const [, zombie, thread] = /^start (\d+) (\d+)$/m.exec(log('taskstate'))!.map(Number);
      await suite.freeze(a.name, 'taskstate', 1);
      const ours = path.join(share, 'taskstate-ours');
      const theirs = path.join(share, 'taskstate-criu');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', ours, '--leave-running']);
      await sh(a.name, `mkdir ${theirs} && criu dump -t ${pid} -D ${theirs} --leave-running --freeze-cgroup /sys/fs/cgroup${cg}/taskstate -o dump.log` +
        ` || { tail -20 ${theirs}/dump.log; exit 1; }`, 120);
      assertSameDump(ours, theirs, { [`core-${pid}.img`]: timerDifferences });
      const images = decodeDir(ours);
      // The leader's chain as criu writes it (getcpu's, then sysinfo's naming it prev; the thread installs from sysinfo's along prev),
      // then the thread's copy of the first filter: the chains differ, so no TSYNC.
      const filters = (images.get('seccomp.img')![0] as { seccomp_filters: { prev?: number; flags: number }[] }).seccomp_filters;
      assert.deepEqual(filters.map((f) => [f.prev ?? null, Number(f.flags)]), [[null, 0], [0, 0], [null, 0]], JSON.stringify(filters));
      const core = (p: number) => images.get(`core-${p}.img`)![0] as { thread_core: { seccomp_mode?: string; seccomp_filter?: number } };
      assert.deepEqual([core(pid).thread_core.seccomp_mode, core(pid).thread_core.seccomp_filter], ['filter', 1]);
      assert.deepEqual([core(thread).thread_core.seccomp_mode, core(thread).thread_core.seccomp_filter], ['filter', 2]);
      assert.ok(isZombie(images, zombie), 'the zombie child is in the tree');

      const dir = path.join(share, 'taskstate-final');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir]);
      const before = log('taskstate').length;
      await sh(b.name, `criu restore -D ${dir} -d -o restore.log || { tail -20 ${dir}/restore.log; exit 1; }; sleep 2; kill -USR1 ${pid}; sleep 1.5; kill -USR1 ${pid}; sleep 1`, 120);
      const states = [...log('taskstate').slice(before).matchAll(
        /^state alarms (\d+) rt (\d+) main (\d+) (\d+) thread (\d+) (\d+) real ([\d.]+) virt ([\d.]+)\/(\d+) prof ([\d.]+) none (\d+)$/gm)].map((m) => m.slice(1).map(Number));
      assert.equal(states.length, 2, log('taskstate').slice(before));
      const [first, second] = states;
      assert.ok(second[0] > first[0], `ITIMER_REAL still fires (${first[0]} then ${second[0]} SIGALRMs)`);
      assert.ok(second[1] > first[1], `the periodic POSIX timer still fires (${first[1]} then ${second[1]})`);
      assert.deepEqual(second.slice(2, 6), [33, 34, 33, 0], 'sysinfo fails with EDOM on both threads, getcpu with ERANGE on the main thread only');
      assert.equal(second[6], 0.25, 'ITIMER_REAL keeps its interval');
      assert.ok(second[7] > 400 && second[7] <= 500 && second[8] === 1, `ITIMER_VIRTUAL is still armed (${second[7]} s left, every ${second[8]} s)`);
      assert.ok(second[9] > 900 && second[9] <= 1000, `ITIMER_PROF is still armed (${second[9]} s)`);
      assert.ok(second[10] > 3000 && second[10] < 3600, `the SIGEV_NONE timer is still about an hour ahead (${second[10]} s)`);
      const stat = (await sh(b.name, `cat /proc/${zombie}/stat`)).split(' ');
      assert.deepEqual([stat[2], Number(stat[3])], ['Z', pid], 'the zombie is a zombie of the program again');
      assert.match(await sh(b.name, `grep Seccomp /proc/${pid}/status`), /^Seccomp:\s+2$/m);
      await sh(b.name, `kill -9 ${pid}`);
    });

    it('refuses io_uring by name, an fd or only a mapping, with a hint, before writing anything', async () => {
      const pid = await start('uring', `${share}/uring`);
      const [, fd, ring] = /^uring (\d+) 0x([0-9a-f]+)$/m.exec(log('uring'))!;
      const dir = path.join(share, 'uring-img');
      const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`pid ${pid} \\(uring\\) fd ${fd}: an io_uring \\(anon_inode:\\[io_uring\\]\\).*UV_USE_IO_URING=0`));
      assert.match(r.stderr, new RegExp(`pid ${pid} \\(uring\\) mapping 0x${ring}-0x[0-9a-f]+: an io_uring`));
      assert.ok(!fs.existsSync(dir), 'no image directory');
      await sh(a.name, `kill -9 ${pid}`);
    });

    it('refuses an epoll whose target file only another task still holds, as criu dump does, before writing anything', async () => {
      // The parent watches a pipe's read end, forks, and closes it: only the child (which closed its copy of the epoll) holds it.
      fs.writeFileSync(path.join(share, 'escaped.py'), [
        'import os, select, time',
        'r, w = os.pipe(); ep = select.epoll(); ep.register(r, select.EPOLLIN)',
        'if os.fork() == 0:',
        '    ep.close()',
        '    while True: time.sleep(1)',
        "os.close(r); print('epoll', ep.fileno(), 'target', r, flush=True)",
        'while True: time.sleep(0.2)',
      ].join('\n') + '\n');
      const parent = await start('escaped', `python3 ${share}/escaped.py`);
      const [, epfd, target] = /^epoll (\d+) target (\d+)$/m.exec(log('escaped'))!;
      const dir = path.join(share, 'escaped-img');
      const r = await cli(['dump', '--vm', a.name, '--pid', String(parent), '-D', dir]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`pid ${parent} \\(python3\\) fd ${epfd}: epoll watches a file added as fd ${target} \\(inode \\d+\\) that this task no longer holds`));
      assert.ok(!fs.existsSync(dir), 'no image directory');
      assert.match(await sh(a.name, `cat /sys/fs/cgroup${cg}/escaped/cgroup.events`), /frozen 0/, 'thawed again');
      // criu/eventpoll.c: kcmp finds the file in the child, whose pid is not the epoll's owner's: the dump fails.
      const theirs = path.join(share, 'escaped-criu');
      const criu = await sh(a.name, `mkdir ${theirs}; criu dump -t ${parent} -D ${theirs} --leave-running --freeze-cgroup /sys/fs/cgroup${cg}/escaped -o dump.log` +
        ` && echo dumped || { echo refused; grep -i error ${theirs}/dump.log | tail -3; }`, 120);
      assert.match(criu, /^refused/, criu);
    });

    it('refuses a fanotify mark on a whole file system (FAN_MARK_FILESYSTEM) by name, before writing anything; criu dump 3.17 drops it silently', async () => {
      fs.writeFileSync(path.join(share, 'fanotify.py'), [
        'import ctypes, os, time',
        'libc = ctypes.CDLL(None, use_errno=True)',
        'libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]',
        "fd = libc.fanotify_init(0, os.O_RDONLY)  # FAN_CLASS_NOTIF",
        "assert libc.fanotify_mark(fd, 0x1 | 0x100, 0x20, -100, b'/dev/shm') == 0, ctypes.get_errno()  # FAN_MARK_ADD|FAN_MARK_FILESYSTEM, FAN_OPEN",
        "print('fanotify', fd, flush=True)",
        'while True: time.sleep(1)',
      ].join('\n') + '\n');
      const pid = await start('fanotify', `python3 ${share}/fanotify.py`);
      const fd = Number(/^fanotify (\d+)$/m.exec(log('fanotify'))![1]);
      assert.ok(fd > 2, log('fanotify'));
      const dir = path.join(share, 'fanotify-img');
      const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`pid ${pid} \\(python3\\) fd ${fd}: fanotify mark on the file system of device \\d+:\\d+ \\(FAN_MARK_FILESYSTEM`));
      assert.ok(!fs.existsSync(dir), 'no image directory');
      // criu/proc_parse.c reads no "fanotify sdev:" line of fdinfo: its image has the group without the mark.
      const theirs = path.join(share, 'fanotify-criu');
      await sh(a.name, `mkdir ${theirs} && criu dump -t ${pid} -D ${theirs} --leave-running --freeze-cgroup /sys/fs/cgroup${cg}/fanotify -o dump.log` +
        ` || { tail -20 ${theirs}/dump.log; exit 1; }`, 120);
      const group = (decodeDir(theirs).get('files.img') as { type: string; ffy?: { mark?: unknown[] } }[]).find((e) => e.type === 'FANOTIFY');
      assert.deepEqual(group?.ffy?.mark ?? [], [], 'CRIU dumped the group and dropped its mark');
      await sh(a.name, `kill -9 ${pid}`);
    });

    it('refuses an inotify watch on overlayfs by name, before writing anything, as criu dump 3.17 does ("Can\'t dump that handle")', async () => {
      const o = '/dev/shm/ovm-ovl';
      await sh(a.name, `umount ${o}/merged 2>/dev/null; rm -rf ${o}; mkdir -p ${o}/lower ${o}/upper ${o}/work ${o}/merged && echo lower > ${o}/lower/watched &&` +
        ` mount -t overlay overlay -o lowerdir=${o}/lower,upperdir=${o}/upper,workdir=${o}/work ${o}/merged`);
      fs.writeFileSync(path.join(share, 'ovlwatch.py'), [
        'import ctypes, time',
        'libc = ctypes.CDLL(None, use_errno=True)',
        'fd = libc.inotify_init1(0)',
        `wd = libc.inotify_add_watch(fd, b'${o}/merged/watched', 0x2)  # IN_MODIFY`,
        'assert wd > 0, ctypes.get_errno()',
        "print('inotify', fd, wd, flush=True)",
        'while True: time.sleep(1)',
      ].join('\n') + '\n');
      const pid = await start('ovlwatch', `python3 ${share}/ovlwatch.py`);
      const [, fd, wd] = /^inotify (\d+) (\d+)$/m.exec(log('ovlwatch'))!;
      const dir = path.join(share, 'ovlwatch-img');
      const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`pid ${pid} \\(python3\\) fd ${fd}: inotify watch ${wd} on inode \\d+ \\(device 0:\\d+\\) is on overlayfs, whose file handles do not open`));
      assert.ok(!fs.existsSync(dir), 'no image directory');
      // criu/fsnotify.c check_open_handle: the handle does not open and irmap finds no path in its fixed directories.
      const theirs = path.join(share, 'ovlwatch-criu');
      const criu = await sh(a.name, `mkdir ${theirs}; criu dump -t ${pid} -D ${theirs} --leave-running --freeze-cgroup /sys/fs/cgroup${cg}/ovlwatch -o dump.log` +
        ` && echo dumped || { echo refused; grep -o "Can't dump that handle" ${theirs}/dump.log; }`, 180);
      assert.match(criu, /^refused\nCan't dump that handle$/m, criu);
      await sh(a.name, `kill -9 ${pid}; sleep 0.5; umount ${o}/merged`);
    });

    it('refuses a task in a nested pid namespace, naming it, as criu dump 3.17 does (criu/namespaces.c: "Can\'t dump nested pid namespace"), before writing anything', async () => {
      fs.writeFileSync(path.join(share, 'nested.sh'), 'unshare -p -f sleep 100000 &\necho started\nexec sleep 100000\n');
      const root = await start('nested', `sh ${share}/nested.sh`);
      // The sleep that is pid 1 of the new namespace: two numbers on its NSpid line.
      const inner = Number((await sh(a.name, `for i in $(seq 100); do for p in $(cat /sys/fs/cgroup${cg}/nested/cgroup.procs); do
        grep -qE '^NSpid:[[:space:]]+[0-9]+[[:space:]]+1$' /proc/$p/status && { echo $p; exit 0; }; done; sleep 0.1; done`)).trim());
      assert.ok(inner > 1, 'the task in the nested namespace');
      const dir = path.join(share, 'nested-img');
      const r = await cli(['dump', '--vm', a.name, '--pid', String(root), '-D', dir]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`task ${inner} is in a nested pid namespace`));
      assert.ok(!fs.existsSync(dir), 'no image directory');
      const theirs = path.join(share, 'nested-criu');
      const criu = await sh(a.name, `mkdir ${theirs}; criu dump -t ${root} -D ${theirs} --leave-running --freeze-cgroup /sys/fs/cgroup${cg}/nested -o dump.log` +
        ` && echo dumped || { echo refused; grep 'dump nested pid namespace' ${theirs}/dump.log; }`, 120);
      assert.match(criu, new RegExp(`^refused\\n.*Can't dump nested pid namespace for ${inner}$`, 'm'), criu);
      await sh(a.name, `kill -9 $(cat /sys/fs/cgroup${cg}/nested/cgroup.procs)`);
    });
  });
}
