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
  image(kind: string, entries: ImageEntry[], id?: number | bigint): string {
    const k = kindByName(kind);
    if (!k) throw new NotFoundError(`no CRIU image kind ${kind}`);
    const name = id === undefined ? k.file : k.file.replace('ID', String(id));
    this.file(name, encodeImage(kind, entries));
    return name;
  }

  /** Writes an image of plain objects, each made an entry of the kind's message type. */
  objects(kind: string, objects: Record<string, unknown>[], id?: number | bigint): string {
    const k = kindByName(kind);
    if (!k) throw new NotFoundError(`no CRIU image kind ${kind}`);
    return this.image(kind, objects.map((o) => makeEntry(k.entry, o)), id);
  }

  /** Writes a file of the image set. */
  file(name: string, data: Buffer): void {
    fs.writeFileSync(this.path(name), data, { mode: 0o600 });
  }

  /** Opens a raw image (pages-N.img) for streaming; returns its fd. */
  open(name: string): number {
    return fs.openSync(this.path(name), 'w', 0o600);
  }

  path(name: string): string {
    if (name.includes('/') || name.startsWith('.')) throw new InvalidArgumentError(`image name ${name}`);
    return path.join(this.staging, name);
  }

  /** Makes the images appear under DIR. */
  commit(): void {
    if (this.mode === 'rename') {
      fs.renameSync(this.staging, this.dir);
      return;
    }
    for (const name of fs.readdirSync(this.staging)) fs.renameSync(path.join(this.staging, name), path.join(this.dir, name));
    fs.rmdirSync(this.staging);
  }

  /** Removes everything written; DIR is left as it was. */
  abort(): void {
    fs.rmSync(this.staging, { recursive: true, force: true });
  }
}
