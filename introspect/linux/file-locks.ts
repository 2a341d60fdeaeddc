import { BadDataError } from '../../common/errors.js';
import { KObject, listForEach } from '../kernel/object.js';

/** Locks on one inode: the kernel bounds them only by memory; more than this is corrupt RAM. */
export const MAX_FILE_LOCKS = 1 << 16;

/** include/linux/filelock.h (fs.h in 6.1): fl_flags. */
const FL_POSIX = 1;
const FL_FLOCK = 2;
const FL_OFDLCK = 1024;
/** A lease being broken, to be dropped (F_UNLCK) or downgraded (F_RDLCK): lease_breaking(). */
const FL_DOWNGRADE_PENDING = 256;
const FL_UNLOCK_PENDING = 512;
const F_RDLCK = 0;
const F_UNLCK = 2;
/** include/linux/fs.h OFFSET_MAX: a lock "to EOF". */
const OFFSET_MAX = 0x7fffffffffffffffn;

export type FileLockKind = 'posix' | 'flock' | 'ofd' | 'lease';

/** One lock as fdinfo's "lock:" line shows it (fs/locks.c lock_get_status). */
export interface FileLock {
  kind: FileLockKind;
  /** F_RDLCK 0, F_WRLCK 1, F_UNLCK 2; of a lease being broken, the type it is broken to (target_leasetype, as F_GETLEASE answers). */
  type: number;
  /** A lease with a break pending (fdinfo's "BREAKING"). */
  breaking: boolean;
  start: bigint;
  /** Length, 0 up to EOF (criu's file_lock_entry.len). */
  len: bigint;
  /** fl_owner: the files_struct of a POSIX lock's owner, the struct file of a flock or OFD lock. */
  owner: bigint;
}

/**
 * The locks on a struct file's inode that its fdinfo shows for a files
 * table (fs/locks.c show_fd_locks: inode->i_flctx's flock, posix and lease
 * lists, each lock whose fl_file is this file and whose owner is the
 * table (POSIX) or the file (flock, OFD)). 6.9 ("filelock: split common
 * fields into struct file_lock_core") moved the common fields into
 * file_lock.c with flc_ names, and leases into struct file_lease.
 */
export function fileLocks(file: KObject, files: bigint, bound = MAX_FILE_LOCKS): FileLock[] {
  const prog = file.prog;
  const ctxAt = file.member('f_inode').deref().member('i_flctx').value();
  if (ctxAt === 0n) return [];
  const ctx = KObject.struct(prog, 'file_lock_context', ctxAt);
  const split = prog.btf.hasMember('file_lock', 'c');
  const out: FileLock[] = [];
  for (const list of ['flc_flock', 'flc_posix', 'flc_lease']) {
    const lease = list === 'flc_lease';
    const struct = lease && split ? 'file_lease' : 'file_lock';
    const link = split ? 'c.flc_list' : 'fl_list';
    for (const fl of listForEach(prog, ctx.member(list).address, struct, link, bound)) {
      const core = split ? fl.member('c') : fl;
      const f = (name: string) => core.member(split ? `flc_${name}` : `fl_${name}`);
      if (f('file').value() !== file.address) continue;
      const owner = f('owner').value();
      if (owner !== files && owner !== file.address) continue;
      const flags = f('flags').num();
      const kind: FileLockKind = lease ? 'lease' : flags & FL_POSIX ? (flags & FL_OFDLCK ? 'ofd' : 'posix') : flags & FL_FLOCK ? 'flock' : 'lease';
      let type = f('type').num();
      const breaking = lease && (flags & (FL_DOWNGRADE_PENDING | FL_UNLOCK_PENDING)) !== 0;
      if (breaking) type = flags & FL_UNLOCK_PENDING ? F_UNLCK : F_RDLCK;
      if (lease || kind === 'flock') {
        out.push({ kind, type, breaking, start: 0n, len: 0n, owner });
        continue;
      }
      const start = fl.member('fl_start').value();
      const end = fl.member('fl_end').value();
      if (start < 0n || end < start - 1n) throw new BadDataError(`${fl.path}: lock from ${start} to ${end}`);
      out.push({ kind, type, breaking, start, len: end === OFFSET_MAX ? 0n : end - start + 1n, owner });
    }
  }
  return out;
}
