import { BadDataError } from '../../common/errors.js';
import { KObject, hlistForEach, listForEach } from '../kernel/object.js';
import { CLOCK_BOOTTIME, CLOCK_MONOTONIC, CLOCK_REALTIME, GuestClocks, clockNow } from './clocks.js';

/** include/uapi/asm-generic/siginfo.h */
export const SIGEV_SIGNAL = 0;
export const SIGEV_NONE = 1;
export const SIGEV_THREAD_ID = 4;
const CLOCK_TAI = 11;
/** The clocks whose timers are plain hrtimers (kernel/time/posix-timers.c clock_realtime, clock_monotonic, clock_boottime, clock_tai). */
const HRTIMER_CLOCKS = new Set([CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI]);
/** kernel/time/posix-timers.c REQUEUE_PENDING: the timer's signal is queued, the timer waits for its delivery to re-arm. */
const REQUEUE_PENDING = 1;
const INT_MAX = 0x7fffffffn;
/** A process may hold at most RLIMIT_SIGPENDING timers; a list far longer is a cycle or garbage. */
const MAX_TIMERS = 1 << 20;

/** A POSIX timer (timer_create) as /proc/PID/timers, timer_gettime() and timer_getoverrun() report it. */
export interface PosixTimer {
  id: number;
  clockId: number;
  signo: number;
  /** SIGEV_* (SIGEV_THREAD_ID for a thread target; glibc's SIGEV_THREAD is one). */
  notify: number;
  sivalPtr: bigint;
  /** timer_getoverrun(): it_overrun_last, clamped to INT_MAX. */
  overrun: number;
  /** timer_gettime(): ns left, 0 when disarmed. */
  value: bigint;
  interval: bigint;
  /** The struct pid a SIGEV_THREAD_ID timer signals. */
  notifyPid?: KObject;
  /** Why it cannot be dumped (a clock criu's restore would treat otherwise). */
  unsupported?: string;
}

/**
 * timer_gettime() of an hrtimer-based timer (kernel/time/posix-timers.c
 * common_timer_get): a periodic timer waiting for its signal to be
 * delivered (or a SIGEV_NONE one) is forwarded past now, as the kernel
 * does before reading it; a due, not pending one reads 1 ns (0 for
 * SIGEV_NONE), so it still fires.
 */
function timeLeft(timer: KObject, clocks: GuestClocks, clockId: number, notify: number, interval: bigint): bigint {
  const sigNone = notify === SIGEV_NONE;
  const active = timer.has('it_active') ? timer.member('it_active').num() !== 0 : timer.member('it_status').num() !== 0;
  if (interval === 0n && !active && !sigNone) return 0n;
  const requeue = timer.has('it_requeue_pending')
    ? (timer.member('it_requeue_pending').num() & REQUEUE_PENDING) !== 0
    : timer.member('it_status').num() === 2;
  const now = clockNow(clocks, clockId);
  let expires = timer.member('it.real.timer.node.expires').value();
  if (interval > 0n && (requeue || sigNone) && expires <= now) expires += ((now - expires) / interval + 1n) * interval;
  const left = expires - now;
  if (left <= 0n) return sigNone ? 0n : 1n;
  return left;
}

function readTimer(timer: KObject, clocks: GuestClocks): PosixTimer {
  const id = timer.member('it_id').num();
  const clockId = timer.member('it_clock').num();
  const notify = timer.member('it_sigev_notify').num();
  // A pointer to a preallocated sigqueue, embedded in the timer by later kernels ("posix-timers: Embed sigqueue in struct k_itimer").
  const sigq = timer.member('sigq');
  const info = (sigq.type.kind === 'ptr' ? sigq.deref() : sigq).member('info');
  const interval = timer.member('it_interval').value();
  if (interval < 0n) throw new BadDataError(`${timer.path}.it_interval is ${interval}`);
  const last = timer.member('it_overrun_last').value();
  const base = {
    id, clockId, notify,
    signo: info.member('si_signo').num(),
    sivalPtr: info.member('_sifields._timer._sigval.sival_ptr').value(),
    overrun: Number(last > INT_MAX ? INT_MAX : last < 0n ? 0n : last),
    interval,
    ...(notify & SIGEV_THREAD_ID ? { notifyPid: timer.member('it_pid').deref() } : {}),
  };
  if (!HRTIMER_CLOCKS.has(clockId)) return { ...base, value: 0n, unsupported: `POSIX timer ${id} runs on clock ${clockId} (CPU-time and alarm clocks are not supported yet)` };
  return { ...base, value: timeLeft(timer, clocks, clockId, notify, interval) };
}

/**
 * Every POSIX timer of a process (signal_struct.posix_timers: a list_head
 * on 6.1, an hlist_head since "posix-timers: Convert timer list to hlist",
 * told apart by BTF), oldest first: the kernel adds new timers at the head
 * and criu reverses /proc/PID/timers, so its images hold them in creation
 * order.
 */
export function posixTimers(leader: KObject, clocks: GuestClocks): PosixTimer[] {
  const signal = leader.member('signal').deref();
  const head = signal.member('posix_timers');
  const walk = head.has('first')
    ? hlistForEach(leader.prog, head.address, 'k_itimer', 'list', MAX_TIMERS)
    : listForEach(leader.prog, head.address, 'k_itimer', 'list', MAX_TIMERS);
  const timers: PosixTimer[] = [];
  for (const timer of walk) timers.push(readTimer(timer, clocks));
  return timers.reverse();
}
