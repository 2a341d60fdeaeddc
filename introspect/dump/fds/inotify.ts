import { fileHandle, handleWords } from '../../linux/file-handle.js';
import { inodePath } from '../../linux/inode-path.js';
import { inotifyWatches } from '../../linux/inotify.js';
import { mounts } from '../../linux/mounts.js';
import { fileFlags } from './anon-flags.js';
import { FdDumper, fdProblem } from './fd-dumper.js';

/**
 * inotify files (criu/fsnotify.c dump_one_inotify): each watch with its wd,
 * mask, inode, file handle, and the path restore opens it by (criu always
 * looks one up: inode numbers and handles of tmpfs, or of another VM, do
 * not survive), with the mount it is under when the mount namespace is
 * dumped (CRIU sets mnt_id only then, and restore looks it up only then).
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
    const problems = [];
    const wd = [];
    for (const w of watches) {
      const what = `inotify watch ${w.wd} on inode ${w.ino} (device ${w.sDev >>> 20}:${w.sDev & 0xfffff})`;
      const handle = fileHandle(w.inode);
      const where = inodePath(w.inode, seen, files.root);
      if (!handle) problems.push(fdProblem(fd, `${what}: its file system encodes file handles in a way not supported`));
      if (!where) problems.push(fdProblem(fd, `${what}: no path reaches it (deleted, or outside the mounts the dump sees)`));
      if (!handle || !where) continue;
      wd.push({
        id: 0, i_ino: w.ino, mask: w.mask, ignored_mask: w.ignoredMask, s_dev: w.sDev, wd: w.wd,
        f_handle: { bytes: handle.bytes.length, type: handle.type, handle: handleWords(handle.bytes), path: where.path, ...(files.mntIds ? { mnt_id: where.mntId } : {}) },
      });
    }
    if (problems.length) return { problems };
    files.entries.push({ type: 'INOTIFY', id, ify: { id, flags: fileFlags(fd.file), fown: files.fown(fd.file), wd } });
    return { opened: { id, type: 'INOTIFY' } };
  },
};
