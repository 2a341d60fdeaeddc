import { FakeKernel } from './fake-program.js';
import { KERNEL_STRUCTS } from './kernel-structs.js';
import { Fields, StructDecls } from './kernel-types.js';

/** The 6.1/6.12 members the event-file readers use (their layouts are the same on both, checked against each BTF). */
export const EVENT_STRUCTS: StructDecls = {
  file: [...(KERNEL_STRUCTS.file as Fields), ['f_owner', 'fown_struct']],
  fown_struct: [['pid', 'ptr'], ['pid_type', 'u32'], ['uid', 'kuid_t'], ['euid', 'kuid_t'], ['signum', 's32']],
  eventfd_ctx: [['kref', 'u32'], ['count', 'u64'], ['flags', 'u32'], ['id', 's32']],
  sigset_t: [['sig', 'u64[1]']],
  signalfd_ctx: [['sigmask', 'sigset_t']],
  timerqueue_node: [['node', 'rb_node'], ['expires', 's64']],
  hrtimer: [['node', 'timerqueue_node'], ['_softexpires', 's64'], ['state', 'u8']],
  alarm: [['node', 'timerqueue_node'], ['timer', 'hrtimer'], ['state', 's32']],
  timerfd_ctx_t: { fields: [['tmr', 'hrtimer'], ['alarm', 'alarm']], union: true },
  timerfd_ctx: [['t', 'timerfd_ctx_t'], ['tintv', 's64'], ['moffs', 's64'], ['ticks', 'u64'], ['clockid', 's32'], ['expired', 'u16'],
    ['settime_flags', 'u16']],
  seqcount_raw_spinlock: [['seqcount', 'u32']],
  tk_read_base: [['clock', 'ptr'], ['mask', 'u64'], ['cycle_last', 'u64'], ['mult', 'u32'], ['shift', 'u32'], ['xtime_nsec', 'u64'], ['base', 's64']],
  timekeeper: [['tkr_mono', 'tk_read_base'], ['tkr_raw', 'tk_read_base'], ['offs_real', 's64'], ['offs_boot', 's64'], ['offs_tai', 's64']],
  rb_root_cached: [['rb_root', 'rb_root'], ['rb_leftmost', '*rb_node']],
  eventpoll: [['rdllist', 'list_head'], ['rbr', 'rb_root_cached'], ['ovflist', 'ptr']],
  epoll_filefd: [['file', '*file'], ['fd', 's32']],
  epoll_event: [['events', 'u32'], ['data', 'u64']],
  epitem: [['rbn', 'rb_node'], ['ffd', 'epoll_filefd'], ['ep', '*eventpoll'], ['event', 'epoll_event']],
};

const SEC = 1_000_000_000n;

/**
 * tk_core in the image: a timekeeper whose CLOCK_MONOTONIC at its last
 * update is `mono` (base + xtime_nsec >> shift), CLOCK_REALTIME `mono +
 * offsReal`, CLOCK_BOOTTIME `mono + 7 s`. Returns tk_core's address.
 */
export function fakeTimekeeper(k: FakeKernel, mono: bigint, offsReal: bigint): bigint {
  const tkCore = k.symbol('tk_core', 8 + k.types.sizeof('timekeeper'));
  const clock = 0xffffffff82000000n;
  k.write(tkCore + 8n, 'timekeeper', {
    'tkr_mono.clock': clock, 'tkr_raw.clock': clock, 'tkr_mono.shift': 8, 'tkr_mono.xtime_nsec': 123n << 8n, 'tkr_mono.base': mono - 123n,
    offs_real: offsReal, offs_boot: 7n * SEC,
  });
  return tkCore;
}
