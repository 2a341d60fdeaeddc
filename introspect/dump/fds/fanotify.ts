import { fanotifyGroup } from '../../linux/fanotify.js';
import { mounts } from '../../linux/mounts.js';
import { DumpProblem } from '../problem.js';
import { fileFlags } from './anon-flags.js';
import { FdDumper, fdProblem } from './fd-dumper.js';
import { inodeName, watchHandle } from './watch-handle.js';

/**
 * fanotify groups (criu/fsnotify.c dump_one_fanotify, from fdinfo): the
 * init flags and event flags, and each mark in fdinfo's order with its
 * mflags, mask and ignore mask. An inode mark carries the inode's file
 * handle and path as an inotify watch does (watch-handle.ts); a mount mark
 * its mnt_id, the s_dev of the mount's file system and, when the mount
 * namespace is not dumped, the mount point restore opens (check_one_mark:
 * ns_mountpoint without its leading "."). CRIU 3.17 reads no file system
 * marks (FAN_MARK_FILESYSTEM): refused. Events queued unread are dropped,
 * as CRIU drops them.
 */
export const fanotifyDumper: FdDumper = {
  kinds: ['fanotify'],
  dump(files, fd) {
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (!fresh) return { opened: { id, type: 'FANOTIFY' } };
    const group = fanotifyGroup(fd.file);
    const seen = group.marks.length ? mounts(fd.owner, files.root) : [];
    const problems: DumpProblem[] = [];
    const mark = [];
    for (const m of group.marks) {
      const common = { id: 0, mflags: m.mflags, mask: m.mask, ignored_mask: m.ignoredMask };
      if (m.kind === 'inode') {
        const h = watchHandle(files, fd, m.inode, seen, `fanotify mark on ${inodeName(m.ino, m.sDev)}`);
        if (h.problems) problems.push(...h.problems);
        else mark.push({ ...common, type: 'INODE', s_dev: m.sDev, ie: { i_ino: m.ino, f_handle: h.fh } });
      } else if (m.kind === 'mount') {
        const mnt = seen.find((s) => s.id === m.mntId);
        if (!mnt) problems.push(fdProblem(fd, `fanotify mark on mount ${m.mntId}: not a mount the dump sees`));
        else mark.push({ ...common, type: 'MOUNT', s_dev: mnt.sDev, me: { mnt_id: m.mntId, ...(files.mntIds ? {} : { path: mnt.mountPoint }) } });
      } else {
        problems.push(fdProblem(fd, `fanotify mark on the file system of device ${m.sDev >>> 20}:${m.sDev & 0xfffff} (FAN_MARK_FILESYSTEM; CRIU 3.17 has no image for it)`));
      }
    }
    if (problems.length) return { problems };
    files.entries.push({
      type: 'FANOTIFY', id,
      ffy: { id, flags: fileFlags(fd.file), fown: files.fown(fd.file), faflags: group.flags, evflags: group.eventFlags, mark },
    });
    return { opened: { id, type: 'FANOTIFY' } };
  },
};
