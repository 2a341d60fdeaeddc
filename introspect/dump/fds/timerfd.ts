import { guestClocks } from '../../linux/clocks.js';
import { timerFd } from '../../linux/timerfd.js';
import { fileFlags } from './anon-flags.js';
import { FdDumper } from './fd-dumper.js';

const NSEC = 1_000_000_000n;

/**
 * timerfds (criu/timerfd.c): clock, ticks, settime flags and the time left,
 * relative even for TFD_TIMER_ABSTIME (restore adds the clock's seconds).
 * Unlike criu dump, a periodic timer that expired unread is forwarded
 * (linux/timerfd.ts), so that it keeps firing after restore.
 */
export const timerFdDumper: FdDumper = {
  kinds: ['timerfd'],
  dump(files, fd) {
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (fresh) {
      const t = timerFd(fd.file, guestClocks(fd.file.prog));
      files.entries.push({
        type: 'TIMERFD',
        id,
        tfd: {
          id, flags: fileFlags(fd.file), fown: files.fown(fd.file), clockid: t.clockid, ticks: t.ticks, settime_flags: t.settimeFlags,
          vsec: t.value / NSEC, vnsec: t.value % NSEC, isec: t.interval / NSEC, insec: t.interval % NSEC,
        },
      });
    }
    return { opened: { id, type: 'TIMERFD' } };
  },
};
