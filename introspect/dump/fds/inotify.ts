import { inotifyWatches } from '../../linux/inotify.js';
import { mounts } from '../../linux/mounts.js';
import { DumpProblem } from '../problem.js';
import { fileFlags } from './anon-flags.js';
import { FdDumper } from './fd-dumper.js';
import { inodeName, watchHandle } from './watch-handle.js';

/**
 * inotify files (criu/fsnotify.c dump_one_inotify): each watch with its wd,
 * mask, inode, and its file handle and path (watch-handle.ts).
 * Restore sets each wd with INOTIFY_IOC_SETNEXTWD. Events queued unread are
 * dropped, as CRIU drops them.
 */
export const inotifyDumper: FdDumper = {
  kinds: ['inotify'],
  dump(files, fd) {
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (!fresh) return { opened: { id, type: 'INOTIFY' } };
    const { watches } = inotifyWatches(fd.file);
    const seen = watches.length ? mounts(fd.owner, files.root) : [];
    const problems: DumpProblem[] = [];
    const wd = [];
    for (const w of watches) {
      const h = watchHandle(files, fd, w.inode, seen, `inotify watch ${w.wd} on ${inodeName(w.ino, w.sDev)}`);
      if (h.problems) {
        problems.push(...h.problems);
        continue;
      }
      wd.push({ id: 0, i_ino: w.ino, mask: w.mask, ignored_mask: w.ignoredMask, s_dev: w.sDev, wd: w.wd, f_handle: h.fh });
    }
    if (problems.length) return { problems };
    files.entries.push({ type: 'INOTIFY', id, ify: { id, flags: fileFlags(fd.file), fown: files.fown(fd.file), wd } });
    return { opened: { id, type: 'INOTIFY' } };
  },
};
