import { eventFd } from '../../linux/eventfd.js';
import { fileFlags } from './anon-flags.js';
import { FdDumper } from './fd-dumper.js';

/**
 * eventfds (criu/eventfd.c): the counter. EFD_SEMAPHORE lives in the
 * context, not in f_flags, and CRIU 3.17 restores with eventfd(counter, 0):
 * a semaphore eventfd comes back as a plain one, here as with criu dump.
 */
export const eventFdDumper: FdDumper = {
  kinds: ['eventfd'],
  dump(files, fd) {
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (fresh) {
      const { counter } = eventFd(fd.file);
      files.entries.push({ type: 'EVENTFD', id, efd: { id, flags: fileFlags(fd.file), fown: files.fown(fd.file), counter } });
    }
    return { opened: { id, type: 'EVENTFD' } };
  },
};
