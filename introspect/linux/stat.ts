import { KObject } from '../kernel/object.js';

/** include/uapi/linux/stat.h: the file type bits of an inode's mode. */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/**
 * An inode's mtime in seconds. 6.1 has `struct timespec64 i_mtime`; 6.7
 * renamed it `__i_mtime` (accessors only); 6.11 split it into `i_mtime_sec`
 * and `i_mtime_nsec` ("fs: switch timespec64 fields in inode to discrete
 * integers"). Whichever member this kernel's BTF has.
 */
export function inodeMtimeSec(inode: KObject): bigint {
  if (inode.has('i_mtime_sec')) return inode.member('i_mtime_sec').value();
  return inode.member(inode.has('__i_mtime') ? '__i_mtime.tv_sec' : 'i_mtime.tv_sec').value();
}
