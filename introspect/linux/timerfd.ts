import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { anonContext } from './anon-file.js';
import { CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM, CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_REALTIME_ALARM, GuestClocks, clockNow } from './clocks.js';

/** HRTIMER_STATE_ENQUEUED (include/linux/hrtimer.h), ALARMTIMER_STATE_ENQUEUED (include/linux/alarmtimer.h). */
const ENQUEUED = 1;
const TIMERFD_CLOCKS = new Set([CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM]);

/** A timerfd as CRIU's timerfd_entry carries it: times in ns, the value relative to the guest's now. */
export interface TimerFd {
  clockid: number;
  /** Expirations not yet read (TFD_IOC_SET_TICKS on restore). */
  ticks: bigint;
  /** TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET as timerfd_settime was given them. */
  settimeFlags: number;
  /** Time left until the next expiration; 0 when disarmed. */
  value: bigint;
  interval: bigint;
  /** Expirations of a periodic timer the kernel had not counted yet, added to `ticks` (see timerFd). */
  forwarded: bigint;
}

/**
 * A timerfd's state (fs/timerfd.c struct timerfd_ctx): clock, ticks and the
 * time left, expiry minus the guest's now for its clock (timerfd_get_remaining).
 *
 * A periodic timer that fired and was not read yet has expired = 1 and an
 * hrtimer left in the past (timerfd_tmrproc does not restart it; the next
 * read forwards it). fdinfo then shows it_value 0, which CRIU restores as a
 * disarmed timer: it never fires again. Here it is forwarded as that read
 * would (hrtimer_forward_now): next expiry = expires + n * interval > now,
 * ticks += n - 1. A timer already due but whose hrtimer has not run (the
 * guest paused in between) is counted the same way, with its own expiry.
 */
export function timerFd(file: KObject, clocks: GuestClocks): TimerFd {
  const ctx = anonContext(file, 'timerfd_ctx');
  const clockid = ctx.member('clockid').num();
  if (!TIMERFD_CLOCKS.has(clockid)) throw new BadDataError(`${ctx.path}.clockid is ${clockid}, not a timerfd clock`);
  const alarm = clockid === CLOCK_REALTIME_ALARM || clockid === CLOCK_BOOTTIME_ALARM;
  const timer = alarm ? ctx.member('t.alarm') : ctx.member('t.tmr');
  const expires = timer.member('node.expires').value();
  const armed = (timer.member('state').num() & ENQUEUED) !== 0;
  const interval = ctx.member('tintv').value();
  if (interval < 0n) throw new BadDataError(`${ctx.path}.tintv is ${interval}`);
  const expired = ctx.member('expired').num() !== 0;
  const ticks = ctx.member('ticks').value();
  const settimeFlags = ctx.member('settime_flags').num();
  // An expired timer proves the clock passed its expiry, whatever the timekeeper last wrote.
  let now = clockNow(clocks, clockid);
  if (expired && now < expires) now = expires;
  const left = expires - now;
  if (left > 0n) return { clockid, ticks, settimeFlags, value: left, interval, forwarded: 0n };
  if (interval > 0n && (expired || armed)) {
    const n = (now - expires) / interval + 1n;
    const forwarded = expired ? n - 1n : n;
    if (ticks + forwarded >= 1n << 64n) throw new BadDataError(`${ctx.path}: ${ticks} ticks and ${forwarded} more overflow a u64`);
    return { clockid, ticks: ticks + forwarded, settimeFlags, value: expires + n * interval - now, interval, forwarded };
  }
  // A one-shot timer due but not run yet fires as the guest resumes: counted as fired.
  if (armed) return { clockid, ticks: ticks + 1n, settimeFlags, value: 0n, interval, forwarded: 1n };
  return { clockid, ticks, settimeFlags, value: 0n, interval, forwarded: 0n };
}
