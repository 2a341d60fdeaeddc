import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import {
  FSNOTIFY_OBJ_TYPE_INODE, FSNOTIFY_OBJ_TYPE_SB, FSNOTIFY_OBJ_TYPE_VFSMOUNT, MAX_FSNOTIFY_MARKS, connectorInode, connectorMount, connectorSb, groupMarks, markIgnoreMask,
  notifyGroup,
} from './fsnotify-marks.js';

/** include/linux/fanotify.h: the group flag fanotify_init() adds for an unprivileged caller; fdinfo masks it out. */
const FANOTIFY_UNPRIV = 0x80000000;
/** include/linux/fsnotify_backend.h: fanotify's flags of a mark, and the FAN_MARK_* flag fdinfo shows for each (fanotify_mark_user_flags). */
const USER_MARK_FLAGS: readonly [number, number][] = [
  [0x0100, 0x40], // FSNOTIFY_MARK_FLAG_IGNORED_SURV_MODIFY: FAN_MARK_IGNORED_SURV_MODIFY
  [0x0200, 0x200], // FSNOTIFY_MARK_FLAG_NO_IREF: FAN_MARK_EVICTABLE
  [0x0400, 0x400], // FSNOTIFY_MARK_FLAG_HAS_IGNORE_FLAGS: FAN_MARK_IGNORE
];

interface MarkCommon {
  /** FAN_MARK_* flags as fdinfo's mflags shows them. */
  mflags: number;
  mask: number;
  ignoredMask: number;
}

/** A mark on an inode (fdinfo "fanotify ino:"). */
export interface FanotifyInodeMark extends MarkCommon {
  kind: 'inode';
  inode: KObject;
  ino: bigint;
  /** Its superblock's s_dev, kernel encoding. */
  sDev: number;
}

/** A mark on a mount (FAN_MARK_MOUNT; fdinfo "fanotify mnt_id:"). */
export interface FanotifyMountMark extends MarkCommon {
  kind: 'mount';
  mount: KObject;
  mntId: number;
}

/** A mark on a whole file system (FAN_MARK_FILESYSTEM; fdinfo "fanotify sdev:"): CRIU 3.17 has no image for it. */
export interface FanotifySbMark extends MarkCommon {
  kind: 'sb';
  sDev: number;
}

export type FanotifyMark = FanotifyInodeMark | FanotifyMountMark | FanotifySbMark;

export interface Fanotify {
  /** fanotify_init()'s flags as fdinfo shows them ("fanotify flags:"). */
  flags: number;
  /** fanotify_init()'s event_f_flags ("event-flags:"). */
  eventFlags: number;
  /** In fdinfo's order (group->marks_list: the newest first). */
  marks: FanotifyMark[];
}

/**
 * A fanotify group (fs/notify/fanotify: file->private_data is the
 * fsnotify_group, its init flags in fanotify_data) and its marks as
 * fs/notify/fdinfo.c fanotify_fdinfo shows them: mask and ignore mask as
 * the mark holds them, mflags from the mark's flags.
 */
export function fanotifyGroup(file: KObject, bound = MAX_FSNOTIFY_MARKS): Fanotify {
  const group = notifyGroup(file);
  const data = group.member('fanotify_data');
  const flags = (data.member('flags').num() & ~FANOTIFY_UNPRIV) >>> 0;
  const eventFlags = data.member('f_flags').num();
  const marks: FanotifyMark[] = [];
  for (const { mark, connector, objType } of groupMarks(group, bound)) {
    const raw = mark.member('flags').num();
    const common: MarkCommon = {
      mflags: USER_MARK_FLAGS.reduce((m, [kernel, user]) => (raw & kernel ? m | user : m), 0),
      mask: mark.member('mask').num(),
      ignoredMask: markIgnoreMask(mark),
    };
    if (objType === FSNOTIFY_OBJ_TYPE_INODE) {
      const inode = connectorInode(connector);
      marks.push({ kind: 'inode', ...common, inode, ino: inode.member('i_ino').value(), sDev: inode.member('i_sb').deref().member('s_dev').num() });
    } else if (objType === FSNOTIFY_OBJ_TYPE_VFSMOUNT) {
      const mount = connectorMount(connector);
      marks.push({ kind: 'mount', ...common, mount, mntId: mount.member('mnt_id').num() });
    } else if (objType === FSNOTIFY_OBJ_TYPE_SB) {
      const sb = connectorSb(connector);
      marks.push({ kind: 'sb', ...common, sDev: sb.member('s_dev').num() });
    } else {
      throw new BadDataError(`${connector.path}.type is ${objType}: not an inode, mount or file system mark`);
    }
  }
  return { flags, eventFlags, marks };
}
