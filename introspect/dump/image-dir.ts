import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { ImageEntry, encodeImage, kindByName, makeEntry } from '../criu/index.js';

/**
 * An image directory written so that nothing partial is ever left where a
 * complete one is expected: images go to a staging directory on the same
 * file system and appear under DIR only when all are written (rename).
 * DIR must be absent or empty. If DIR is a mount point (its own file
 * system), staging sits inside it and the images are moved up at the end.
 */
export class ImageDir {

  private constructor(readonly dir: string, readonly staging: string, private readonly mode: 'rename' | 'move') {}

  static create(dir: string): ImageDir {
    const target = path.resolve(dir);
    const parent = path.dirname(target);
    const pst = fs.statSync(parent, { throwIfNoEntry: false });
    if (!pst?.isDirectory()) throw new NotFoundError(`-D ${dir}: ${parent} is not a directory`);
    const st = fs.lstatSync(target, { throwIfNoEntry: false });
    const tag = `.${path.basename(target)}.ovmigrate-${crypto.randomBytes(4).toString('hex')}`;
    if (!st) {
      const staging = path.join(parent, tag);
      fs.mkdirSync(staging, { mode: 0o700 });
      return new ImageDir(target, staging, 'rename');
    }
    if (!st.isDirectory()) throw new InvalidArgumentError(`-D ${dir}: exists and is not a directory`);
    const entries = fs.readdirSync(target);
    if (entries.length) throw new FailedPreconditionError(`-D ${dir}: not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); images go into an empty or new directory`);
    const mode = st.dev === pst.dev ? 'rename' : 'move';
    const staging = mode === 'rename' ? path.join(parent, tag) : path.join(target, tag);
    fs.mkdirSync(staging, { mode: 0o700 });
    // The renamed directory replaces DIR: keep DIR's permissions (containerd and runc make it 0700).
    if (mode === 'rename') fs.chmodSync(staging, st.mode & 0o7777);
    return new ImageDir(target, staging, mode);
  }

  /** Bytes in the images written so far. */
  size(): number {
    return fs.readdirSync(this.staging).reduce((n, name) => n + fs.statSync(path.join(this.staging, name)).size, 0);
  }

  /** Writes a whole image of a kind from the table (criu/index.ts), file name from the kind's pattern. */
  image(kind: string, entries: ImageEntry[], id?: number | bigint | string): string {
    const k = kindByName(kind);
    if (!k) throw new NotFoundError(`no CRIU image kind ${kind}`);
    const name = id === undefined ? k.file : k.file.replace('ID', String(id));
    this.file(name, encodeImage(kind, entries));
    return name;
  }

  /** Writes an image of plain objects, each made an entry of the kind's message type. */
  objects(kind: string, objects: Record<string, unknown>[], id?: number | bigint | string): string {
    const k = kindByName(kind);
    if (!k) throw new NotFoundError(`no CRIU image kind ${kind}`);
    return this.image(kind, objects.map((o) => makeEntry(k.entry, o)), id);
  }

  /** Writes a file of the image set. */
  file(name: string, data: Buffer): void {
    const fd = this.open(name);
    try {
      fs.writeFileSync(fd, data);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Opens a raw image (pages-N.img) for streaming; returns its fd. Exclusive
   * and no-follow: a name that exists (a symlink put there) is an error, never
   * a file written through.
   */
  open(name: string): number {
    return fs.openSync(this.path(name), CREATE_FLAGS, 0o600);
  }

  path(name: string): string {
    if (name.includes('/') || name.startsWith('.')) throw new InvalidArgumentError(`image name ${name}`);
    return path.join(this.staging, name);
  }

  /**
   * Makes the images appear under DIR. Images and directory are on disk
   * before the rename that shows them, and the rename is before the call
   * returns: a host crash leaves either nothing or complete images.
   */
  commit(): void {
    const names = fs.readdirSync(this.staging);
    for (const name of names) syncPath(path.join(this.staging, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    syncPath(this.staging, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    if (this.mode === 'rename') {
      fs.renameSync(this.staging, this.dir);
      syncPath(path.dirname(this.dir), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      return;
    }
    for (const name of names) fs.renameSync(path.join(this.staging, name), path.join(this.dir, name));
    fs.rmdirSync(this.staging);
    syncPath(this.dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  }

  /** Removes everything written; DIR is left as it was. */
  abort(): void {
    removeImageDir(this.staging);
  }
}

/** New image files: created here or not at all, never through a symlink. */
const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

function syncPath(p: string, flags: number): void {
  const fd = fs.openSync(p, flags);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** What removeImageDir did. */
export interface Removal {
  /** Regular files unlinked. */
  removed: number;
  /** Entries left alone (not regular files: a guest put them there), at most LEFT_NAMES of them. */
  left: string[];
  leftCount: number;
  /** The directory (or what stood in its place) is gone. */
  gone: boolean;
}

/** Entries looked at per pass: a directory someone keeps filling is left, not chased. */
const MAX_ENTRIES = 100_000;
const PASSES = 3;
const LEFT_NAMES = 8;

/**
 * Removes a flat image directory that someone else may still hold open
 * (a guest with a handle on it over virtiofs can create, rename and swap
 * entries in it while it is removed). Nothing is walked by path: the
 * directory is opened once (no-follow) and every entry is named through
 * that descriptor (/proc/self/fd/N/NAME, lstat'ed, never followed); only
 * regular files are unlinked, and unlink never follows either. Anything
 * else (a directory, a symlink, a fifo) is left alone, and so is the
 * directory then. A symlink or file standing at `dir` itself is unlinked.
 */
export function removeImageDir(dir: string): Removal {
  const out: Removal = { removed: 0, left: [], leftCount: 0, gone: false };
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ...out, gone: true };
    if (code !== 'ELOOP' && code !== 'ENOTDIR') throw err;
    fs.unlinkSync(dir);
    return { ...out, gone: true };
  }
  try {
    for (let pass = 0; pass < PASSES; pass++) {
      out.left = [];
      out.leftCount = 0;
      const self = `/proc/self/fd/${fd}`;
      const listing = fs.opendirSync(self);
      try {
        for (let i = 0, e = listing.readSync(); e && i < MAX_ENTRIES; i++, e = listing.readSync()) {
          const entry = `${self}/${e.name}`;
          const st = fs.lstatSync(entry, { throwIfNoEntry: false });
          if (!st) continue;
          if (st.isFile() && unlinkFile(entry)) {
            out.removed++;
            continue;
          }
          if (out.left.length < LEFT_NAMES) out.left.push(e.name);
          out.leftCount++;
        }
      } finally {
        listing.closeSync();
      }
      if (out.leftCount) return out;
      try {
        fs.rmdirSync(dir);
        out.gone = true;
        return out;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return { ...out, gone: true };
        // Filled again while we looked: look again, a few times.
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** Unlinks a regular file; false when it changed into something unlink will not take (a directory). */
function unlinkFile(p: string): boolean {
  try {
    fs.unlinkSync(p);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if (code === 'EISDIR' || code === 'EPERM') return false;
    throw err;
  }
}
