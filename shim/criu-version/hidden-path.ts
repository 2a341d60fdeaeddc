import fs from 'node:fs';
import path from 'node:path';

/**
 * In the text of the stand-in's `criu` (shim/bin/criu-version/criu): a
 * directory whose `criu` carries it holds the stand-in.
 */
export const STAND_IN_MARK = 'ovmigrate-criu-version-only';

/** The directory of the stand-in's `criu`, for configurations (the checkout's shim/bin/criu-version). */
export const STAND_IN_DIR = path.resolve(__dirname, '..', '..', '..', 'shim', 'bin', 'criu-version');

/** Whether `dir/criu` is the stand-in (read its first KiB: the mark is in its opening lines). */
export function holdsStandIn(dir: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path.join(dir, 'criu'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const head = Buffer.alloc(1024);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    return head.subarray(0, n).includes(STAND_IN_MARK);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * A PATH without the stand-in's directory. containerd looks for `criu` in
 * the shims' PATH (the shim manager's env) or its own, which the shims
 * inherit: so the shim takes the stand-in out of its own PATH, and runc (the
 * in-guest fallback checkpoint, and every restore) only finds a real CRIU.
 */
export function withoutStandIn(searchPath: string | undefined): string | undefined {
  if (searchPath === undefined) return undefined;
  return searchPath.split(path.delimiter).filter((dir) => dir === '' || !holdsStandIn(dir)).join(path.delimiter);
}
