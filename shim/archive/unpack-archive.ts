import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ArchiveRefusedError, errorMessage } from '../../common/errors.js';
import { ByteSource, TarReader, entryComponents, type TarEntry } from '../../common/tar/index.js';

/** The archive's CRIU images: flat regular files only (what containerd 2.x writes and unpacks). */
export const CHECKPOINT_DIR = 'checkpoint';
/** JSON metadata, read whole into memory: bounded each. */
export const METADATA_FILES = ['config.dump', 'spec.dump', 'status.dump', 'status'] as const;

export interface ArchiveLimits {
  /** Headers of every kind (pax and long names included). */
  maxEntries: number;
  /** Sum of the regular files' sizes. */
  maxTotalBytes: number;
  /** Each of METADATA_FILES. */
  maxMetadataBytes: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxEntries: 20_000,
  maxTotalBytes: 64 * 1024 ** 3,
  maxMetadataBytes: 1024 * 1024,
};

/** Names a file may have at the top or in checkpoint/: no dot files, no control characters. */
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+@:=-]{0,254}$/;

export interface UnpackedArchive {
  dir: string;
  /** Top-level regular files, by name. */
  files: string[];
  /** Files in checkpoint/. */
  images: string[];
}

/** What kind of entry may not be unpacked at all, whatever its name. */
function refuseKind(e: TarEntry): void {
  const why: Partial<Record<TarEntry['kind'], string>> = {
    symlink: `symlink (to ${JSON.stringify(e.linkname)}): an archive carries no links`,
    hardlink: `hardlink (to ${JSON.stringify(e.linkname)}): an archive carries no links`,
    char: 'character device', block: 'block device', fifo: 'FIFO',
  };
  const reason = why[e.kind];
  if (reason) throw new ArchiveRefusedError(e.name, reason);
}

/**
 * Unpacks a checkpoint archive into `target`, which must not exist: it is
 * made 0700, files 0600, created exclusively and without following links.
 * Only top-level regular files and checkpoint/ with flat regular files in
 * it are taken; anything else, and any limit passed, refuses the whole
 * archive (ArchiveRefusedError naming the entry and why) and removes the
 * target.
 */
export async function unpackArchive(stream: Readable, target: string, label: string,
  limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS): Promise<UnpackedArchive> {
  fs.mkdirSync(target, { mode: 0o700 });
  const src = new ByteSource(stream);
  const out: UnpackedArchive = { dir: target, files: [], images: [] };
  try {
    const tar = new TarReader(src, label);
    let total = 0;
    for (let e = await tar.next(limits.maxEntries); e; e = await tar.next(limits.maxEntries)) {
      const parts = entryComponents(e.name);
      refuseKind(e);
      if (e.kind === 'directory') {
        if (parts.length === 0) continue;
        if (parts.length !== 1 || parts[0] !== CHECKPOINT_DIR) {
          throw new ArchiveRefusedError(e.name, `directory other than ${CHECKPOINT_DIR}/: a checkpoint archive has no other`);
        }
        makeCheckpointDir(target);
        continue;
      }
      const inImages = parts.length === 2 && parts[0] === CHECKPOINT_DIR;
      if (parts.length !== 1 && !inImages) {
        throw new ArchiveRefusedError(e.name, parts[0] === CHECKPOINT_DIR
          ? `not a flat regular file in ${CHECKPOINT_DIR}/ (CRIU images are flat)`
          : 'nested path outside checkpoint/');
      }
      const name = parts[parts.length - 1];
      if (!FILE_NAME.test(name)) throw new ArchiveRefusedError(e.name, 'file name with characters a checkpoint never uses');
      if (!inImages && name === CHECKPOINT_DIR) throw new ArchiveRefusedError(e.name, `${CHECKPOINT_DIR} must be a directory`);
      if (!inImages && (METADATA_FILES as readonly string[]).includes(name) && e.size > limits.maxMetadataBytes) {
        throw new ArchiveRefusedError(e.name, `metadata of ${e.size} bytes (at most ${limits.maxMetadataBytes})`);
      }
      total += e.size;
      if (total > limits.maxTotalBytes) throw new ArchiveRefusedError(e.name, `archive over ${limits.maxTotalBytes} bytes of files`);
      if (inImages) makeCheckpointDir(target);
      await writeExclusive(path.join(target, ...parts), tar.body(), e.name);
      (inImages ? out.images : out.files).push(name);
    }
    if (!out.files.includes('spec.dump') || !out.files.includes('config.dump')) {
      throw new ArchiveRefusedError(label, 'not a checkpoint archive: config.dump and spec.dump are required');
    }
    if (out.images.length === 0) throw new ArchiveRefusedError(label, `not a checkpoint archive: no CRIU images in ${CHECKPOINT_DIR}/`);
    return out;
  } catch (err) {
    // The target is ours and fresh: only regular files and checkpoint/ were made in it.
    fs.rmSync(target, { recursive: true, force: true });
    throw err;
  } finally {
    await src.close().catch(() => undefined);
    stream.destroy();
  }
}

function makeCheckpointDir(target: string): void {
  const dir = path.join(target, CHECKPOINT_DIR);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Only we write here: an existing one is the directory we made.
    if (!fs.lstatSync(dir).isDirectory()) throw new ArchiveRefusedError(`${CHECKPOINT_DIR}/`, 'not a directory');
  }
}

/** A new file, 0600, never an existing one, never through a link; a second entry of the same name is refused. */
async function writeExclusive(file: string, body: AsyncIterable<Buffer>, entry: string): Promise<void> {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ArchiveRefusedError(entry, 'appears twice in the archive');
    throw new ArchiveRefusedError(entry, `cannot be created: ${errorMessage(err)}`);
  }
  try {
    for await (const chunk of body) {
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
    }
  } finally {
    fs.closeSync(fd);
  }
}
