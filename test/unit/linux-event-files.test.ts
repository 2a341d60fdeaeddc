import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { IdAllocator } from '../../introspect/dump/ids.js';
import { FileTable } from '../../introspect/dump/files.js';
import { eventpollDumper } from '../../introspect/dump/fds/eventpoll.js';
import { KObject } from '../../introspect/kernel/object.js';
import { PageInfo } from '../../introspect/linux/pages.js';
import { CLOCK_BOOTTIME_ALARM, CLOCK_MONOTONIC, CLOCK_REALTIME, clockNow, guestClocks } from '../../introspect/linux/clocks.js';
import { eventFd } from '../../introspect/linux/eventfd.js';
import { epollTargets } from '../../introspect/linux/eventpoll.js';
import { signalFdMask } from '../../introspect/linux/signalfd.js';
import { timerFd } from '../../introspect/linux/timerfd.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel } from './helpers/fake-program.js';
import { EVENT_STRUCTS, fakeTimekeeper } from './helpers/event-structs.js';

const SEC = 1_000_000_000n;
/** The guest's CLOCK_MONOTONIC at the timekeeper's last update, in the fake kernels below. */
const MONO = 5000n * SEC + 123n;
const OFFS_REAL = 1_700_000_000n * SEC;

function kernel() {
  const k = new FakeKernel({ structs: EVENT_STRUCTS });
  const tkCore = fakeTimekeeper(k, MONO, OFFS_REAL);
  const inode = k.new('inode', { i_mode: 0o600, i_ino: 9n, i_sb: k.new('super_block', { s_dev: 14 }) });
  const anon = (ctx: bigint, values = {}) => k.new('file', { private_data: ctx, f_inode: inode, f_flags: 0o2 | 0o2000000, ...values });
  const obj = (file: bigint) => KObject.struct(k.program(), 'file', file);
  return { k, tkCore, anon, obj };
}

describe('event files on a fake kernel', () => {
  it('reads the guest clocks from tk_core, and refuses a timekeeper that is not one', () => {
    const { k, tkCore } = kernel();
    const clocks = guestClocks(k.program());
    assert.equal(clockNow(clocks, CLOCK_MONOTONIC), MONO);
    assert.equal(clockNow(clocks, CLOCK_REALTIME), MONO + OFFS_REAL);
    assert.equal(clockNow(clocks, CLOCK_BOOTTIME_ALARM), MONO + 7n * SEC);
    assertOvmError(() => clockNow(clocks, 3), BadDataError);
    k.write(tkCore + 8n, 'timekeeper', { 'tkr_raw.clock': 0 });
    assertOvmError(() => guestClocks(k.program()), BadDataError);
  });

  it('eventfd: counter and EFD_SEMAPHORE; signalfd: the complement of the stored mask', () => {
    const { k, anon, obj } = kernel();
    assert.deepEqual(eventFd(obj(anon(k.new('eventfd_ctx', { count: 0xfffffffffffffffen, flags: 1 })))), { counter: 0xfffffffffffffffen, semaphore: true });
    // signalfd(SIGUSR1|SIGTERM): the kernel stores ~mask.
    const want = (1n << 9n) | (1n << 14n);
    assert.equal(signalFdMask(obj(anon(k.new('signalfd_ctx', { 'sigmask.sig[0]': ~want & 0xffff_ffff_ffff_ffffn })))), want);
    assertOvmError(() => eventFd(obj(anon(0n))), BadDataError);
  });

  describe('timerfd: the time left from the guest clock', () => {
    const timer = (values: Record<string, bigint | number>) => {
      const { k, anon, obj } = kernel();
      return timerFd(obj(anon(k.new('timerfd_ctx', values))), guestClocks(k.program()));
    };

    it('an armed relative periodic timer', () => {
      const t = timer({ clockid: 1, 't.tmr.node.expires': MONO + 300_000_000n, 't.tmr.state': 1, tintv: SEC / 2n, ticks: 0 });
      assert.deepEqual(t, { clockid: 1, ticks: 0n, settimeFlags: 0, value: 300_000_000n, interval: SEC / 2n, forwarded: 0n });
    });

    it('a periodic timer that expired unread is forwarded past now, its missed expirations counted', () => {
      // Fired at MONO - 1.2 s (ticks 1), interval 0.5 s: missed MONO - 0.7 and MONO - 0.2; next at MONO + 0.3.
      const t = timer({ clockid: 1, 't.tmr.node.expires': MONO - 1_200_000_000n, expired: 1, tintv: SEC / 2n, ticks: 1 });
      assert.deepEqual([t.ticks, t.value, t.forwarded], [3n, 300_000_000n, 2n]);
    });

    it('an expired timer whose expiry is after the timekeeper\'s last update (the clock passed it)', () => {
      const t = timer({ clockid: 1, 't.tmr.node.expires': MONO + 10n, expired: 1, tintv: SEC, ticks: 1 });
      assert.deepEqual([t.ticks, t.value], [1n, SEC]);
    });

    it('a due periodic timer whose hrtimer has not run, and a due one-shot', () => {
      const p = timer({ clockid: 1, 't.tmr.node.expires': MONO - 10n, 't.tmr.state': 1, tintv: SEC });
      assert.deepEqual([p.ticks, p.value], [1n, SEC - 10n]);
      const o = timer({ clockid: 1, 't.tmr.node.expires': MONO - 10n, 't.tmr.state': 1 });
      assert.deepEqual([o.ticks, o.value], [1n, 0n]);
    });

    it('an absolute realtime timer and a disarmed one; an alarm timer reads its alarm', () => {
      const abs = timer({ clockid: 0, settime_flags: 1, 't.tmr.node.expires': MONO + OFFS_REAL + 3600n * SEC, 't.tmr.state': 1 });
      assert.deepEqual([abs.value, abs.settimeFlags], [3600n * SEC, 1]);
      assert.equal(timer({ clockid: 1 }).value, 0n);
      const alarm = timer({ clockid: 9, 't.alarm.node.expires': MONO + 7n * SEC + 5n, 't.alarm.state': 1 });
      assert.equal(alarm.value, 5n);
    });

    it('hostile values: an unknown clock, a negative interval, ticks that overflow', () => {
      const hostile: Record<string, bigint | number>[] = [{ clockid: 4 }, { clockid: 1, tintv: -1n }, { clockid: 1, expired: 1, tintv: 1n, ticks: 0xffff_ffff_ffff_ffffn, 't.tmr.node.expires': MONO - 100n }];
      for (const values of hostile) {
        assertOvmError(() => timer(values), BadDataError);
      }
    });
  });

  describe('epoll', () => {
    /** An eventpoll with epitems for (fd, file, events, data), linked into a left-leaning chain of rb_nodes in key order. */
    function epoll(k: FakeKernel, items: [number, bigint, number, bigint][]) {
      const ep = k.new('eventpoll');
      const nodes = items.map(([fd, file, events, data]) => k.new('epitem', { 'ffd.fd': fd, 'ffd.file': file, ep, 'event.events': events, 'event.data': data }));
      // In order: a root whose right child chain holds the rest.
      nodes.forEach((n, i) => { if (i + 1 < nodes.length) k.write(n, 'epitem', { 'rbn.rb_right': nodes[i + 1] }); });
      if (nodes.length) k.write(ep, 'eventpoll', { 'rbr.rb_root.rb_node': nodes[0] });
      return { ep, nodes };
    }

    it('lists targets in tree order with events, data, device, inode and position', () => {
      const { k, anon, obj } = kernel();
      const a = k.new('file', { f_inode: k.new('inode', { i_ino: 77n, i_sb: k.new('super_block', { s_dev: 0x800001 }) }), f_pos: 5 });
      const b = anon(k.new('eventfd_ctx'));
      const { ep } = epoll(k, [[4, a, 0x80000019, 0xdeadbeefcafen], [5, b, 1, 5n]]);
      const targets = epollTargets(obj(anon(ep)));
      assert.deepEqual(targets.map((t) => [t.fd, t.file, t.events, t.data, t.dev, t.ino, t.pos]),
        [[4, a, 0x80000019, 0xdeadbeefcafen, 0x800001, 77n, 5n], [5, b, 1, 5n, 14, 9n, 0n]]);
    });

    it('hostile trees: a cycle, more items than the bound, an item of another epoll, a NULL file', () => {
      {
        const { k, anon, obj } = kernel();
        const { ep, nodes } = epoll(k, [[1, anon(0n), 1, 0n], [2, anon(0n), 1, 0n]]);
        k.write(nodes[1], 'epitem', { 'rbn.rb_left': nodes[0] });
        assertOvmError(() => epollTargets(obj(anon(ep))), BadDataError);
      }
      {
        const { k, anon, obj } = kernel();
        const file = anon(0n);
        const { ep } = epoll(k, Array.from({ length: 20 }, (_, i) => [i, file, 1, 0n] as [number, bigint, number, bigint]));
        assertOvmError(() => epollTargets(obj(anon(ep)), 16), BadDataError);
      }
      {
        const { k, anon, obj } = kernel();
        const { ep, nodes } = epoll(k, [[1, anon(0n), 1, 0n]]);
        k.write(nodes[0], 'epitem', { ep: k.new('eventpoll') });
        assertOvmError(() => epollTargets(obj(anon(ep))), BadDataError);
      }
      {
        const { k, anon, obj } = kernel();
        const { ep } = epoll(k, [[1, 0n, 1, 0n]]);
        assertOvmError(() => epollTargets(obj(anon(ep))), BadDataError);
      }
    });

    it('names each target by an fd of the task holding it, or refuses a target the task no longer holds', () => {
      const { k, anon } = kernel();
      const moved = anon(k.new('eventfd_ctx'));
      const same = anon(k.new('eventfd_ctx'));
      const gone = anon(k.new('eventfd_ctx'));
      // fd 3: the epoll; fd 4: `same`; fd 7 and 9: `moved`, added as fd 5 (closed since, after a dup).
      const { ep } = epoll(k, [[4, same, 1, 1n], [5, moved, 4, 2n]]);
      const epFile = anon(ep);
      const fds = new Map([[3, epFile], [4, same], [7, moved], [9, moved]]);
      const maxFds = 64;
      const fdArray = k.alloc(maxFds * 8, 8);
      const open = Buffer.alloc(8);
      for (const [n, f] of fds) { k.u64(fdArray + BigInt(n * 8), f); open[n >> 3] |= 1 << (n & 7); }
      const openFds = k.alloc(8, 8);
      k.put(openFds, open);
      const fdt = k.new('fdtable', { max_fds: maxFds, fd: fdArray, open_fds: openFds, close_on_exec: k.alloc(8, 8) });
      const task = KObject.struct(k.program(), 'task_struct', k.new('task_struct', { pid: 50, files: k.new('files_struct', { fdt }) }));
      const table = () => new FileTable({ prog: k.program(), ids: new IdAllocator(), pages: {} as PageInfo, root: { dentry: 0n, mnt: 0n }, mntIds: false,
        netNsId: () => 1, vpid: () => 0 });
      const toDump = (file: bigint) => ({ file: KObject.struct(k.program(), 'file', file), name: 'anon_inode:[eventpoll]', kind: 'epoll' as const,
        identity: { mntId: 0, dev: 14, ino: 9n, mode: 0o600, inode: KObject.struct(k.program(), 'inode', 0n) }, owner: task, task: 'pid 50 (t)', fd: 'fd 3' });
      const files = table();
      const out = eventpollDumper.dump(files, toDump(epFile));
      assert.deepEqual(out, { opened: { id: 1, type: 'EVENTPOLL' } });
      const e = files.entries[0] as { epfd: { flags: number; tfd: { tfd: number; events: number; data: bigint }[] } };
      assert.equal(e.epfd.flags, 0o2, 'O_CLOEXEC is the fd\'s, not the file\'s');
      assert.deepEqual(e.epfd.tfd.map((t) => [t.tfd, t.events, t.data]), [[4, 1, 1n], [7, 4, 2n]]);
      // The target left the task altogether.
      const { ep: ep2 } = epoll(k, [[6, gone, 1, 0n]]);
      const refused = eventpollDumper.dump(table(), toDump(anon(ep2)));
      assert.equal(refused.opened, undefined);
      assert.match(refused.problems![0].text, /^pid 50 \(t\) fd 3: epoll watches a file added as fd 6 \(inode 9\) that this task no longer holds/);
    });
  });
});
