import { BadDataError } from '../../common/errors.js';
import { KObject, hlistForEach } from '../kernel/object.js';
import { PathRoot, resolvePath } from './d-path.js';
import { MountInfo } from './mounts.js';

/** An inode has a few dentries (hard links of a file, one for a directory); more is corrupt RAM. */
const MAX_ALIASES = 1 << 16;
const MAX_DEPTH = 4096;

/** Where an inode can be opened by path: a mount, and the path through it as a reader at the root sees it. */
export interface InodePath {
  path: string;
  mntId: number;
}

/**
 * A path that opens an inode, found as CRIU finds one for a watch (criu/
 * fsnotify.c alloc_openable: the first mount of its superblock, in mount
 * order, through which it can be reached): the inode's dentries
 * (i_dentry, linked through d_u.d_alias) under that mount's root. None when
 * every dentry is unlinked or outside every mount the reader sees.
 */
export function inodePath(inode: KObject, mounts: readonly MountInfo[], root: PathRoot): InodePath | undefined {
  const prog = inode.prog;
  const sb = inode.member('i_sb').value();
  const dentries = [...hlistForEach(prog, inode.member('i_dentry').address, 'dentry', 'd_u.d_alias', MAX_ALIASES)];
  for (const m of mounts) {
    if (m.sb.address !== sb) continue;
    const mntRoot = m.mount.member('mnt.mnt_root').value();
    for (const d of dentries) {
      if (!under(d, mntRoot)) continue;
      const where = resolvePath(d, m.mount.member('mnt').address, root);
      if (where.reachable && !where.path.endsWith(' (deleted)')) return { path: where.path, mntId: m.id };
    }
  }
  return undefined;
}

/**
 * Another name of an open file whose own dentry was unlinked while the
 * inode kept links (i_nlink > 0, a hard link elsewhere): a hashed dentry of
 * the same inode (i_dentry, linked through d_u.d_alias; d_unlinked ones
 * print " (deleted)" and are passed over) under the file's own mount, as a
 * reader at `root` sees it. Opening it opens the same inode. Undefined when
 * no such dentry is in the dcache (evicted since, or every other link
 * outside that mount's root).
 */
export function otherName(path: KObject, root: PathRoot): string | undefined {
  const prog = path.prog;
  const own = path.member('dentry').value();
  const inode = path.member('dentry').deref().member('d_inode').value();
  const mnt = path.member('mnt').value();
  const mntRoot = KObject.struct(prog, 'vfsmount', mnt).member('mnt_root').value();
  for (const d of hlistForEach(prog, KObject.struct(prog, 'inode', inode).member('i_dentry').address, 'dentry', 'd_u.d_alias', MAX_ALIASES)) {
    if (d.address === own) continue;
    const alias = d.member('d_inode').value();
    if (alias !== inode) throw new BadDataError(`${d.path}.d_inode is 0x${alias.toString(16)}, not the inode 0x${inode.toString(16)} whose alias it is`);
    if (!under(d, mntRoot)) continue;
    const where = resolvePath(d, mnt, root);
    if (where.reachable && !where.path.endsWith(' (deleted)')) return where.path;
  }
  return undefined;
}

/** Whether `ancestor` is the dentry or one of its parents. */
function under(dentry: KObject, ancestor: bigint): boolean {
  let d = dentry;
  for (let i = 0; i < MAX_DEPTH; i++) {
    if (d.address === ancestor) return true;
    const parent = d.member('d_parent').value();
    if (parent === d.address) return false;
    d = KObject.struct(d.prog, 'dentry', parent);
  }
  return false;
}
