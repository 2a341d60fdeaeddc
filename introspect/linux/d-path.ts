import { BadDataError } from '../../common/errors.js';
import { KObject, containerOf } from '../kernel/object.js';

/** A path component longer than NAME_MAX, or a path deeper than this, is corrupt data. */
const NAME_MAX = 255;
const MAX_COMPONENTS = 4096;

/** Where path names are resolved from: a dentry and the vfsmount it is the root of. */
export interface PathRoot {
  dentry: bigint;
  mnt: bigint;
}

/** The root of a task (task->fs->root), which /proc uses to print paths for a reader in that task. */
export function taskRoot(task: KObject): PathRoot {
  const root = task.member('fs').deref().member('root');
  return { dentry: root.member('dentry').value(), mnt: root.member('mnt').value() };
}

export function dentryName(dentry: KObject): string {
  const qstr = dentry.member('d_name');
  const len = qstr.member('len').num();
  if (len > NAME_MAX) throw new BadDataError(`${dentry.path}.d_name.len is ${len}`);
  return dentry.prog.read(qstr.member('name').value(), len, `${dentry.path}.d_name`).toString('utf8');
}

/** d_unlinked(): unhashed and not a root. */
function unlinked(dentry: KObject): boolean {
  const unhashed = dentry.member('d_hash').member('pprev').value() === 0n;
  return unhashed && dentry.member('d_parent').value() !== dentry.address;
}

/**
 * Names of pseudo files whose dentry has d_op->d_dname, by that function
 * (fs/file_table.c simple_dname, fs/pipe.c pipefs_dname, net/socket.c
 * sockfs_dname, fs/anon_inodes.c anon_inodefs_dname).
 */
function pseudoName(dentry: KObject): string | undefined {
  const ops = dentry.member('d_op').value();
  if (ops === 0n) return undefined;
  const dname = KObject.struct(dentry.prog, 'dentry_operations', ops).member('d_dname').value();
  if (dname === 0n) return undefined;
  const sym = (name: string) => dentry.prog.symbols.lookup(name)?.address;
  const ino = () => dentry.member('d_inode').deref().member('i_ino').value();
  switch (dname) {
    case sym('simple_dname'): return `/${dentryName(dentry)} (deleted)`;
    case sym('pipefs_dname'): return `pipe:[${ino()}]`;
    case sym('sockfs_dname'): return `socket:[${ino()}]`;
    case sym('anon_inodefs_dname'): return `anon_inode:${dentryName(dentry)}`;
    default: throw new BadDataError(`${dentry.path} is named by an unknown d_dname at 0x${dname.toString(16)}`);
  }
}

/**
 * The path of a struct path {mnt, dentry} as d_path() prints it for a reader
 * whose root is `root` (fs/d_path.c): pseudo files by their d_dname; else up
 * the dentries to the mount's root, then across to the parent mount, until
 * the reader's root or the namespace's root (__prepend_path).
 */
export function dPath(path: KObject, root: PathRoot): string {
  return dPathOf(path.member('dentry').deref(), path.member('mnt').value(), root, path.path);
}

/** dPath of a dentry on a vfsmount, given as addresses. */
export function dPathOf(start: KObject, startMnt: bigint, root: PathRoot, what = start.path): string {
  return resolvePath(start, startMnt, root, what).path;
}

/**
 * The path and whether the walk reached the reader's root (__d_path): paths
 * outside a reader's root, such as mounts outside a chroot, are not shown in
 * its mountinfo.
 */
export function resolvePath(start: KObject, startMnt: bigint, root: PathRoot, what = start.path): { path: string; reachable: boolean } {
  const prog = start.prog;
  let dentry = start;
  let vfsmnt = startMnt;
  let mount = containerOf(prog, vfsmnt, 'mount', 'mnt');
  const isRoot = (d: KObject) => d.member('d_parent').value() === d.address;
  if (!isRoot(dentry) || dentry.address !== mount.member('mnt.mnt_root').value()) {
    const pseudo = pseudoName(dentry);
    if (pseudo !== undefined) return { path: pseudo, reachable: true };
  }
  const deleted = unlinked(dentry);
  const parts: string[] = [];
  let reachable = true;
  for (let i = 0; dentry.address !== root.dentry || vfsmnt !== root.mnt; i++) {
    if (i > MAX_COMPONENTS) throw new BadDataError(`path of ${what} is deeper than ${MAX_COMPONENTS}`);
    if (dentry.address === mount.member('mnt.mnt_root').value()) {
      const parent = mount.member('mnt_parent').value();
      if (parent === mount.address) {
        reachable = false; // the global root, or a detached mount's own
        break;
      }
      dentry = mount.member('mnt_mountpoint').deref();
      mount = KObject.struct(prog, 'mount', parent);
      vfsmnt = mount.member('mnt').address;
      continue;
    }
    if (isRoot(dentry)) {
      parts.length = 0; // escaped the reader's root: the kernel prints "/"
      reachable = false;
      break;
    }
    parts.unshift(dentryName(dentry));
    dentry = dentry.member('d_parent').deref();
  }
  return { path: '/' + parts.join('/') + (deleted ? ' (deleted)' : ''), reachable };
}

/** The path of a dentry within its own file system (dentry_path_raw), as mountinfo's root field shows it. */
export function dentryPath(dentry: KObject): string {
  const parts: string[] = [];
  for (let d = dentry, i = 0; d.member('d_parent').value() !== d.address; d = d.member('d_parent').deref(), i++) {
    if (i > MAX_COMPONENTS) throw new BadDataError(`path of ${dentry.path} is deeper than ${MAX_COMPONENTS}`);
    parts.unshift(dentryName(d));
  }
  return '/' + parts.join('/');
}
