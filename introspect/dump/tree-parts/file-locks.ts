import { fileLocks } from '../../linux/file-locks.js';
import { forEachFd } from '../../linux/files.js';
import { DumpProblem } from '../problem.js';
import { TreePart } from './tree-part.js';

/** criu/include/file-lock.h: file_lock_entry.flag, from /proc's lock kind names. */
const CRIU_FLAG = { posix: 1, flock: 2, ofd: 4, lease: 8 } as const;
/** criu/include/file-lock.h: ORed into a lease's type when fdinfo shows it BREAKING. */
const LEASE_BREAKING = 4;

/**
 * filelocks.img (criu/file-lock.c dump_file_locks, from fdinfo's "lock:"
 * lines): each lock once, at the first fd of the tree (processes in pstree
 * order, fds in order) that opens its struct file; a later fd on the same
 * file adds none (files.c discard_dup_locks_tail). The pid is the holder's
 * in the tree's pid namespace. Restore sets them with --file-locks only
 * (criu dump refuses them without it; ovmigrate always dumps them).
 * A lease (fcntl F_SETLEASE) is written with the type F_GETLEASE answers;
 * one being broken with LEASE_BREAKING and the type it is broken to
 * (proc_parse.c parse_file_lock_buf, files.c correct_file_leases_type):
 * restore sets the lease and breaks it again by opening the file.
 */
export const fileLocksImage: TreePart = {
  name: 'file-locks',
  dump(_ctx, tasks) {
    const seen = new Set<bigint>();
    const tables = new Set<bigint>();
    const entries: Record<string, unknown>[] = [];
    const problems: DumpProblem[] = [];
    for (const t of tasks) {
      if (t.proc.zombie) continue;
      const table = t.proc.leader.member('files').value();
      if (table === 0n || tables.has(table)) continue;
      tables.add(table);
      for (const { fd, file } of forEachFd(t.proc.leader)) {
        if (seen.has(file.address)) continue;
        seen.add(file.address);
        for (const l of fileLocks(file, table)) {
          const type = l.breaking ? LEASE_BREAKING | l.type : l.type;
          entries.push({ flag: CRIU_FLAG[l.kind], type, pid: t.proc.vpid, fd, start: l.start, len: l.len });
        }
      }
    }
    return { images: entries.length ? [{ kind: 'FILE_LOCKS', entries }] : [], problems };
  },
};
