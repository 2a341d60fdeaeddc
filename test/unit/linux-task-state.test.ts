import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { seccompFilters } from '../../introspect/dump/seccomp-filters.js';
import { DumpTree } from '../../introspect/dump/tree.js';
import { KObject } from '../../introspect/kernel/object.js';
import { guestClocks } from '../../introspect/linux/clocks.js';
import { processItimers } from '../../introspect/linux/itimers.js';
import { SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD_ID, posixTimers } from '../../introspect/linux/posix-timers.js';
import { seccompState } from '../../introspect/linux/seccomp.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel } from './helpers/fake-program.js';
import { fakeFilter, taskStateKernel } from './helpers/task-state-structs.js';

const SEC = 1_000_000_000n;
const MONO = 5000n * SEC + 123n;
const ALLOW = Buffer.from('0600000000000000', 'hex');
const DENY = Buffer.from('06000000050000000600000000000000', 'hex');

function task(k: FakeKernel, values: Record<string, bigint | number> = {}, signal = 0n): bigint {
  return k.new('task_struct', { comm: 'prog', ...(signal ? { signal } : {}), ...values });
}

function tree(procs: { tids: number[]; threads: bigint[]; zombie?: boolean }[], k: FakeKernel): DumpTree {
  const prog = k.program();
  const processes = procs.map((p) => ({
    tids: p.tids, threads: p.threads.map((t) => KObject.struct(prog, 'task_struct', t)),
    leader: KObject.struct(prog, 'task_struct', p.threads[0]), ...(p.zombie ? { zombie: { exitCode: 0 } } : {}),
  }));
  return { root: processes[0], processes, level: 0 } as unknown as DumpTree;
}

describe('task state on a fake kernel', () => {
  describe('seccomp', () => {
    it('reads a chain newest first, with the programs, LOG and the listener', () => {
      const k = taskStateKernel(MONO);
      const older = fakeFilter(k, ALLOW, 0n, { log: 1 });
      const newer = fakeFilter(k, DENY, older, { notif: 0xffff888000001000n });
      const t = task(k, { 'seccomp.mode': 2, 'seccomp.filter_count.counter': 2, 'seccomp.filter': newer });
      const s = seccompState(KObject.struct(k.program(), 'task_struct', t));
      assert.equal(s.mode, 2);
      assert.deepEqual(s.chain.map((f) => [f.address, f.insns.toString('hex'), f.log, f.notif]),
        [[newer, DENY.toString('hex'), false, 0xffff888000001000n], [older, ALLOW.toString('hex'), true, 0n]]);
    });

    it('refuses a chain that loops, disagrees with filter_count, or lost its program', () => {
      const k = taskStateKernel(MONO);
      const a = fakeFilter(k, ALLOW);
      k.write(a, 'seccomp_filter', { prev: a });
      const looping = task(k, { 'seccomp.mode': 2, 'seccomp.filter_count.counter': 1, 'seccomp.filter': a });
      const miscount = task(k, { 'seccomp.mode': 2, 'seccomp.filter_count.counter': 3, 'seccomp.filter': fakeFilter(k, ALLOW) });
      const lost = fakeFilter(k, ALLOW);
      k.write(k.ptr('seccomp_filter', lost, 'prog'), 'bpf_prog', { orig_prog: 0n });
      const noProg = task(k, { 'seccomp.mode': 2, 'seccomp.filter_count.counter': 1, 'seccomp.filter': lost });
      const long = fakeFilter(k, ALLOW);
      k.write(k.ptr('bpf_prog', k.ptr('seccomp_filter', long, 'prog'), 'orig_prog'), 'sock_fprog_kern', { len: 5000 });
      const tooLong = task(k, { 'seccomp.mode': 2, 'seccomp.filter_count.counter': 1, 'seccomp.filter': long });
      const empty = task(k, { 'seccomp.mode': 2 });
      for (const t of [looping, miscount, noProg, tooLong, empty]) assertOvmError(() => seccompState(KObject.struct(k.program(), 'task_struct', t)), BadDataError);
    });

    it('writes filters as criu does: by tid, oldest first, TSYNC when every thread holds the chain, a copy per process', () => {
      const k = taskStateKernel(MONO);
      const base = fakeFilter(k, ALLOW, 0n, { log: 1 });
      const top = fakeFilter(k, DENY, base);
      const on = (filter: bigint, count: number) => ({ 'seccomp.mode': 2, 'seccomp.filter_count.counter': count, 'seccomp.filter': filter });
      // Process 20: two threads sharing the chain (TSYNC). Process 10: its thread 12 holds only the older filter.
      const t = tree([
        { tids: [20, 21], threads: [task(k, on(top, 2)), task(k, on(top, 2))] },
        { tids: [10, 12], threads: [task(k, on(top, 2)), task(k, on(base, 1))] },
        { tids: [30], threads: [task(k)] },
        { tids: [5], threads: [task(k, on(top, 2))], zombie: true },
      ], k);
      const s = seccompFilters(t);
      // Newest first; each older filter names the newer one written before it, the thread its oldest (restore installs along prev).
      assert.deepEqual(s.filters.map((f) => [f.filter.toString('hex'), f.prev, f.flags]), [
        [DENY.toString('hex'), undefined, 0], [ALLOW.toString('hex'), 0, 2], // pid 10
        [ALLOW.toString('hex'), undefined, 2], // thread 12
        [DENY.toString('hex'), undefined, 1], [ALLOW.toString('hex'), 3, 3], // pid 20, TSYNC
      ]);
      assert.deepEqual(Object.fromEntries([...s.threads].map(([tid, v]) => [tid, v.fields])), {
        10: { seccomp_mode: 2, seccomp_filter: 1 }, 12: { seccomp_mode: 2, seccomp_filter: 2 },
        20: { seccomp_mode: 2, seccomp_filter: 4 }, 21: {}, 30: {},
      });
      assert.equal(seccompFilters(t), s, 'computed once per tree');
    });

    it('refuses a user-notification filter and strict mode, naming them', () => {
      const k = taskStateKernel(MONO);
      const notify = fakeFilter(k, ALLOW, 0n, { notif: 0xffff888000002000n });
      const s = seccompFilters(tree([
        { tids: [7], threads: [task(k, { 'seccomp.mode': 2, 'seccomp.filter_count.counter': 1, 'seccomp.filter': notify })] },
        { tids: [8], threads: [task(k, { 'seccomp.mode': 1 })] },
      ], k));
      assert.match(s.threads.get(7)!.problem!, /user-notification filter \(SECCOMP_FILTER_FLAG_NEW_LISTENER/);
      assert.match(s.threads.get(8)!.problem!, /SECCOMP_MODE_STRICT/);
      assert.deepEqual(s.filters, []);
    });
  });

  describe('interval timers', () => {
    function itimers(values: Record<string, bigint | number>) {
      const k = taskStateKernel(MONO);
      const signal = k.new('signal_struct', values);
      const t = KObject.struct(k.program(), 'task_struct', task(k, {}, signal));
      return processItimers(t, guestClocks(k.program()));
    }

    it('ITIMER_REAL: time left on CLOCK_MONOTONIC; 0 while its SIGALRM is pending; 1 us when due', () => {
      assert.deepEqual(itimers({ 'real_timer.state': 1, 'real_timer.node.expires': MONO + 300_000_000n, it_real_incr: SEC }).real,
        { value: 300_000_000n, interval: SEC });
      assert.deepEqual(itimers({ 'real_timer.state': 0, 'real_timer.node.expires': MONO - 5n, it_real_incr: SEC / 4n }).real, { value: 0n, interval: SEC / 4n });
      assert.deepEqual(itimers({ 'real_timer.state': 1, 'real_timer.node.expires': MONO - 5n }).real, { value: 1000n, interval: 0n });
      assertOvmError(() => itimers({ it_real_incr: -1n }), BadDataError);
    });

    it('ITIMER_PROF and ITIMER_VIRTUAL: absolute CPU time less the process\'s (utime + stime, utime)', () => {
      const it = itimers({
        'it[0].expires': 1000n * SEC, 'it[1].expires': 500n * SEC, 'it[1].incr': SEC,
        'cputimer.cputime_atomic.utime.counter': 2n * SEC, 'cputimer.cputime_atomic.stime.counter': 3n * SEC,
      });
      assert.deepEqual(it.prof, { value: 995n * SEC, interval: 0n });
      assert.deepEqual(it.virt, { value: 498n * SEC, interval: SEC });
      assert.deepEqual(itimers({ 'it[0].expires': SEC, 'cputimer.cputime_atomic.utime.counter': 2n * SEC }).prof, { value: 1000n, interval: 0n }, 'past due');
      assert.deepEqual(itimers({}).virt, { value: 0n, interval: 0n });
    });
  });

  describe('POSIX timers', () => {
    function kernelWithTimers(head: 'list_head' | 'hlist_head', timers: Record<string, bigint | number>[]) {
      const k = taskStateKernel(MONO, head);
      const signal = k.new('signal_struct');
      const list = k.addr('signal_struct', signal, 'posix_timers');
      // The kernel adds each new timer at the head: the list holds the newest first.
      const made = timers.map(({ signo, ptr, ...v }) =>
        k.new('k_itimer', { sigq: k.new('sigqueue', { 'info.si_signo': signo ?? 14, 'info._sifields._timer._sigval.sival_ptr': ptr ?? 0 }), ...v })).reverse();
      const links = made.map((t) => k.addr('k_itimer', t, 'list'));
      if (head === 'list_head') k.link(list, links);
      else {
        k.write(list, 'hlist_head', { first: links[0] ?? 0n });
        links.forEach((l, i) => k.write(l, 'hlist_node', { next: links[i + 1] ?? 0n }));
      }
      const t = KObject.struct(k.program(), 'task_struct', task(k, {}, signal));
      return { k, t, list };
    }

    for (const head of ['list_head', 'hlist_head'] as const) {
      it(`oldest first, with their values as timer_gettime reads them (${head})`, () => {
        const { k, t } = kernelWithTimers(head, [
          // Periodic, fired, its signal pending: forwarded past now.
          { it_id: 0, it_clock: 1, it_sigev_notify: SIGEV_SIGNAL, it_interval: SEC / 5n, it_requeue_pending: 1, 'it.real.timer.node.expires': MONO - SEC / 10n,
            it_overrun_last: 3, signo: 34, ptr: 0x1234abcd },
          // SIGEV_NONE one-shot an hour ahead on CLOCK_REALTIME.
          { it_id: 1, it_clock: 0, it_sigev_notify: SIGEV_NONE, 'it.real.timer.node.expires': MONO + 1_700_000_000n * SEC + 3600n * SEC, signo: 0 },
          // Disarmed.
          { it_id: 2, it_clock: 1, it_sigev_notify: SIGEV_SIGNAL, 'it.real.timer.node.expires': MONO - 1n },
          // Armed one-shot already due: reads 1 ns.
          { it_id: 3, it_clock: 7, it_sigev_notify: SIGEV_SIGNAL, it_active: 1, 'it.real.timer.node.expires': MONO - 1n, it_overrun_last: 0x1_0000_0000n },
        ]);
        const timers = posixTimers(t, guestClocks(k.program()));
        assert.deepEqual(timers.map((p) => [p.id, p.clockId, p.notify, p.signo, p.sivalPtr, p.overrun, p.value, p.interval]), [
          [0, 1, 0, 34, 0x1234abcdn, 3, SEC / 10n, SEC / 5n],
          [1, 0, 1, 0, 0n, 0, 3600n * SEC, 0n],
          [2, 1, 0, 14, 0n, 0, 0n, 0n],
          [3, 7, 0, 14, 0n, 0x7fffffff, 1n, 0n],
        ]);
      });
    }

    it('a thread target names its struct pid; CPU-time clocks are unsupported, by name', () => {
      const { k, t } = kernelWithTimers('list_head', [
        { it_id: 4, it_clock: 1, it_sigev_notify: SIGEV_SIGNAL | SIGEV_THREAD_ID, it_pid: 0xffff888000003000n },
        { it_id: 5, it_clock: 2, it_sigev_notify: SIGEV_SIGNAL },
      ]);
      const [thread, cpu] = posixTimers(t, guestClocks(k.program()));
      assert.equal(thread.notifyPid?.address, 0xffff888000003000n);
      assert.match(cpu.unsupported!, /POSIX timer 5 runs on clock 2/);
    });

    it('refuses a list that loops', () => {
      const { k, t, list } = kernelWithTimers('list_head', [{ it_id: 1 }]);
      k.write(k.ptr('list_head', list, 'next'), 'list_head', { next: k.ptr('list_head', list, 'next') });
      assertOvmError(() => posixTimers(t, guestClocks(k.program())), BadDataError);
    });
  });
});
