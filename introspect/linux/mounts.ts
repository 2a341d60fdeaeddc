import { BadDataError } from '../../common/errors.js';
import { KObject, listForEach } from '../kernel/object.js';
import { rbInOrder } from '../kernel/rbtree.js';
import { PathRoot, dentryPath, resolvePath } from './d-path.js';

const MAX_MOUNTS = 1 << 16;

/** One mount of a mount namespace, with the fields of /proc/PID/mountinfo that come from the VFS itself. */
export interface MountInfo {
  id: number;
  parentId: number;
  dev: string;
  /** The mount's root within its file system. */
  root: string;
  /** Where it is mounted, as the reader at `root` sees it. */
  mountPoint: string;
  fsType: string;
  source: string;
  /** mnt_flags (MNT_NOSUID, MNT_READONLY, ...). */
  flags: number;
  /** Peer group id when shared, 0 otherwise. */
  shared: number;
  /** Peer group id of the master when a slave, 0 otherwise. */
  master: number;
  /** The struct mount and its super_block, for callers that dig further. */
  mount: KObject;
  sb: KObject;
  /** The superblock's device number, kernel encoding (major << 20 | minor). */
  sDev: number;
}

/**
 * The mounts of a mount namespace in the order /proc/PID/mountinfo lists them:
 * mnt_namespace.list through mount.mnt_list in 6.1; since 6.8 ("mounts: keep list
 * of mounts in an rbtree") the rbtree
 * mnt_namespace.mounts through mount.mnt_node, keyed by mnt_id_unique.
 */
function namespaceMounts(ns: KObject): Iterable<KObject> {
  if (ns.has('list')) return listForEach(ns.prog, ns.member('list').address, 'mount', 'mnt_list', MAX_MOUNTS);
  if (ns.has('mounts')) return rbInOrder(ns.prog, ns.member('mounts').address, 'mount', 'mnt_node', MAX_MOUNTS);
  throw new BadDataError(`${ns.path}: neither a mount list nor a mount rbtree in this kernel's mnt_namespace`);
}

/** The name of a superblock's file system type, as mountinfo shows it ("ext4", "overlay"). */
export function fsTypeName(sb: KObject): string {
  return sb.prog.cstring(sb.member('s_type').deref().member('name').value(), 64, `${sb.path}.s_type->name`);
}

/** The mounts of a task's mount namespace that a reader at `root` sees, in namespace order. */
export function mounts(task: KObject, root: PathRoot): MountInfo[] {
  const prog = task.prog;
  const ns = task.member('nsproxy').deref().member('mnt_ns').deref();
  const out: MountInfo[] = [];
  for (const m of namespaceMounts(ns)) {
    const vfsmnt = m.member('mnt');
    const mntRoot = vfsmnt.member('mnt_root').deref();
    const sb = vfsmnt.member('mnt_sb').deref();
    const dev = sb.member('s_dev').num();
    const parent = m.member('mnt_parent').deref();
    const where = resolvePath(mntRoot, vfsmnt.address, root, `${m.path} mount point`);
    // Like show_mountinfo(): mounts outside the reader's root are not listed.
    if (!where.reachable) continue;
    const masterPtr = m.member('mnt_master').value();
    const shared = m.member('mnt_group_id').num();
    out.push({
      id: m.member('mnt_id').num(),
      parentId: parent.member('mnt_id').num(),
      dev: `${dev >>> 20}:${dev & 0xfffff}`,
      root: dentryPath(mntRoot),
      mountPoint: where.path,
      fsType: fsTypeName(sb),
      source: m.member('mnt_devname').value() === 0n ? 'none' : prog.cstring(m.member('mnt_devname').value(), 4096, `${m.path}.mnt_devname`),
      flags: vfsmnt.member('mnt_flags').num(),
      // IS_MNT_SHARED: MNT_SHARED (0x1000) in mnt_flags; the group id stays set on slaves of a shared master.
      shared: (vfsmnt.member('mnt_flags').num() & 0x1000) !== 0 ? shared : 0,
      master: masterPtr === 0n ? 0 : KObject.struct(prog, 'mount', masterPtr).member('mnt_group_id').num(),
      mount: m,
      sb,
      sDev: dev,
    });
  }
  return out;
}
