import { UnsupportedError } from '../../common/errors.js';
import { KObject, containerOf } from '../kernel/object.js';
import { dentryName } from './d-path.js';
import { pageCacheRuns, runPages } from './page-cache.js';

/**
 * What a file on the internal shmem mount (shm_mnt) backs:
 * - 'anon': mmap(MAP_SHARED|MAP_ANONYMOUS), shmem_zero_setup's "dev/zero";
 * - 'memfd': memfd_create's "memfd:NAME";
 * - 'sysv': a SysV segment attached by shmat (f_op shm_file_operations; newseg() sets its i_ino to the IPC id).
 */
export type ShmemKind = 'anon' | 'memfd' | 'sysv';

/** One shmem object (its inode), as a dump names it. */
export interface ShmemObject {
  kind: ShmemKind;
  /** The shmem inode (struct inode). */
  inode: KObject;
  /** i_ino: CRIU's shmid (for SysV, the IPC id). */
  ino: bigint;
  /** i_size in bytes. */
  size: bigint;
  uid: number;
  gid: number;
  /** The dentry's name: "memfd:NAME", "dev/zero", "SYSV<key>". */
  name: string;
  /** F_GET_SEALS (shmem_inode_info.seals): F_SEAL_SEAL alone unless a memfd allows sealing. */
  seals: number;
}

const MEMFD_PREFIX = 'memfd:';
const SYSV_FOPS = ['shm_file_operations', 'shm_file_operations_huge'];

/** Whether a file mapped or open is a SysV segment's, by its f_op (ipc/shm.c do_shmat's clone). */
function isSysvFile(file: KObject): boolean {
  const fop = file.member('f_op').value();
  return SYSV_FOPS.some((name) => file.prog.symbols.lookup(name)?.address === fop);
}

/**
 * The shmem object behind a struct file on shm_mnt (the caller checked the
 * superblock); `kind` for a SysV segment's own shm_file, whose f_op is
 * shmem's (only the attached clones have shm_file_operations).
 */
export function shmemObject(file: KObject, kind?: ShmemKind): ShmemObject {
  const inode = file.member('f_inode').deref();
  const name = dentryName(file.member('f_path.dentry').deref());
  kind ??= isSysvFile(file) ? 'sysv' : name.startsWith(MEMFD_PREFIX) ? 'memfd' : 'anon';
  const obj: ShmemObject = {
    kind,
    inode,
    ino: inode.member('i_ino').value(),
    size: inode.member('i_size').value(),
    uid: inode.member('i_uid.val').num(),
    gid: inode.member('i_gid.val').num(),
    name,
    seals: containerOf(file.prog, inode.address, 'shmem_inode_info', 'vfs_inode').member('seals').num(),
  };
  return obj;
}

/** One page of a shmem object: its index in the object and where it is in guest RAM. */
export interface ShmemPage {
  index: bigint;
  phys: bigint;
}

/**
 * The pages of a shmem object below page `end`, from its page cache
 * (inode->i_mapping->i_pages), in index order: what CRIU dumps of it (every
 * page SEEK_DATA/mincore finds resident). A value entry there is a page
 * swapped out, which RAM does not hold: refused. `budget` bounds the
 * xa_nodes visited (shared by the dump's walks), `maxPages` the pages.
 */
export function shmemPages(obj: ShmemObject, end: bigint, budget: { nodes: number }, maxPages: number, who: string): ShmemPage[] {
  const mapping = obj.inode.member('i_mapping').deref();
  const out: ShmemPage[] = [];
  for (const run of pageCacheRuns(mapping, end, budget)) {
    if (run.value) throw new UnsupportedError(`${who}: shared memory object ${obj.ino} has pages swapped out (at page ${run.index}); swap is not supported`);
    for (const { index, phys } of runPages(mapping, run, end)) {
      if (out.length >= maxPages) throw new UnsupportedError(`${who}: shared memory object ${obj.ino} holds more than ${maxPages} pages`);
      out.push({ index, phys });
    }
  }
  return out;
}
