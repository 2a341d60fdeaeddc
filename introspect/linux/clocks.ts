import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { Program } from '../kernel/program.js';

/** include/uapi/linux/time.h: the clocks a timerfd may run on. */
export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;
export const CLOCK_BOOTTIME = 7;
export const CLOCK_REALTIME_ALARM = 8;
export const CLOCK_BOOTTIME_ALARM = 9;
const CLOCK_TAI = 11;

/**
 * The guest's clocks, in nanoseconds, as the timekeeper last updated them
 * (kernel/time/timekeeping.c tk_core.timekeeper). The cycles counted since
 * that update are in the clocksource's counter (TSC, HPET), which is not in
 * RAM: these are lower bounds, behind by at most the time since the guest's
 * last tick or interrupt.
 */
export interface GuestClocks {
  /** CLOCK_MONOTONIC: tkr_mono.base + xtime_nsec >> shift (ktime_get() with no cycles since cycle_last). */
  monotonic: bigint;
  /** offs_real, offs_boot and offs_tai: the other clocks are CLOCK_MONOTONIC plus these (ktime_get_with_offset). */
  offsReal: bigint;
  offsBoot: bigint;
  offsTai: bigint;
}

/** The timekeeper inside tk_core: `static struct { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; } tk_core` has no BTF type of its own. */
function timekeeper(prog: Program): KObject {
  const sym = prog.symbols.lookup('tk_core');
  if (!sym) throw new BadDataError('no tk_core in this kernel\'s symbols: the guest\'s clocks cannot be read');
  const seq = prog.btf.sizeof(prog.btf.struct('seqcount_raw_spinlock').id);
  // 6.14 ("timekeeping: Define a struct type for tk_core") names it struct tk_data: take the offset from BTF when there is one.
  const named = prog.btf.byName('tk_data', 'struct');
  const offset = named ? prog.btf.memberOffset('tk_data', 'timekeeper') : (seq + 7) & ~7;
  const tk = KObject.struct(prog, 'timekeeper', sym.address + BigInt(offset));
  const clock = tk.member('tkr_mono.clock').value();
  if (clock === 0n || clock !== tk.member('tkr_raw.clock').value()) {
    throw new BadDataError(`${tk.path}: tkr_mono.clock 0x${clock.toString(16)} is not a clocksource shared with tkr_raw (not a timekeeper)`);
  }
  return tk;
}

export function guestClocks(prog: Program): GuestClocks {
  const tk = timekeeper(prog);
  const shift = tk.member('tkr_mono.shift').num();
  if (shift >= 64) throw new BadDataError(`${tk.path}.tkr_mono.shift is ${shift}`);
  const base = tk.member('tkr_mono.base').value();
  const nsec = tk.member('tkr_mono.xtime_nsec').value() >> BigInt(shift);
  return { monotonic: base + nsec, offsReal: tk.member('offs_real').value(), offsBoot: tk.member('offs_boot').value(), offsTai: tk.member('offs_tai').value() };
}

/** A clock's now (ns) by clock id (hrtimer_clock_base's get_time, alarmtimer's base). */
export function clockNow(clocks: GuestClocks, clockid: number): bigint {
  switch (clockid) {
    case CLOCK_MONOTONIC: return clocks.monotonic;
    case CLOCK_REALTIME: case CLOCK_REALTIME_ALARM: return clocks.monotonic + clocks.offsReal;
    case CLOCK_BOOTTIME: case CLOCK_BOOTTIME_ALARM: return clocks.monotonic + clocks.offsBoot;
    case CLOCK_TAI: return clocks.monotonic + clocks.offsTai;
    default: throw new BadDataError(`clock id ${clockid} is not a clock a timer runs on`);
  }
}
