import { KObject } from '../../kernel/object.js';
import { fileHandle, handleWords } from '../../linux/file-handle.js';
import { inodePath } from '../../linux/inode-path.js';
import { MountInfo, fsTypeName } from '../../linux/mounts.js';
import type { FileTable } from '../files.js';
import { DumpProblem } from '../problem.js';
import { FdToDump, fdProblem } from './fd-dumper.js';

/**
 * The fh_entry of an inode an inotify watch or a fanotify mark is on
 * (criu/fsnotify.c check_open_handle): its file handle, and the path
 * restore opens it by (criu always looks one up: inode numbers and handles
 * of tmpfs, or of another VM, do not survive), with the mount it is under
 * when the mount namespace is dumped (CRIU sets mnt_id only then, and
 * restore looks it up only then). `what` names the watch in problems.
 * An inode of overlayfs is refused, as criu dump 3.17 refuses it
 * ("fsnotify: Can't dump that handle"): open_by_handle_at does not open an
 * overlay's handles (6.1 without nfs_export has no decoder, later kernels
 * encode them for fanotify only), and its irmap (inode to path) searches a
 * few fixed directories only.
 */
export function watchHandle(files: FileTable, fd: FdToDump, inode: KObject, seen: readonly MountInfo[], what: string):
  { fh: Record<string, unknown>; problems?: undefined } | { fh?: undefined; problems: DumpProblem[] } {
  const fsType = fsTypeName(inode.member('i_sb').deref());
  if (fsType === 'overlay') {
    return { problems: [fdProblem(fd, `${what} is on overlayfs, whose file handles do not open (criu dump 3.17 refuses it too: "Can't dump that handle")`)] };
  }
  const handle = fileHandle(inode);
  const where = inodePath(inode, seen, files.root);
  const problems: DumpProblem[] = [];
  if (!handle) problems.push(fdProblem(fd, `${what}: its file system encodes file handles in a way not supported`));
  if (!where) problems.push(fdProblem(fd, `${what}: no path reaches it (deleted, or outside the mounts the dump sees)`));
  if (!handle || !where) return { problems };
  return {
    fh: { bytes: handle.bytes.length, type: handle.type, handle: handleWords(handle.bytes), path: where.path, ...(files.mntIds ? { mnt_id: where.mntId } : {}) },
  };
}

/** "inode 12 (device 0:32)": how a watched inode is named in problems. */
export function inodeName(ino: bigint, sDev: number): string {
  return `inode ${ino} (device ${sDev >>> 20}:${sDev & 0xfffff})`;
}
