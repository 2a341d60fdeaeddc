import crypto from 'node:crypto';
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { ARCHIVE_FILE_MODE, type TarWriter, type TopEntry, writeCheckpointTar } from '../../common/tar/index.js';

/**
 * The container checkpoint archive as containerd 2.x's CRI writes it
 * (internal/cri/server/container_checkpoint_linux.go, v2.3.7), which
 * checkpointctl and containerd's restore read: an uncompressed tar of
 *   checkpoint/       the CRIU images, flat
 *   config.dump       checkpointctl's ContainerConfig (lib/metadata.go, v1.6.0)
 *   container.log     the container's log, when it has one
 *   rootfs-diff.tar   the container's rw layer (whiteouts as .wh. entries)
 *   spec.dump         the OCI spec
 *   stats-dump        CRIU's dump statistics, when the images have them
 *   status.dump       the CRI ContainerStatus, as Go's encoding/json writes it
 * Entries in name order (containerd tars a directory walk), files 0600.
 */

export { STATS_DUMP } from '../../common/tar/index.js';

/** Go's zero time.Time, as encoding/json writes it. */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/** A time as Go's encoding/json writes a UTC time.Time (RFC 3339 with trailing zeros of the fraction cut). */
export function goTime(unixNanos: bigint): string {
  if (unixNanos <= 0n) return GO_ZERO_TIME;
  const seconds = unixNanos / 1_000_000_000n;
  const nanos = unixNanos % 1_000_000_000n;
  const iso = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  const fraction = nanos === 0n ? '' : `.${nanos.toString().padStart(9, '0').replace(/0+$/, '')}`;
  return `${iso}${fraction}Z`;
}

/** What config.dump says of the container. */
export interface ConfigDumpInput {
  id: string;
  /** containerd's container name: <name>_<pod name>_<pod namespace>_<pod uid>_<attempt>. */
  name: string;
  /** The image as the container was created from it (ContainerStatus.image.image). */
  image: string;
  /** The image's reference by digest (ContainerStatus.image_ref). */
  imageRef: string;
  /** The runtime type (containerd's Runtime.Name). */
  runtime: string;
  createdAt: bigint;
  checkpointedAt: bigint;
}

/**
 * config.dump: checkpointctl's ContainerConfig, with containerd 2.x's values
 * (rootfsImage and rootfsImageName both the image name), Go's field order.
 */
export function configDump(c: ConfigDumpInput): Buffer {
  return Buffer.from(JSON.stringify({
    id: c.id,
    name: c.name,
    ...(c.image ? { rootfsImage: c.image } : {}),
    ...(c.imageRef ? { rootfsImageRef: c.imageRef } : {}),
    ...(c.image ? { rootfsImageName: c.image } : {}),
    ...(c.runtime ? { runtime: c.runtime } : {}),
    createdTime: goTime(c.createdAt),
    checkpointedTime: goTime(c.checkpointedAt),
    restoredTime: GO_ZERO_TIME,
    restored: false,
  }));
}

/** containerd's name of a CRI container (internal/cri/util makeContainerName). */
export function criContainerName(container: { name: string; attempt: number }, pod: { name: string; namespace: string; uid: string }): string {
  return [container.name, pod.name, pod.namespace, pod.uid, String(container.attempt)].join('_');
}

/** The parts of one archive, as they lie before it is written. */
export interface ArchiveParts {
  configDump: Buffer;
  specDump: Buffer;
  statusDump: Buffer;
  /** A directory of regular files only: the CRIU images (a stats-dump among them goes to the top). */
  images: string;
  /** The rw layer's tar, already written. */
  rootfsDiff: string;
  /** The container's log file, when it has one. */
  containerLog?: string;
}

const FILE_MODE = ARCHIVE_FILE_MODE;

/** Writes the archive's entries, in name order (common/tar/checkpoint-layout.ts). */
export async function writeArchive(tar: TarWriter, parts: ArchiveParts): Promise<void> {
  const top: TopEntry[] = [
    { name: 'config.dump', data: parts.configDump },
    ...(parts.containerLog && fs.existsSync(parts.containerLog) ? [{ name: 'container.log', file: parts.containerLog }] : []),
    { name: 'rootfs-diff.tar', file: parts.rootfsDiff },
    { name: 'spec.dump', data: parts.specDump },
    { name: 'status.dump', data: parts.statusDump },
  ];
  await writeCheckpointTar(tar, parts.images, top);
}

/** Refuses a location that cannot take a new archive, before anything is done. */
export function checkLocation(location: string): void {
  if (!location) throw new InvalidArgumentError('checkpoint location is empty');
  if (!path.isAbsolute(location)) throw new InvalidArgumentError(`checkpoint location ${JSON.stringify(location)} is not an absolute path`);
  if (fs.existsSync(location) || isSymlink(location)) throw new AlreadyExistsError(`checkpoint location ${location} already exists: a checkpoint archive is never written over a file`);
  const dir = path.dirname(location);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new FailedPreconditionError(`the directory of checkpoint location ${location} does not exist`);
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A name in `dir` for this process's temporary files, hidden and unique. */
export function tempName(dir: string, base: string, suffix: string): string {
  return path.join(dir, `.${base}.ovmigrate-${crypto.randomBytes(6).toString('hex')}${suffix}`);
}

/**
 * Creates `location` with what `write` puts in a file, whole or not at all:
 * written to a temporary file beside it (0600, exclusive), synced, then
 * hard-linked to `location`, which fails when anything is there by then;
 * the temporary file is removed on every path.
 */
export async function writeExclusive(location: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const dir = path.dirname(location);
  const temp = tempName(dir, path.basename(location), '.partial');
  const fh = await fs.promises.open(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, FILE_MODE);
  let open = true;
  try {
    await fh.chmod(FILE_MODE);
    await write(fh);
    await fh.sync();
    await fh.close();
    open = false;
    try {
      await fs.promises.link(temp, location);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(`checkpoint location ${location} already exists: a checkpoint archive is never written over a file`, { cause: err });
      throw err;
    }
    await syncDir(dir);
  } finally {
    if (open) await fh.close().catch(() => undefined);
    await fs.promises.unlink(temp).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') log.warn(`removing ${temp}: ${errorMessage(err)}`);
    });
  }
}

/**
 * Makes the whole archive `file` (on location's file system) appear at
 * `location` by a hard link, which fails when anything is there by then.
 */
export async function linkExclusive(file: string, location: string): Promise<void> {
  try {
    await fs.promises.link(file, location);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(`checkpoint location ${location} already exists: a checkpoint archive is never written over a file`, { cause: err });
    throw err;
  }
  await syncDir(path.dirname(location));
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
