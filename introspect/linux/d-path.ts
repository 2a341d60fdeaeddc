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
 * The path of a struct path {mnt, dentry} as d_path() prints it for a reader
 * whose root is `root` (fs/d_path.c prepend_path): up the dentries to the
 * mount's root, then across to the parent mount, until the reader's root or
 * the namespace's root. Pseudo files (pipes, sockets, anon inodes) have
 * d_dname names and are named by their callers.
 */
export function dPath(path: KObject, root: PathRoot): string {
  const prog = path.prog;
  let dentry = path.member('dentry').deref();
  let vfsmnt = path.member('mnt').value();
  let mount = containerOf(prog, vfsmnt, 'mount', 'mnt');
  const deleted = unlinked(dentry);
  const parts: string[] = [];
  for (let i = 0; dentry.address !== root.dentry || vfsmnt !== root.mnt; i++) {
    if (i > MAX_COMPONENTS) throw new BadDataError(`path of ${path.path} is deeper than ${MAX_COMPONENTS}`);
    const mntRoot = mount.member('mnt.mnt_root').value();
    const isRoot = dentry.member('d_parent').value() === dentry.address;
    if (dentry.address === mntRoot || isRoot) {
      const parent = mount.member('mnt_parent').value();
      if (dentry.address !== mntRoot || parent === mount.address) break; // escaped or the global root
      dentry = mount.member('mnt_mountpoint').deref();
      mount = KObject.struct(prog, 'mount', parent);
      vfsmnt = mount.member('mnt').address;
      continue;
    }
    parts.unshift(dentryName(dentry));
    dentry = dentry.member('d_parent').deref();
  }
  return '/' + parts.join('/') + (deleted ? ' (deleted)' : '');
}
