import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { CLOCK_MONOTONIC, GuestClocks, clockNow } from './clocks.js';

/** HRTIMER_STATE_ENQUEUED (include/linux/hrtimer.h). */
const ENQUEUED = 1;
const NSEC_PER_USEC = 1000n;
/** enum posix_cpu_clocks (include/linux/posix-timers.h): signal_struct.it[] is indexed by these. */
const CPUCLOCK_PROF = 0;
const CPUCLOCK_VIRT = 1;

/** An interval timer as getitimer() reports it, in ns (converted to timeval by the caller). */
export interface Itimer {
  /** Time left until it fires; 0 when disarmed. */
  value: bigint;
  interval: bigint;
}

export interface ProcessItimers {
  real: Itimer;
  virt: Itimer;
  prof: Itimer;
}

/**
 * ITIMER_REAL as getitimer() computes it (kernel/time/itimer.c
 * itimer_get_remtime): signal->real_timer, a CLOCK_MONOTONIC hrtimer, and
 * it_real_incr. A periodic timer whose SIGALRM is still pending is not
 * enqueued (it_real_fn does not restart it; dequeue_signal does): it reads
 * 0 left, and the pending SIGALRM re-arms it after restore. An enqueued
 * timer already due reads 1 us, as in the kernel; less than 1 us left is
 * also 1 us, where getitimer's truncation to timeval would read 0 and
 * disarm it.
 */
function realItimer(signal: KObject, clocks: GuestClocks): Itimer {
  const timer = signal.member('real_timer');
  const interval = signal.member('it_real_incr').value();
  if (interval < 0n) throw new BadDataError(`${signal.path}.it_real_incr is ${interval}`);
  if ((timer.member('state').num() & ENQUEUED) === 0) return { value: 0n, interval };
  const left = timer.member('node.expires').value() - clockNow(clocks, CLOCK_MONOTONIC);
  return { value: left < NSEC_PER_USEC ? NSEC_PER_USEC : left, interval };
}

/**
 * ITIMER_VIRTUAL and ITIMER_PROF (kernel/time/itimer.c get_cpu_itimer):
 * signal->it[] holds absolute expiry in process CPU time; the process's
 * CPU time is the group cputimer's sample (utime + stime for PROF, utime
 * for VIRT), which does not move while the tree is frozen. A timer past its
 * expiry is about to fire: the kernel reads one tick, here 1 us (HZ is
 * not in BTF); either fires at once after restore.
 */
function cpuItimer(signal: KObject, clock: number): Itimer {
  const it = signal.member('it').index(clock);
  const expires = it.member('expires').value();
  const interval = it.member('incr').value();
  if (expires === 0n) return { value: 0n, interval };
  const sample = signal.member('cputimer.cputime_atomic');
  const utime = sample.member('utime.counter').value();
  const t = clock === CPUCLOCK_VIRT ? utime : utime + sample.member('stime.counter').value();
  return { value: expires < t ? NSEC_PER_USEC : expires - t, interval };
}

/** The three interval timers of a process (setitimer), read from its signal_struct. */
export function processItimers(leader: KObject, clocks: GuestClocks): ProcessItimers {
  const signal = leader.member('signal').deref();
  return { real: realItimer(signal, clocks), virt: cpuItimer(signal, CPUCLOCK_VIRT), prof: cpuItimer(signal, CPUCLOCK_PROF) };
}
