import { FakeKernel, Values } from './fake-program.js';

/**
 * Dentries, inodes, mounts and files laid out in a FakeKernel as the VFS
 * links them (include/linux/dcache.h, fs/mount.h), for path and file tests.
 */
export class FakeVfs {
  /** The root file system: its superblock, root dentry and the mount of it (its own parent, as the namespace root is). */
  readonly sb: bigint;
  readonly rootDentry: bigint;
  readonly rootMount: bigint;

  constructor(readonly k: FakeKernel) {
    this.sb = this.superBlock('ext4', 8 << 20 | 1);
    this.rootDentry = this.dentry('/', undefined, { d_inode: this.inode(0o040755, 2n) });
    this.k.write(this.sb, 'super_block', { s_root: this.rootDentry });
    this.rootMount = this.mount(this.rootDentry, this.sb, { mnt_id: 21, mnt_devname: k.cstr('/dev/vda') });
  }

  superBlock(fsType: string, dev: number): bigint {
    return this.k.new('super_block', { s_dev: dev, s_type: this.k.new('file_system_type', { name: this.k.cstr(fsType) }) });
  }

  inode(mode: number, ino: bigint, values: Values = {}): bigint {
    return this.k.new('inode', { i_mode: mode, i_ino: ino, i_sb: this.sb, ...values });
  }

  /** A hashed dentry named `name` under `parent`, or a root (its own parent) without one. */
  dentry(name: string, parent?: bigint, values: Values = {}): bigint {
    const d = this.k.new('dentry', { 'd_name.len': name.length, 'd_name.name': this.k.cstr(name), 'd_hash.pprev': 0x1234n });
    this.k.write(d, 'dentry', { d_parent: parent ?? d, ...values });
    return d;
  }

  /** A chain of directories under `parent`: the last dentry of the path. */
  path(path: string, parent = this.rootDentry): bigint {
    let d = parent;
    for (const name of path.split('/').filter(Boolean)) d = this.dentry(name, d, { d_inode: this.inode(0o040755, 100n) });
    return d;
  }

  /** A struct mount of `root`; a mount without `parent` is its own parent. */
  mount(root: bigint, sb: bigint, values: Values = {}, parent?: { mount: bigint; at: bigint }): bigint {
    const m = this.k.new('mount', { 'mnt.mnt_root': root, 'mnt.mnt_sb': sb, ...values });
    this.k.write(m, 'mount', parent ? { mnt_parent: parent.mount, mnt_mountpoint: parent.at } : { mnt_parent: m, mnt_mountpoint: root });
    return m;
  }

  /** The struct vfsmount inside a struct mount: what paths and files point at. */
  vfsmount(mount: bigint): bigint {
    return this.k.addr('mount', mount, 'mnt');
  }

  /** A struct file open on `dentry` of `mount`. */
  file(dentry: bigint, mount = this.rootMount, values: Values = {}): bigint {
    const inode = this.k.ptr('dentry', dentry, 'd_inode');
    return this.k.new('file', { 'f_path.dentry': dentry, 'f_path.mnt': this.vfsmount(mount), f_inode: inode, ...values });
  }

  /** The root a reader in the root mount sees: a PathRoot. */
  get root(): { dentry: bigint; mnt: bigint } {
    return { dentry: this.rootDentry, mnt: this.vfsmount(this.rootMount) };
  }
}
