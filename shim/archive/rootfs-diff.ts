import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { ArchiveRefusedError, errorMessage } from '../../common/errors.js';
import { ByteSource, TarReader, entryComponents, type TarEntry } from '../../common/tar/index.js';

/**
 * Applies an archive's rootfs-diff.tar (the checkpointed container's rw
 * layer: gzip from containerd despite the name, plain from CRI-O and
 * Podman) onto the new container's rootfs before runc restores into it.
 * Our own walk, not GNU tar, which follows a symlink already in the rootfs
 * when it is an intermediate component of a later entry: here each parent
 * is lstat'ed and a symlink on the way is refused, the final component is
 * created exclusively without following links, and nothing the diff names
 * (a hardlink's target too) leaves the rootfs. The rootfs is not in use
 * while this runs (the container exists only after runc restore), so no
 * one swaps a component under the walk.
 * OCI whiteouts: `.wh.NAME` removes NAME, `.wh..wh..opq` empties its
 * directory of what was there before this diff.
 */

export interface DiffLimits {
  maxEntries: number;
  maxBytes: number;
}

export const DEFAULT_DIFF_LIMITS: DiffLimits = { maxEntries: 200_000, maxBytes: 32 * 1024 ** 3 };

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

export interface DiffResult {
  entries: number;
  bytes: number;
}

function lstat(p: string): fs.Stats | undefined {
  return fs.lstatSync(p, { throwIfNoEntry: false });
}

/** A tar stream, gunzipped when it starts with gzip's magic. */
function openDiff(file: string): Readable {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  const magic = Buffer.alloc(2);
  const n = fs.readSync(fd, magic, 0, 2, 0);
  const stream = fs.createReadStream('', { fd, start: 0 });
  if (n === 2 && magic[0] === 0x1f && magic[1] === 0x8b) {
    const gunzip = zlib.createGunzip();
    stream.on('error', (e) => gunzip.destroy(e));
    return stream.pipe(gunzip);
  }
  return stream;
}

class DiffApplier {
  /** Paths (relative) this diff made: an opaque whiteout keeps them. */
  private readonly made = new Set<string>();
  readonly result: DiffResult = { entries: 0, bytes: 0 };

  constructor(private readonly rootfs: string, private readonly limits: DiffLimits) {}

  /** The directory that holds `parts`' last component, made (0755) where missing; a symlink or non-directory on the way is refused. */
  private parent(parts: string[], entry: string, create: boolean): string {
    let dir = this.rootfs;
    for (const [i, p] of parts.slice(0, -1).entries()) {
      dir = path.join(dir, p);
      const st = lstat(dir);
      if (!st) {
        if (!create) throw new ArchiveRefusedError(entry, `${parts.slice(0, i + 1).join('/')} does not exist in the rootfs`);
        fs.mkdirSync(dir, { mode: 0o755 });
        this.made.add(parts.slice(0, i + 1).join('/'));
      } else if (st.isSymbolicLink()) {
        throw new ArchiveRefusedError(entry, `goes through ${parts.slice(0, i + 1).join('/')}, a symlink in the rootfs: it would write outside the rootfs`);
      } else if (!st.isDirectory()) {
        throw new ArchiveRefusedError(entry, `${parts.slice(0, i + 1).join('/')} is not a directory in the rootfs`);
      }
    }
    return dir;
  }

  /** Removes what is at `target` (a directory with its contents, never following a link). */
  private clear(target: string, keepDir: boolean): void {
    const st = lstat(target);
    if (!st) return;
    if (st.isDirectory()) {
      if (keepDir) return;
      fs.rmSync(target, { recursive: true, force: true });
    } else {
      fs.unlinkSync(target);
    }
  }

  async apply(e: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    if (++this.result.entries > this.limits.maxEntries) throw new ArchiveRefusedError(e.name, `rootfs diff over ${this.limits.maxEntries} entries`);
    const parts = entryComponents(e.name);
    if (parts.length === 0) return;
    const rel = parts.join('/');
    const base = parts[parts.length - 1];
    const dir = this.parent(parts, e.name, true);
    const target = path.join(dir, base);
    if (base.startsWith(WHITEOUT)) return this.whiteout(parts, dir, base, e);
    switch (e.kind) {
      case 'directory': {
        this.clear(target, true);
        if (!lstat(target)) fs.mkdirSync(target, { mode: 0o700 });
        fs.lchownSync(target, e.uid, e.gid);
        fs.chmodSync(target, e.mode);
        break;
      }
      case 'file': {
        this.result.bytes += e.size;
        if (this.result.bytes > this.limits.maxBytes) throw new ArchiveRefusedError(e.name, `rootfs diff over ${this.limits.maxBytes} bytes`);
        this.clear(target, false);
        const fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body) {
            let off = 0;
            while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
          }
          fs.fchownSync(fd, e.uid, e.gid);
          fs.fchmodSync(fd, e.mode);
          fs.futimesSync(fd, e.mtime, e.mtime);
        } finally {
          fs.closeSync(fd);
        }
        break;
      }
      case 'symlink': {
        // Made, never followed: later entries through it are refused by parent().
        this.clear(target, false);
        fs.symlinkSync(e.linkname, target);
        fs.lchownSync(target, e.uid, e.gid);
        break;
      }
      case 'hardlink': {
        let linkParts: string[];
        try {
          linkParts = entryComponents(e.linkname);
        } catch (err) {
          throw err instanceof ArchiveRefusedError ? new ArchiveRefusedError(e.name, `hardlink to ${JSON.stringify(e.linkname)}: ${err.reason}`) : err;
        }
        if (linkParts.length === 0) throw new ArchiveRefusedError(e.name, 'hardlink to the rootfs itself');
        const from = path.join(this.parent(linkParts, e.name, false), linkParts[linkParts.length - 1]);
        const st = lstat(from);
        if (!st?.isFile()) throw new ArchiveRefusedError(e.name, `hardlink to ${JSON.stringify(e.linkname)}, which is not a regular file in the rootfs`);
        this.clear(target, false);
        fs.linkSync(from, target);
        break;
      }
      default:
        throw new ArchiveRefusedError(e.name, `${e.kind === 'fifo' ? 'FIFO' : `${e.kind} device`}: not restored into a rootfs`);
    }
    this.made.add(rel);
  }

  private whiteout(parts: string[], dir: string, base: string, e: TarEntry): void {
    const parentRel = parts.slice(0, -1).join('/');
    if (base === OPAQUE) {
      for (const name of fs.readdirSync(dir)) {
        const rel = parentRel ? `${parentRel}/${name}` : name;
        if (!this.made.has(rel)) this.clear(path.join(dir, name), false);
      }
      return;
    }
    const name = base.slice(WHITEOUT.length);
    if (!name || name === '.' || name === '..' || name.includes('/')) throw new ArchiveRefusedError(e.name, 'whiteout of no file');
    this.clear(path.join(dir, name), false);
  }
}

/** Applies `file` (a tar, or a gzip'd one) onto `rootfs`; ArchiveRefusedError naming the entry for anything refused. */
export async function applyRootfsDiff(file: string, rootfs: string, limits: DiffLimits = DEFAULT_DIFF_LIMITS): Promise<DiffResult> {
  if (!lstat(rootfs)?.isDirectory()) throw new ArchiveRefusedError('rootfs-diff.tar', `${rootfs} is not a directory`);
  const stream = openDiff(file);
  const src = new ByteSource(stream);
  const applier = new DiffApplier(rootfs, limits);
  try {
    const tar = new TarReader(src, 'rootfs-diff.tar');
    for (let e = await tar.next(limits.maxEntries * 2); e; e = await tar.next(limits.maxEntries * 2)) {
      await applier.apply(e, tar.body());
    }
    return applier.result;
  } catch (err) {
    if (err instanceof ArchiveRefusedError) {
      throw new ArchiveRefusedError(`rootfs-diff.tar: ${err.entry}`, err.reason);
    }
    throw new ArchiveRefusedError('rootfs-diff.tar', errorMessage(err));
  } finally {
    await src.close().catch(() => undefined);
    stream.destroy();
  }
}
