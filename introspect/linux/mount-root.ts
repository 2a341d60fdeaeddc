import { KObject } from '../kernel/object.js';

/** i_mode of the dentry a mount shows at its mount point (struct mount's mnt.mnt_root): a bind mount of a file is no directory. */
export function mountRootMode(mount: KObject): number {
  return mount.member('mnt.mnt_root').deref().member('d_inode').deref().member('i_mode').num();
}
