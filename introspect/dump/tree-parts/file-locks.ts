import { fileLocks } from '../../linux/file-locks.js';
import { forEachFd } from '../../linux/files.js';
import { DumpProblem } from '../problem.js';
import { TreePart } from './tree-part.js';

/** criu/include/file-lock.h: file_lock_entry.flag, from /proc's lock kind names. */
const CRIU_FLAG = { posix: 1, flock: 2, ofd: 4 } as const;

/**
 * filelocks.img (criu/file-lock.c dump_file_locks, from fdinfo's "lock:"
 * lines): each lock once, at the first fd of the tree (processes in pstree
 * order, fds in order) that opens its struct file; a later fd on the same
 * file adds none (files.c discard_dup_locks_tail). The pid is the holder's
 * in the tree's pid namespace. Restore sets them with --file-locks only
 * (criu dump refuses them without it; ovmigrate always dumps them).
 * Leases are refused.
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
          if (l.kind === 'lease') {
            problems.push(new DumpProblem(t.who, 'file-lease', 'a file lease (not supported)', { object: `fd ${fd}` }));
            continue;
          }
          entries.push({ flag: CRIU_FLAG[l.kind], type: l.type, pid: t.proc.vpid, fd, start: l.start, len: l.len });
        }
      }
    }
    return { images: entries.length ? [{ kind: 'FILE_LOCKS', entries }] : [], problems };
  },
};
