import fs from 'node:fs';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../../common/errors.js';
import { CHECKPOINT_DIR } from './unpack-archive.js';

/**
 * Where ovmigrate-cri unpacks an archive for a restore, and the annotation
 * with which it tells our shim (through the container's OCI spec, which
 * containerd fills from the CRI request's annotations when the runtime
 * passes `io.ovmigrate.*` through) to restore from that directory instead
 * of creating the container fresh.
 */
export const RESTORE_ROOT = '/var/lib/ovmigrate/restore';
export const RESTORE_ANNOTATION = 'io.ovmigrate.restore';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * The restore directory an annotation names, checked before the shim
 * trusts it: a direct child of `root` by a path without symlinks, a
 * directory of root's (or ours) that no one else may write (0700, as the
 * unpack made it), with its checkpoint/ images. Anyone able to set a CRI
 * annotation could otherwise point runc restore at images of their own.
 */
export function checkRestoreDir(dir: string, root = RESTORE_ROOT): string {
  if (!path.isAbsolute(dir) || path.resolve(dir) !== dir || path.dirname(dir) !== root || !NAME.test(path.basename(dir))) {
    throw new InvalidArgumentError(`${RESTORE_ANNOTATION}=${JSON.stringify(dir)}: not a directory directly under ${root}`);
  }
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    throw new FailedPreconditionError(`${RESTORE_ANNOTATION}: ${dir} does not exist`);
  }
  if (real !== dir) throw new InvalidArgumentError(`${RESTORE_ANNOTATION}: ${dir} goes through a symlink (to ${real})`);
  const uid = process.getuid?.() ?? 0;
  for (const d of [dir, path.join(dir, CHECKPOINT_DIR)]) {
    const st = fs.lstatSync(d, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new FailedPreconditionError(`${RESTORE_ANNOTATION}: ${d} is not a directory`);
    if (st.uid !== 0 && st.uid !== uid) throw new FailedPreconditionError(`${RESTORE_ANNOTATION}: ${d} is owned by uid ${st.uid}`);
    if ((st.mode & 0o077) !== 0) throw new FailedPreconditionError(`${RESTORE_ANNOTATION}: ${d} is open to others (mode ${(st.mode & 0o777).toString(8)})`);
  }
  return dir;
}
