import { signalFdMask } from '../../linux/signalfd.js';
import { fileFlags } from './anon-flags.js';
import { FdDumper } from './fd-dumper.js';

/** signalfds (criu/signalfd.c): the mask; the signals queued for it are the task's pending signals, dumped with its core. */
export const signalFdDumper: FdDumper = {
  kinds: ['signalfd'],
  dump(files, fd) {
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (fresh) files.entries.push({ type: 'SIGNALFD', id, sgfd: { id, flags: fileFlags(fd.file), fown: files.fown(fd.file), sigmask: signalFdMask(fd.file) } });
    return { opened: { id, type: 'SIGNALFD' } };
  },
};
