import { KObject } from '../kernel/object.js';
import { S_IFCHR, S_IFMT } from './stat.js';

/** FMODE_READ, FMODE_WRITE of struct file's f_mode. */
const FMODE_READ = 1;
const FMODE_WRITE = 2;

/** The state of one struct file that open(2), lseek(2) and fcntl(2) set. */
export interface OpenFileState {
  path: KObject;
  /** f_flags (O_*). */
  flags: number;
  pos: bigint;
  /** The inode the data comes from (for overlayfs the real one; the path shows the overlay's). */
  inode: KObject;
}

export function openFileState(file: KObject): OpenFileState {
  return { path: userPath(file), flags: file.member('f_flags').num(), pos: file.member('f_pos').value(), inode: file.member('f_inode').deref() };
}

/**
 * FMODE_BACKING: the file is the `file` member of a struct backing_file
 * (include/linux/fs.h; 0x2000000 from 6.6, where backing files came, up to 6.13).
 */
const FMODE_BACKING = 0x2000000;

/**
 * The path a user sees for a file (file_user_path()). Since 6.6 ("fs: use
 * backing_file container for internal files with fake f_path") overlayfs maps its real file, a struct backing_file whose
 * f_path is the real file's on the lower/upper mount and whose user_path
 * is the overlay's; 6.1 has no backing_file in its BTF and set the fake
 * f_path on the real file itself.
 */
export function userPath(file: KObject): KObject {
  return isBackingFile(file) ? KObject.struct(file.prog, 'backing_file', file.address).member('user_path') : file.member('f_path');
}

/** The inode a user sees for a file (file_user_inode(): /proc/PID/maps' device and inode). */
export function userInode(file: KObject): KObject {
  return isBackingFile(file) ? userPath(file).member('dentry').deref().member('d_inode').deref() : file.member('f_inode').deref();
}

function isBackingFile(file: KObject): boolean {
  return file.prog.btf.byName('backing_file', 'struct') !== undefined && (file.member('f_mode').num() & FMODE_BACKING) !== 0;
}

/** Whether a file is a struct file (rather than a struct path). */
export function isStructFile(obj: KObject): boolean {
  return obj.type.kind === 'struct' && obj.type.name === 'file';
}

/** O_RDONLY/O_WRONLY/O_RDWR from a struct file's f_mode, as /proc/PID/map_files' link mode shows it to CRIU. */
export function mappedFileFlags(file: KObject): number {
  const mode = file.member('f_mode').num();
  if (mode & FMODE_READ && mode & FMODE_WRITE) return 2;
  return mode & FMODE_WRITE ? 1 : 0;
}

/** Whether a struct file is a character device. */
export function isCharDevice(file: KObject): boolean {
  return (file.member('f_inode').deref().member('i_mode').num() & S_IFMT) === S_IFCHR;
}

/** The major number of a device inode's i_rdev (include/linux/kdev_t.h MINORBITS = 20). */
export function rdevMajor(inode: KObject): number {
  return inode.member('i_rdev').num() >>> 20;
}

/** An inode's size (i_size). */
export function inodeSize(inode: KObject): bigint {
  return inode.member('i_size').value();
}
