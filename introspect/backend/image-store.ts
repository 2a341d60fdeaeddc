import fs from 'node:fs';
import path from 'node:path';
import { IMAGE_NAME } from '../../common/backend-api.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { log, logSafe } from '../../common/log.js';
import { Removal, removeImageDir } from '../dump/image-dir.js';

/** What a backend leaves in staging: a staged dump or archive, a released directory or archive, ImageDir's own temporary directory. */
const STAGING_LEFTOVER = /^(?:[0-9a-f]{32}(?:\.tar)?|\.released-[0-9a-f]{32}|\.[0-9a-f]{32}\.ovmigrate-[0-9a-f]{8})$/;

/**
 * The images directory the guest sees (DIR, on a share) and a staging
 * directory only the host sees, on the same file system. Dumps are written
 * into staging and renamed into DIR whole; released directories are renamed
 * out of DIR into staging first and removed there.
 *
 * The guest owns DIR's contents and may change them at any moment (swap a
 * directory for a symlink, rename DIR itself if it is not the share's root),
 * and over virtiofs it may hold a directory open after it left DIR and
 * create entries in it. So DIR is only ever named through a descriptor
 * opened once at start (/proc/self/fd/N/NAME: the magic link is the
 * directory itself, whatever its path has become), only single components
 * of our own making are looked up in it, and nothing is walked by path:
 * image directories are flat and removed entry by entry through a
 * descriptor (removeImageDir).
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
   * staging directory the guest can. Without them (serve --mem) the caller
   * must give `staging` itself: the sibling may be inside the share.
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
    // Its path may lead through symlinks: where it ends must not overlap DIR either.
    if ([staging, resolveExisting(staging)].some((s) => within(s, real) || within(real, s))) {
      throw new InvalidArgumentError(`staging directory ${staging} overlaps --images ${dir}`);
    }
    const existed = fs.lstatSync(staging, { throwIfNoEntry: false });
    const notOurs = () => new FailedPreconditionError(`staging directory ${staging} is not a directory of this user`);
    if (existed && !existed.isDirectory()) throw notOurs();
    fs.mkdirSync(staging, { recursive: true, mode: 0o700 });
    const sst = fs.lstatSync(staging);
    if (!sst.isDirectory() || sst.uid !== process.getuid!()) throw notOurs();
    // A directory others could write to may hold what they put there; one we made, or only we write, is ours.
    if (existed && sst.mode & 0o022) throw new FailedPreconditionError(`staging directory ${staging}: mode ${(sst.mode & 0o777).toString(8)}, writable by others; give one only its owner writes`);
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

  /** Makes a staged dump appear in DIR: on disk before and after the rename (ImageDir.commit synced its files). */
  publish(name: string): void {
    fs.renameSync(this.stagingPath(name), this.inDir(name));
    fs.fsyncSync(this.dirFd);
    syncDir(this.staging);
  }

  /** Where the archive file of dump `name` is written before it is published (absent until then). */
  stagingArchivePath(name: string): string {
    return `${this.stagingPath(name)}.tar`;
  }

  /**
   * Makes a staged archive file appear in DIR as `name` (a regular file where
   * other dumps put a directory): on disk before and after the rename.
   */
  publishArchive(name: string): void {
    fs.renameSync(this.stagingArchivePath(name), this.inDir(name));
    fs.fsyncSync(this.dirFd);
    syncDir(this.staging);
  }

  /** Removes a staged archive file that will not be published. */
  discardArchive(name: string): void {
    fs.rmSync(this.stagingArchivePath(name), { force: true });
  }

  /** Removes a staged dump that will not be published. */
  discard(name: string): void {
    this.report(`staged ${name}`, removeImageDir(this.stagingPath(name)));
  }

  /** True while DIR has an entry `name` (of any kind: the guest may have swapped it). */
  present(name: string): boolean {
    return fs.lstatSync(this.inDir(name), { throwIfNoEntry: false }) !== undefined;
  }

  /**
   * Takes DIR/name (a directory, or an archive file) away from the guest
   * (rename: a symlink put there is moved, not followed), then removes it
   * where the guest cannot reach by path; links the guest made to an archive
   * file elsewhere on the share stay, they are its copy.
   * Already gone is fine: the guest may delete its copy itself.
   */
  remove(name: string): void {
    const out = path.join(this.staging, `.released-${checkName(name)}`);
    try {
      fs.renameSync(this.inDir(name), out);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    this.report(name, removeImageDir(out));
  }

  /**
   * Removes what an earlier backend left: image directories in DIR (their
   * names died with it, so nobody can release them) and everything of ours
   * in staging. Returns how many were found.
   */
  removeLeftovers(): number {
    let n = 0;
    for (const name of fs.readdirSync(`/proc/self/fd/${this.dirFd}`)) {
      if (!IMAGE_NAME.test(name)) continue;
      log.info(`image directory ${name}: left by an earlier backend; removing it`);
      this.remove(name);
      n++;
    }
    for (const name of fs.readdirSync(this.staging)) {
      if (!STAGING_LEFTOVER.test(name)) continue;
      this.report(`staged ${name}`, removeImageDir(path.join(this.staging, name)));
      n++;
    }
    return n;
  }

  close(): void {
    if (this.dirFd >= 0) fs.closeSync(this.dirFd);
    this.dirFd = -1;
  }

  private inDir(name: string): string {
    return `/proc/self/fd/${this.dirFd}/${checkName(name)}`;
  }

  /** Says what a removal left, and where: only entries the guest made are ever left. */
  private report(what: string, r: Removal): void {
    if (r.gone) return;
    const names = r.left.map((n) => logSafe(n, 64)).join(', ');
    log.warn(`image directory ${what}: left in ${this.staging}, holding ${r.leftCount} entries that are not regular files (${names}${r.leftCount > r.left.length ? ', ...' : ''}) after ${r.removed} files removed`);
  }
}

/** `p` with the symlinks of its longest existing prefix resolved. */
function resolveExisting(p: string): string {
  const rest: string[] = [];
  for (let at = p; ; at = path.dirname(at)) {
    try {
      return path.join(fs.realpathSync(at), ...rest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || at === '/') throw err;
      rest.unshift(path.basename(at));
    }
  }
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
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
