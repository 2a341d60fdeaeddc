import fs from 'node:fs';
import path from 'node:path';
import { BadDataError } from '../errors.js';
import type { TarWriter } from './tar-writer.js';

/**
 * The layout of containerd 2.x's container checkpoint archive
 * (internal/cri/server/container_checkpoint_linux.go, v2.3.7), written by
 * both sides: the guest's CRI layer when the images came through the guest,
 * the host's backend when it writes the archive itself. A directory walk's
 * order, as containerd tars it: `checkpoint/` (the CRIU images, flat, but
 * stats-dump), then the top-level files by name; files 0600.
 */

export const CHECKPOINT_DIR = 'checkpoint';
/** CRIU's dump statistics: an image, but containerd puts it at the top. */
export const STATS_DUMP = 'stats-dump';
export const ARCHIVE_FILE_MODE = 0o600;

/** A top-level entry: its bytes, or a file to copy them from. */
export type TopEntry = { name: string; data: Buffer } | { name: string; file: string };

/** The regular files of an images directory, by name; anything else is refused. */
export async function imageFiles(dir: string): Promise<string[]> {
  const entries = await fs.promises.readdir(dir, { withFileTypes: true });
  const odd = entries.find((e) => !e.isFile());
  if (odd) throw new BadDataError(`the checkpoint images hold ${odd.name}, which is not a regular file`);
  return entries.map((e) => e.name).sort((a, b) => (a < b ? -1 : 1));
}

/**
 * Writes the whole archive and its end marker: the images of `imagesDir`
 * under checkpoint/, `top` and the images' stats-dump at the top, in name
 * order. Names in `top` are the caller's choice of the archive's file names.
 */
export async function writeCheckpointTar(tar: TarWriter, imagesDir: string, top: TopEntry[], mtime = Math.floor(Date.now() / 1000)): Promise<void> {
  const images = await imageFiles(imagesDir);
  const size = async (file: string) => (await fs.promises.lstat(file)).size;
  const writers: [string, () => Promise<void>][] = [[CHECKPOINT_DIR, async () => {
    await tar.entry({ name: CHECKPOINT_DIR, type: 'dir', mode: 0o700, mtime });
    for (const name of images) {
      if (name === STATS_DUMP) continue;
      const file = path.join(imagesDir, name);
      await tar.file({ name: `${CHECKPOINT_DIR}/${name}`, mode: ARCHIVE_FILE_MODE, mtime, size: await size(file) }, file);
    }
  }]];
  const all: TopEntry[] = images.includes(STATS_DUMP) ? [...top, { name: STATS_DUMP, file: path.join(imagesDir, STATS_DUMP) }] : top;
  for (const e of all) {
    writers.push([e.name, async () => {
      if ('data' in e) await tar.data({ name: e.name, mode: ARCHIVE_FILE_MODE, mtime }, e.data);
      else await tar.file({ name: e.name, mode: ARCHIVE_FILE_MODE, mtime, size: await size(e.file) }, e.file);
    }]);
  }
  for (const [, write] of writers.sort(([a], [b]) => (a < b ? -1 : 1))) await write();
  await tar.end();
}
