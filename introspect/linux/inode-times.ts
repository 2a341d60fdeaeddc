import { KObject } from '../kernel/object.js';

/**
 * An inode's atime or mtime, seconds and nanoseconds. 6.1 has `struct
 * timespec64 i_atime`; 6.7 renamed them `__i_atime` (accessors only); 6.11
 * split them into `i_atime_sec` and `i_atime_nsec` ("fs: switch timespec64
 * fields in inode to discrete integers"). Whichever this kernel's BTF has.
 */
export function inodeTime(inode: KObject, which: 'atime' | 'mtime'): { sec: bigint; nsec: number } {
  if (inode.has(`i_${which}_sec`)) return { sec: inode.member(`i_${which}_sec`).value(), nsec: inode.member(`i_${which}_nsec`).num() };
  const ts = inode.member(inode.has(`__i_${which}`) ? `__i_${which}` : `i_${which}`);
  return { sec: ts.member('tv_sec').value(), nsec: ts.member('tv_nsec').num() };
}

/** An inode's link count (i_nlink): 0 once its last name is unlinked. */
export function inodeLinks(inode: KObject): number {
  return inode.member('__i_nlink').num();
}
