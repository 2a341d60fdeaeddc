import fs from 'node:fs';
import path from 'node:path';
import { BadDataError, NotFoundError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import {
  applyRootfsDiff, CHECKPOINT_DIR, checkRestoreDir, readMetadata, requireBindMounts, RESTORE_ANNOTATION, RESTORE_ROOT,
} from '../archive/index.js';
import { rootfsPath } from './rootfs.js';

/**
 * A restore that ovmigrate-cri asked for: its CreateContainer put
 * RESTORE_ANNOTATION (the directory it unpacked a checkpoint archive into)
 * in the container's annotations, which containerd copies into the
 * bundle's config.json. The shim then restores at Start from the images
 * there, as for a Create that carries a checkpoint (`ctr container
 * restore`): no containerd restore feature is needed, so containerd 1.6,
 * 2.x and 2.4+ all work.
 */
export interface BundleRestore {
  dir: string;
  /** The CRIU images runc restore reads. */
  images: string;
}

interface BundleSpec {
  annotations?: Record<string, unknown>;
  mounts?: { destination?: unknown }[];
}

function readSpec(bundle: string): BundleSpec {
  const file = path.join(bundle, 'config.json');
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as BundleSpec;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`bundle ${bundle} has no config.json`);
    throw new BadDataError(`${file}: not JSON`, { cause: err });
  }
}

/** The restore the bundle asks for, its directory checked (under `root`, private); undefined when it asks for none. */
export function bundleRestore(bundle: string, root = RESTORE_ROOT): BundleRestore | undefined {
  const value = readSpec(bundle).annotations?.[RESTORE_ANNOTATION];
  if (value === undefined) return undefined;
  const dir = checkRestoreDir(String(value), root);
  return { dir, images: path.join(dir, CHECKPOINT_DIR) };
}

/**
 * Before the restore: the checkpointed bind mounts must all be among the
 * bundle's own mounts (which come from the new CreateContainer, never from
 * the archive), and the checkpointed rw changes go onto the mounted rootfs.
 */
export async function prepareBundleRestore(restore: BundleRestore, bundle: string): Promise<void> {
  const meta = readMetadata(restore.dir);
  const mounts = (readSpec(bundle).mounts ?? []).map((m) => (typeof m.destination === 'string' ? m.destination : ''));
  requireBindMounts(meta.spec, mounts, "the container's config.json");
  const diff = path.join(restore.dir, 'rootfs-diff.tar');
  if (!fs.lstatSync(diff, { throwIfNoEntry: false })?.isFile()) return;
  const result = await applyRootfsDiff(diff, rootfsPath(bundle));
  log.info(`${path.basename(bundle)}: rootfs diff applied (${result.entries} entries, ${result.bytes} bytes)`);
}
