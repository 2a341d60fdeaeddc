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
