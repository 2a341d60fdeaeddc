import fs from 'node:fs';
import path from 'node:path';
import { MAX_ARCHIVE_METADATA_BYTES } from '../../common/backend-api.js';
import type { ArchiveOptions } from '../containerd/archive-checkpoint.js';

/**
 * Where the pages go: the host writes the archive. The CRI layer stages the
 * archive's small files (config.dump, status.dump, the rw layer's tar, the
 * container's log) beside `location`; the shim sends them to the host's
 * backend, which writes the whole archive with its checkpoint/ entries
 * straight from the images it dumped onto the VM's share, and the shim links
 * it into the staging directory (on the share's mount: no byte moves through
 * the guest) or, elsewhere, has the kernel copy it. The guest's CPU touches
 * the metadata only. When the small files are too large for one backend
 * request, or no archive comes back (CRIU in the guest, an older backend), the
 * images come into the staging directory and the CRI layer tars them itself,
 * as before.
 */

/** The host's archive in the staging directory. */
export const STAGED_ARCHIVE = 'archive.tar';
/** The images in the staging directory, when the CRI layer writes the archive. */
export const STAGED_IMAGES = 'checkpoint';

/** The staged small files, by their archive names. */
export interface StagedMetadata {
  configDump: Buffer;
  statusDump: Buffer;
  /** The container's log, copied into the stage when it is small enough for the backend. */
  containerLog?: string;
  /** The rw layer's tar, already in the stage as rootfs-diff.tar. */
  rootfsDiff: string;
  /** The bundle's config.json (spec.dump), which the shim sends with them. */
  specBytes: number;
}

/**
 * Writes config.dump and status.dump into `stage` beside rootfs-diff.tar,
 * with a copy of the container's log, and returns the shim's options asking
 * for the host's archive; undefined when, with the bundle's config (spec.dump,
 * which the shim sends anyway), they exceed what one backend request takes.
 */
export async function stageMetadata(stage: string, m: StagedMetadata): Promise<ArchiveOptions | undefined> {
  const logSize = m.containerLog ? (await fs.promises.stat(m.containerLog).catch(() => undefined))?.size : undefined;
  const diffSize = (await fs.promises.stat(m.rootfsDiff)).size;
  const total = m.specBytes + m.configDump.length + m.statusDump.length + diffSize + (logSize ?? 0);
  if (total > MAX_ARCHIVE_METADATA_BYTES) return undefined;
  const write = (name: string, data: Buffer) => fs.promises.writeFile(path.join(stage, name), data, { mode: 0o600, flag: 'wx' });
  await write('config.dump', m.configDump);
  await write('status.dump', m.statusDump);
  const entries = ['config.dump', 'rootfs-diff.tar', 'status.dump'];
  if (logSize !== undefined && m.containerLog) {
    // A snapshot of the log as it is while the container is paused; a log that grew past the bound meanwhile is cut there.
    const data = await readAtMost(m.containerLog, MAX_ARCHIVE_METADATA_BYTES - (total - logSize));
    await write('container.log', data);
    entries.push('container.log');
  }
  return { file: STAGED_ARCHIVE, entries: entries.sort(), spec_from_config: true, images: STAGED_IMAGES };
}

async function readAtMost(file: string, max: number): Promise<Buffer> {
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY);
  try {
    const buf = Buffer.alloc(Math.max(0, max));
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}
