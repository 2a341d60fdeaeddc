import { EVENT_STRUCTS, fakeTimekeeper } from './event-structs.js';
import { FakeKernel } from './fake-program.js';
import { KERNEL_STRUCTS } from './kernel-structs.js';
import { Fields, StructDecls } from './kernel-types.js';

/** The 6.1 members the seccomp and timer readers use (kernel/seccomp.c, include/linux/posix-timers.h, sched/signal.h). */
export function taskStateStructs(posixHead: 'list_head' | 'hlist_head' = 'list_head'): StructDecls {
  const node = posixHead === 'list_head' ? 'list_head' : 'hlist_node';
  return {
    ...EVENT_STRUCTS,
    list_head: KERNEL_STRUCTS.list_head,
    hlist_head: [['first', '*hlist_node']],
    hlist_node: [['next', '*hlist_node'], ['pprev', 'ptr']],
    upid: KERNEL_STRUCTS.upid,
    pid: KERNEL_STRUCTS.pid,
    atomic_t: [['counter', 's32']],
    atomic64_t: [['counter', 's64']],
    sock_fprog_kern: [['len', 'u16'], ['filter', 'ptr']],
    bpf_prog: [['len', 'u32'], ['orig_prog', '*sock_fprog_kern']],
    seccomp_filter: [['refs', 'u32'], ['log', 'bool'], ['prev', '*seccomp_filter'], ['prog', '*bpf_prog'], ['notif', 'ptr']],
    seccomp: [['mode', 's32'], ['filter_count', 'atomic_t'], ['filter', '*seccomp_filter']],
    cpu_itimer: [['expires', 'u64'], ['incr', 'u64']],
    task_cputime_atomic: [['utime', 'atomic64_t'], ['stime', 'atomic64_t'], ['sum_exec_runtime', 'atomic64_t']],
    thread_group_cputimer: [['cputime_atomic', 'task_cputime_atomic']],
    signal_struct: [...(KERNEL_STRUCTS.signal_struct as Fields), ['posix_timers', posixHead], ['real_timer', 'hrtimer'], ['it_real_incr', 's64'],
      ['it', 'cpu_itimer[2]'], ['cputimer', 'thread_group_cputimer']],
    sigval: { fields: [['sival_int', 's32'], ['sival_ptr', 'ptr']], union: true },
    sifields_timer: [['_tid', 's32'], ['_overrun', 's32'], ['_sigval', 'sigval'], ['_sys_private', 's32']],
    __sifields: { fields: [['_timer', 'sifields_timer']], union: true },
    kernel_siginfo: [['si_signo', 's32'], ['si_errno', 's32'], ['si_code', 's32'], ['_sifields', '__sifields']],
    sigqueue: [['list', 'list_head'], ['flags', 's32'], ['info', 'kernel_siginfo']],
    k_itimer_real: [['timer', 'hrtimer']],
    k_itimer_it: { fields: [['real', 'k_itimer_real']], union: true },
    k_itimer: [['list', node], ['it_clock', 's32'], ['it_id', 's32'], ['it_active', 's32'], ['it_overrun', 's64'], ['it_overrun_last', 's64'],
      ['it_requeue_pending', 's32'], ['it_sigev_notify', 's32'], ['it_interval', 's64'], ['it_pid', '*pid'], ['sigq', '*sigqueue'],
      ['it', 'k_itimer_it']],
    task_struct: [...(KERNEL_STRUCTS.task_struct as Fields), ['seccomp', 'seccomp']],
  };
}

/** A fake kernel with those structs and a timekeeper whose CLOCK_MONOTONIC is `mono`. */
export function taskStateKernel(mono: bigint, posixHead: 'list_head' | 'hlist_head' = 'list_head'): FakeKernel {
  const k = new FakeKernel({ structs: taskStateStructs(posixHead) });
  fakeTimekeeper(k, mono, 1_700_000_000n * 1_000_000_000n);
  return k;
}

/** A seccomp_filter holding `insns` (8 bytes each), on top of `prev`. */
export function fakeFilter(k: FakeKernel, insns: Buffer, prev = 0n, values: Record<string, bigint | number> = {}): bigint {
  const code = k.alloc(insns.length, 8);
  k.put(code, insns);
  const fprog = k.new('sock_fprog_kern', { len: insns.length / 8, filter: code });
  return k.new('seccomp_filter', { prev, prog: k.new('bpf_prog', { len: insns.length / 8, orig_prog: fprog }), ...values });
}

/**
 * A task's seccomp chain of two filters, an armed periodic ITIMER_REAL,
 * ITIMER_PROF and a periodic POSIX timer: the members to give the
 * task_struct (seccomp.*, signal).
 */
export function fakeTaskState(k: FakeKernel, mono: bigint): Record<string, bigint | number> {
  const sec = 1_000_000_000n;
  const filter = fakeFilter(k, Buffer.from('06000000050000000600000000000000', 'hex'), fakeFilter(k, Buffer.from('0600000000000000', 'hex')));
  const signal = k.new('signal_struct', {
    'real_timer.state': 1, 'real_timer.node.expires': mono + sec, it_real_incr: sec,
    'it[0].expires': 100n * sec, 'cputimer.cputime_atomic.utime.counter': sec,
  });
  const list = k.addr('signal_struct', signal, 'posix_timers');
  const timer = k.new('k_itimer', {
    it_id: 0, it_clock: 1, it_interval: sec / 5n, it_requeue_pending: 1, 'it.real.timer.node.expires': mono - 7n,
    sigq: k.new('sigqueue', { 'info.si_signo': 34, 'info._sifields._timer._sigval.sival_ptr': 0x1234n }),
  });
  k.link(list, [k.addr('k_itimer', timer, 'list')]);
  return { 'seccomp.mode': 2, 'seccomp.filter_count.counter': 2, 'seccomp.filter': filter, signal };
}
