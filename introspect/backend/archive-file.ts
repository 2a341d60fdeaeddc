import fs from 'node:fs';
import { ARCHIVE_ENTRY_NAMES, ArchiveRequest, MAX_ARCHIVE_METADATA_BYTES } from '../../common/backend-api.js';
import { InvalidArgumentError } from '../../common/errors.js';
import { logSafe } from '../../common/log.js';
import { ARCHIVE_FILE_MODE, TarWriter, type TopEntry, writeCheckpointTar } from '../../common/tar/index.js';

/**
 * The checkpoint archive the backend writes itself (backend.proto
 * ArchiveRequest): the images it dumped go in as checkpoint/, the guest's few
 * small files at the top, so the pages cross no guest CPU. The guest names
 * entries only from a fixed set (they are never paths; the file the archive
 * is written to is the backend's own choice) and their data is bounded.
 */

/** The top-level entries of a request, checked: known names, each once, their data and the config bounded together. */
export function archiveEntries(req: ArchiveRequest, config: Buffer, id: string): TopEntry[] {
  const out: TopEntry[] = [];
  let total = config.length;
  for (const e of req.entries ?? []) {
    const name = String(e.name);
    if (!ARCHIVE_ENTRY_NAMES.includes(name)) {
      throw new InvalidArgumentError(`archive entry "${logSafe(name, 80)}" of container ${id}: not one of ${ARCHIVE_ENTRY_NAMES.join(', ')}`);
    }
    if (out.some((o) => o.name === name)) throw new InvalidArgumentError(`archive entry ${name} of container ${id}: given twice`);
    const data = Buffer.from(e.data ?? []);
    total += data.length;
    if (total > MAX_ARCHIVE_METADATA_BYTES) {
      throw new InvalidArgumentError(`archive entries of container ${id}: with the config, more than the ${MAX_ARCHIVE_METADATA_BYTES} bytes they may have together`);
    }
    out.push({ name, data });
  }
  if (req.spec_from_config) {
    if (!config.length) throw new InvalidArgumentError(`archive of container ${id}: spec.dump from the config, but no config was given`);
    out.push({ name: 'spec.dump', data: config });
  }
  return out;
}

/**
 * Writes the archive of `imagesDir` and `top` into `file` (absent; created
 * exclusively, 0600, not following a link) and syncs it; returns its size.
 * A failure removes what was written.
 */
export async function writeArchiveFile(file: string, imagesDir: string, top: TopEntry[]): Promise<number> {
  const fh = await fs.promises.open(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, ARCHIVE_FILE_MODE);
  let ok = false;
  try {
    await fh.chmod(ARCHIVE_FILE_MODE);
    const tar = new TarWriter(fh);
    await writeCheckpointTar(tar, imagesDir, top);
    await fh.sync();
    ok = true;
    return tar.size;
  } finally {
    await fh.close();
    if (!ok) await fs.promises.rm(file, { force: true });
  }
}
