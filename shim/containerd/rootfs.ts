import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ExternalError, InvalidArgumentError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import type { Mount } from './task-messages.js';

const run = promisify(execFile);

/** Where a bundle's root filesystem is mounted, as runc's config.json from containerd expects it. */
export function rootfsPath(bundle: string): string {
  return path.join(bundle, 'rootfs');
}

/**
 * The rootfs mounts containerd hands over (an overlay of the image's
 * layers), mounted at BUNDLE/rootfs. Whether anything was mounted (so that
 * Delete unmounts it).
 */
export async function mountRootfs(bundle: string, mounts: Mount[]): Promise<boolean> {
  if (mounts.length > 1) throw new InvalidArgumentError(`${mounts.length} rootfs mounts: this shim mounts one`);
  for (const m of mounts) {
    const target = rootfsPath(bundle);
    fs.mkdirSync(target, { recursive: true });
    const options = m.options.join(',');
    try {
      await run('mount', ['-t', m.type, ...(options ? ['-o', options] : []), m.source, target]);
    } catch (err) {
      throw new ExternalError(`mounting the rootfs of ${bundle}: ${errorMessage(err)}`, { cause: err });
    }
  }
  return mounts.length > 0;
}

/** Unmounts BUNDLE/rootfs; a failure is logged, not thrown (the container is gone either way). */
export async function unmountRootfs(bundle: string): Promise<void> {
  const target = rootfsPath(bundle);
  try {
    await run('umount', [target]);
  } catch (err) {
    log.warn(`unmounting ${target}: ${errorMessage(err)}`);
  }
}
