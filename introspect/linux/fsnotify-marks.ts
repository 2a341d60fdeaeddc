import { BadDataError } from '../../common/errors.js';
import { KObject, containerOf, listForEach } from '../kernel/object.js';
import { anonContext } from './anon-file.js';

/**
 * Most marks one group walks: the kernel bounds them per user
 * (fs.inotify.max_user_watches, fanotify's max_user_marks: 8192 by default,
 * up to about 10^6 on big machines), so more is corrupt RAM.
 */
export const MAX_FSNOTIFY_MARKS = 1 << 20;

/** include/linux/fsnotify_backend.h enum fsnotify_obj_type. */
export const FSNOTIFY_OBJ_TYPE_INODE = 0;
export const FSNOTIFY_OBJ_TYPE_VFSMOUNT = 1;
export const FSNOTIFY_OBJ_TYPE_SB = 2;

/** One attached mark of a group, with the object type of its connector. */
export interface GroupMark {
  mark: KObject;
  connector: KObject;
  objType: number;
}

/** The fsnotify_group of an inotify or fanotify file (its private_data). */
export function notifyGroup(file: KObject): KObject {
  return anonContext(file, 'fsnotify_group');
}

/**
 * The marks of a group as fdinfo lists them (fs/notify/fdinfo.c show_fdinfo:
 * group->marks_list through fsnotify_mark.g_list, the newest first), each
 * checked to belong to the group. A mark being destroyed is detached first
 * (fsnotify_detach_mark) and has no connector; fdinfo skips it too.
 */
export function* groupMarks(group: KObject, bound = MAX_FSNOTIFY_MARKS): Generator<GroupMark> {
  for (const mark of listForEach(group.prog, group.member('marks_list').address, 'fsnotify_mark', 'g_list', bound)) {
    const owner = mark.member('group').value();
    if (owner !== group.address) throw new BadDataError(`${mark.path}.group is 0x${owner.toString(16)}, not its group's 0x${group.address.toString(16)}`);
    if (mark.member('connector').value() === 0n) continue;
    const connector = mark.member('connector').deref();
    yield { mark, connector, objType: connector.member('type').num() };
  }
}

/**
 * The object a connector is attached to, as the struct holding it. 6.1
 * keeps a fsnotify_connp_t * (the address of the object's *_fsnotify_marks
 * member); later kernels ("fsnotify: pass object pointer to
 * fsnotify_conn_*", a void *obj) the object itself: the inode, or the
 * vfsmount embedded in a struct mount as `mnt`.
 */
function connectorObject(conn: KObject, structName: string, marksMember: string, objMember: string | undefined): KObject {
  const obj = conn.member('obj');
  const at = obj.value();
  if (at === 0n) throw new BadDataError(`${obj.path} is NULL`);
  const t = obj.type;
  const pointee = t.kind === 'ptr' ? conn.prog.btf.resolve(t.type) : undefined;
  if (pointee?.kind === 'void') return objMember ? containerOf(conn.prog, at, structName, objMember) : KObject.struct(conn.prog, structName, at);
  const holder = containerOf(conn.prog, at, structName, marksMember);
  if (holder.member(marksMember).value() !== conn.address) throw new BadDataError(`${holder.path}.${marksMember} is not ${conn.path}`);
  return holder;
}

/** The inode of an inode connector (fsnotify_conn_inode). */
export function connectorInode(conn: KObject): KObject {
  return connectorObject(conn, 'inode', 'i_fsnotify_marks', undefined);
}

/** The struct mount of a vfsmount connector (fsnotify_conn_mount). */
export function connectorMount(conn: KObject): KObject {
  return connectorObject(conn, 'mount', 'mnt_fsnotify_marks', 'mnt');
}

/** The super_block of a file system connector (fsnotify_conn_sb). */
export function connectorSb(conn: KObject): KObject {
  return connectorObject(conn, 'super_block', 's_fsnotify_marks', undefined);
}

/** A mark's ignore mask: renamed from ignored_mask in 6.0 ("fsnotify: rename ignored_mask to ignore_mask"). */
export function markIgnoreMask(mark: KObject): number {
  if (mark.has('ignore_mask')) return mark.member('ignore_mask').num();
  if (mark.has('ignored_mask')) return mark.member('ignored_mask').num();
  throw new BadDataError(`${mark.path}: neither ignore_mask nor ignored_mask in this kernel's fsnotify_mark`);
}
