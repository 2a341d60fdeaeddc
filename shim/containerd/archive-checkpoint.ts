import fs from 'node:fs';
import path from 'node:path';
import { ARCHIVE_ENTRY_NAMES, type ArchiveRequest, MAX_ARCHIVE_METADATA_BYTES } from '../../common/backend-api.js';
import { AlreadyExistsError, BadDataError, InvalidArgumentError, UnsupportedError } from '../../common/errors.js';

/**
 * A checkpoint whose result is one archive file the host writes (backend.proto
 * ArchiveRequest), asked for by the guest's CRI layer with these options
 * (an Any of OVMIGRATE_ARCHIVE_OPTIONS, JSON). The CRI layer has put the
 * archive's small files into the target directory; the shim sends them, and
 * puts the host's archive into the target as `file`: a hard link to the
 * share's file when the target is on the share's mount (no byte moves),
 * otherwise a copy the kernel makes (copy_file_range, or sendfile).
 */
export interface ArchiveOptions {
  /** The archive's name in the target: one path component. */
  file: string;
  /** Files of the target that become the archive's top-level entries (ARCHIVE_ENTRY_NAMES). */
  entries: string[];
  /** spec.dump is the bundle's config.json. */
  spec_from_config?: boolean;
  /**
   * Where the images go when no archive can be made (no backend, and CRIU in
   * the guest per the shim's config; a backend that writes no archives): a
   * subdirectory of the target, one path component.
   */
  images: string;
}

/** The type URL of ArchiveOptions in CheckpointTaskRequest.options (packed as JSON, as containerd packs OCI types). */
export { OVMIGRATE_ARCHIVE_OPTIONS } from './api.js';

/** The options as the shim takes them: a file name that is no path, entry names of the fixed set. */
export function checkArchiveOptions(o: unknown): ArchiveOptions {
  const a = (o ?? {}) as Partial<ArchiveOptions>;
  const component = (what: string, v: unknown): string => {
    const s = typeof v === 'string' ? v : '';
    if (!s || s !== path.basename(s) || s === '.' || s === '..') throw new InvalidArgumentError(`archive ${what} ${JSON.stringify(v)}: give one path component`);
    return s;
  };
  const file = component('file', a.file);
  const images = component('images directory', a.images);
  if (!Array.isArray(a.entries) || a.entries.some((e) => typeof e !== 'string' || !ARCHIVE_ENTRY_NAMES.includes(e))) {
    throw new InvalidArgumentError(`archive entries ${JSON.stringify(a.entries)}: each one of ${ARCHIVE_ENTRY_NAMES.join(', ')}`);
  }
  return { file, entries: a.entries, spec_from_config: a.spec_from_config === true, images };
}

/** Reads the entries from the target: regular files only, not through links, within the backend's bound (the config counted). */
export async function readArchiveEntries(target: string, o: ArchiveOptions, configBytes: number): Promise<ArchiveRequest> {
  const entries: ArchiveRequest['entries'] = [];
  let total = configBytes;
  for (const name of o.entries) {
    const fh = await fs.promises.open(path.join(target, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new BadDataError(`archive entry ${path.join(target, name)} is not a regular file`);
      total += st.size;
      if (total > MAX_ARCHIVE_METADATA_BYTES) {
        throw new UnsupportedError(`archive entries in ${target}: with the config, more than the ${MAX_ARCHIVE_METADATA_BYTES} bytes the host's backend takes`);
      }
      entries.push({ name, data: await fh.readFile() });
    } finally {
      await fh.close();
    }
  }
  return { entries, spec_from_config: o.spec_from_config };
}

/** How the archive came into the target. */
export type Placement = 'link' | 'copy';

/**
 * Puts the share's archive file `from` at `to` (absent: never replaced),
 * checking it is a regular file of the size the backend wrote. Linked when
 * both are on one mount; copied otherwise.
 */
export async function placeArchive(from: string, to: string, bytes: bigint): Promise<Placement> {
  const st = await fs.promises.lstat(from);
  if (!st.isFile() || BigInt(st.size) !== bytes) {
    throw new BadDataError(`the backend's archive ${from} is ${st.isFile() ? `${st.size} bytes, not the ${bytes} it wrote` : 'not a regular file'}`);
  }
  try {
    await fs.promises.link(from, to);
    return 'link';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new AlreadyExistsError(`${to} already exists`, { cause: err });
    // EXDEV: another mount; EPERM/ENOTSUP: a file system without hard links.
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
  }
  // libuv's copyfile: copy_file_range where the kernel can, else sendfile; both stay in the kernel.
  try {
    await fs.promises.copyFile(from, to, fs.constants.COPYFILE_EXCL);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(`${to} already exists`, { cause: err });
    await fs.promises.rm(to, { force: true });
    throw err;
  }
  const fh = await fs.promises.open(to, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const copied = await fh.stat();
    if (BigInt(copied.size) !== bytes) throw new BadDataError(`copying ${from} to ${to}: ${copied.size} bytes, not ${bytes}`);
    await fh.sync();
  } catch (err) {
    await fs.promises.rm(to, { force: true });
    throw err;
  } finally {
    await fh.close();
  }
  return 'copy';
}
