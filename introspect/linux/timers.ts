import { KObject } from '../kernel/object.js';

/** Which of a process's timers are armed (signal_struct): the ones a checkpoint would have to carry. */
export interface ArmedTimers {
  /** ITIMER_REAL (setitimer/alarm): its hrtimer is enqueued (HRTIMER_STATE_ENQUEUED). */
  real: boolean;
  /** ITIMER_PROF or ITIMER_VIRTUAL: a cputimer expiry is set. */
  profOrVirtual: boolean;
  /** Some POSIX timer exists (timer_create): posix_timers is not empty. */
  posix: boolean;
}

export function armedTimers(leader: KObject): ArmedTimers {
  const signal = leader.member('signal').deref();
  const it = signal.member('it');
  const timers = signal.member('posix_timers');
  return {
    real: (signal.member('real_timer.state').num() & 1) !== 0,
    profOrVirtual: it.index(0).member('expires').value() !== 0n || it.index(1).member('expires').value() !== 0n,
    posix: !listEmpty(timers),
  };
}

/**
 * An empty list_head points at itself; an hlist_head is empty when `first`
 * is NULL. signal_struct.posix_timers is an hlist_head by 6.12 ("posix-timers:
 * Convert timer list to hlist"); told apart by
 * the member's BTF type.
 */
function listEmpty(head: KObject): boolean {
  if (head.has('first')) return head.member('first').value() === 0n;
  return head.member('next').value() === head.address;
}
