import { KObject, containerOf } from '../kernel/object.js';

/** What names a file on a running system: its mount, device and inode (what CRIU keys special files by), and the inode itself. */
export interface FileIdentity {
  mntId: number;
  dev: number;
  ino: bigint;
  mode: number;
  inode: KObject;
}

/** The identity of a struct path (a file's f_path, a cwd or root). */
export function pathIdentity(path: KObject): FileIdentity {
  const inode = path.member('dentry').deref().member('d_inode').deref();
  const mount = containerOf(path.prog, path.member('mnt').value(), 'mount', 'mnt');
  return {
    mntId: mount.member('mnt_id').num(),
    dev: inode.member('i_sb').deref().member('s_dev').num(),
    ino: inode.member('i_ino').value(),
    mode: inode.member('i_mode').num(),
    inode,
  };
}
