import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError, UnsupportedError } from '../../common/errors.js';
import type { TarWriter } from '../../common/tar/index.js';
import { OpaqueDirLister } from './opaque-dirs.js';

/**
 * A container's rw changes as an OCI layer tar: the upper directory of its
 * overlay rootfs, with overlayfs' whiteouts (0/0 character devices) as
 * `.wh.<name>` entries and opaque directories as `.wh..wh..opq`, as
 * containerd's overlay differ writes them (archive/tar.go, the
 * OverlayConvertWhiteout handler).
 */

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** /proc/self/mountinfo's escapes (\040 for a space, and the like). */
function unescape(s: string): string {
  return s.replace(/\\(\d{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * The upper directory of the overlay mounted at `rootfs` (the last mount
 * there), from mountinfo: the shim mounts the rootfs in the node's mount
 * namespace, where this runs too.
 */
export function overlayUpperDir(rootfs: string, mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8')): string {
  let found: { fstype: string; options: string } | undefined;
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    if (unescape(left.split(' ')[4] ?? '') !== rootfs) continue;
    const [fstype, , options] = right.split(' ');
    found = { fstype, options: options ?? '' };
  }
  if (!found) throw new NotFoundError(`no file system is mounted at ${rootfs}: the container's rootfs`);
  if (found.fstype !== 'overlay') throw new UnsupportedError(`the container's rootfs ${rootfs} is ${found.fstype}, not overlay: its rw changes cannot be taken`);
  const upper = found.options.split(',').find((o) => o.startsWith('upperdir='));
  if (!upper) throw new UnsupportedError(`the overlay at ${rootfs} has no upper directory (a read-only rootfs): nothing to take`);
  return unescape(upper.slice('upperdir='.length));
}

/** The one opaque-directory helper of this process (opaque-dirs.ts). */
export const opaqueDirLister = new OpaqueDirLister();

/**
 * The directories under `upper` overlayfs marks opaque, relative. An upper
 * directory with no directory in it has none, and the helper is not asked.
 */
export async function opaqueDirs(upper: string): Promise<Set<string>> {
  const top = await fs.promises.readdir(upper, { withFileTypes: true });
  if (!top.some((d) => d.isDirectory())) return new Set();
  return opaqueDirLister.list(upper);
}

const major = (rdev: number) => Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
const minor = (rdev: number) => Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);

/** Writes the rw layer of the upper directory `upper` into `tar` (entries only: the caller ends the archive). */
export async function writeRootfsDiff(tar: TarWriter, upper: string): Promise<void> {
  const opaque = await opaqueDirs(upper);
  const links = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await fs.promises.readdir(path.join(upper, rel))).sort();
    for (const name of names) {
      const relName = rel ? `${rel}/${name}` : name;
      const abs = path.join(upper, relName);
      const st = await fs.promises.lstat(abs).catch((err: NodeJS.ErrnoException) => {
        // Removed by the running container since the readdir.
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (!st) continue;
      const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isCharacterDevice() && st.rdev === 0) {
        await tar.entry({ ...base, name: `${rel ? `${rel}/` : ''}${WHITEOUT_PREFIX}${name}`, type: 'file', mode: 0o600 });
      } else if (st.isDirectory()) {
        await tar.entry({ ...base, name: relName, type: 'dir' });
        if (opaque.has(relName)) await tar.entry({ ...base, name: `${relName}/${OPAQUE}`, type: 'file', mode: 0o600 });
        await walk(relName);
      } else if (st.isSymbolicLink()) {
        await tar.entry({ ...base, name: relName, type: 'symlink', linkname: await fs.promises.readlink(abs) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(key) : undefined;
        if (first) await tar.entry({ ...base, name: relName, type: 'hardlink', linkname: first });
        else {
          if (st.nlink > 1) links.set(key, relName);
          await tar.file({ ...base, name: relName, size: st.size }, abs);
        }
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await tar.entry({ ...base, name: relName, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: major(st.rdev), devminor: minor(st.rdev) });
      } else if (st.isFIFO()) {
        await tar.entry({ ...base, name: relName, type: 'fifo' });
      }
      // Sockets have no tar form; the process that bound one is in the CRIU images.
    }
  };
  await walk('');
}
