import { BadDataError } from '../../common/errors.js';
import { KObject, containerOf } from '../kernel/object.js';
import { FSNOTIFY_OBJ_TYPE_INODE, MAX_FSNOTIFY_MARKS, connectorInode, groupMarks, markIgnoreMask, notifyGroup } from './fsnotify-marks.js';

/** include/uapi/linux/inotify.h */
const IN_ALL_EVENTS = 0xfff;
const IN_EXCL_UNLINK = 0x04000000;
const IN_ONESHOT = 0x80000000;
/** include/linux/fsnotify_backend.h: inotify's flags of a mark. */
const FSNOTIFY_MARK_FLAG_EXCL_UNLINK = 0x10;
const FSNOTIFY_MARK_FLAG_IN_ONESHOT = 0x20;

/** One watch of an inotify (struct inotify_inode_mark), as its fdinfo's "inotify wd:" line shows it. */
export interface InotifyWatch {
  wd: number;
  /** The events and flags as inotify_add_watch(2) took them (fdinfo's mask). */
  mask: number;
  ignoredMask: number;
  /** The watched inode, its number and its superblock's s_dev (kernel encoding). */
  inode: KObject;
  ino: bigint;
  sDev: number;
}

export interface Inotify {
  /** In the order fdinfo lists them (group->marks_list: the newest first). */
  watches: InotifyWatch[];
  /** The wd the next inotify_add_watch(2) tries first (idr_alloc_cyclic's idr_next); CRIU's image has no field for it. */
  nextWd: number;
}

/**
 * The watches of an inotify file (fs/notify/inotify: file->private_data is
 * the fsnotify_group; its marks_list links each fsnotify_mark through
 * g_list, the mark being the first member of an inotify_inode_mark), and
 * the mask each shows in fdinfo (fs/notify/fdinfo.c inotify_fdinfo).
 */
export function inotifyWatches(file: KObject, bound = MAX_FSNOTIFY_MARKS): Inotify {
  const group = notifyGroup(file);
  const prog = file.prog;
  const watches: InotifyWatch[] = [];
  for (const { mark, connector: conn, objType: type } of groupMarks(group, bound)) {
    if (type !== FSNOTIFY_OBJ_TYPE_INODE) throw new BadDataError(`${conn.path}.type is ${type}: an inotify mark is on an inode`);
    const inode = connectorInode(conn);
    const wd = containerOf(prog, mark.address, 'inotify_inode_mark', 'fsn_mark').member('wd').num();
    if (wd <= 0) throw new BadDataError(`${mark.path}: wd ${wd}`);
    watches.push({ wd, ...userMask(mark), inode, ino: inode.member('i_ino').value(), sDev: inode.member('i_sb').deref().member('s_dev').num() });
  }
  const nextWd = group.member('inotify_data.idr.idr_next').num();
  return { watches, nextWd };
}

/**
 * fdinfo's mask and ignored_mask. Since "fsnotify: rename ignored_mask to
 * ignore_mask" (6.0) inotify keeps IN_ONESHOT and IN_EXCL_UNLINK in the
 * mark's flags and fdinfo shows them back (inotify_mark_user_mask) with
 * ignored_mask 0; before, fdinfo showed mask & IN_ALL_EVENTS and the mark's
 * ignored_mask.
 */
function userMask(mark: KObject): { mask: number; ignoredMask: number } {
  const raw = mark.member('mask').num();
  if (mark.has('ignore_mask')) {
    const flags = mark.member('flags').num();
    const mask = (raw & IN_ALL_EVENTS) | (flags & FSNOTIFY_MARK_FLAG_EXCL_UNLINK ? IN_EXCL_UNLINK : 0) | (flags & FSNOTIFY_MARK_FLAG_IN_ONESHOT ? IN_ONESHOT : 0);
    return { mask: mask >>> 0, ignoredMask: 0 };
  }
  return { mask: raw & IN_ALL_EVENTS, ignoredMask: markIgnoreMask(mark) };
}
