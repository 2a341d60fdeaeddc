import fs from 'node:fs';
import path from 'node:path';
import { IMAGE_NAME } from '../../common/backend-api.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';

/**
 * The images directory the guest sees (DIR, on a share) and a staging
 * directory only the host sees, on the same file system. Dumps are written
 * into staging and renamed into DIR whole; released directories are renamed
 * out of DIR into staging first and removed there.
 *
 * The guest owns DIR's contents and may change them at any moment (swap a
 * directory for a symlink, rename DIR itself if it is not the share's root).
 * So DIR is only ever named through a descriptor opened once at start
 * (/proc/self/fd/N/NAME: the magic link is the directory itself, whatever
 * its path has become), only single components of our own making are
 * looked up in it, and nothing is walked inside it.
 */
export class ImageStore {
  private constructor(
    readonly dir: string,
    readonly staging: string,
    private dirFd: number,
  ) {}

  /**
   * Opens DIR and creates (or reuses) the staging directory, by default the
   * sibling `.<basename>.ovmigrate-staging`. With `shares` (the host
   * directories the guest mounts), refuses a DIR the guest cannot see and a
   * staging directory the guest can.
   */
  static open(dir: string, opts: { staging?: string; shares?: string[] } = {}): ImageStore {
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new NotFoundError(`--images ${dir}: no such directory`);
    const real = fs.realpathSync(dir);
    const staging = path.resolve(opts.staging ?? path.join(path.dirname(real), `.${path.basename(real)}.ovmigrate-staging`));
    if (opts.shares) {
      const shares = opts.shares.map((s) => fs.realpathSync(s));
      if (!shares.some((s) => within(real, s))) {
        throw new InvalidArgumentError(`--images ${dir}: not on a directory the guest mounts (${shares.join(', ') || 'it has no --share'})`);
      }
      if (shares.some((s) => within(staging, s) || within(s, staging))) {
        throw new InvalidArgumentError(`staging directory ${staging} is visible to the guest: give --staging DIR outside its shares, on the same file system`);
      }
    }
    if (within(staging, real) || within(real, staging)) throw new InvalidArgumentError(`staging directory ${staging} overlaps --images ${dir}`);
    fs.mkdirSync(staging, { recursive: true, mode: 0o700 });
    const sst = fs.lstatSync(staging);
    if (!sst.isDirectory() || sst.uid !== process.getuid!()) throw new FailedPreconditionError(`staging directory ${staging} is not a directory of this user`);
    fs.chmodSync(staging, 0o700);
    // Renames between the two need one file system.
    if (sst.dev !== fs.statSync(real).dev) throw new InvalidArgumentError(`staging directory ${staging} is not on the file system of --images ${dir}`);
    const dirFd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    return new ImageStore(real, staging, dirFd);
  }

  /** Where a dump named `name` is written before it is published (absent until then). */
  stagingPath(name: string): string {
    return path.join(this.staging, checkName(name));
  }

  /** Makes a staged dump appear in DIR. */
  publish(name: string): void {
    fs.renameSync(this.stagingPath(name), this.inDir(name));
  }

  /** Removes a staged dump that will not be published. */
  discard(name: string): void {
    fs.rmSync(this.stagingPath(name), { recursive: true, force: true });
  }

  /**
   * Takes DIR/name away from the guest (rename: a symlink put there is moved,
   * not followed), then removes it where the guest cannot reach. Already gone
   * is fine: the guest may delete its copy itself.
   */
  remove(name: string): void {
    const out = path.join(this.staging, `.released-${checkName(name)}`);
    try {
      fs.renameSync(this.inDir(name), out);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    fs.rmSync(out, { recursive: true, force: true });
  }

  close(): void {
    if (this.dirFd >= 0) fs.closeSync(this.dirFd);
    this.dirFd = -1;
  }

  private inDir(name: string): string {
    return `/proc/self/fd/${this.dirFd}/${checkName(name)}`;
  }
}

function checkName(name: string): string {
  if (!IMAGE_NAME.test(name)) throw new InvalidArgumentError(`image directory name ${JSON.stringify(name.slice(0, 80))}: not a name this backend makes`);
  return name;
}

/** True when `p` is `dir` or below it (both absolute and normalized). */
function within(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !path.isAbsolute(rel));
}
