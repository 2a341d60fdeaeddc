import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { KObject, listForEach } from '../kernel/object.js';
import { dentryName } from './d-path.js';
import { pageCacheEntry } from './page-cache.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from './stat.js';

/** Bounds on what one tmpfs may hold for a dump: entries and bytes of file data. */
const MAX_ENTRIES = 1 << 16;
const MAX_BYTES = 1 << 30;
const MAX_DEPTH = 256;
const PAGE = 4096;

export interface TmpfsEntry {
  /** Relative to the file system's root: "." for the root, "./dev/null" style below it. */
  path: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** Regular files: their bytes (holes read as zeros). */
  data?: Buffer;
  /** Symlinks: the target. */
  target?: string;
  /** Device nodes: major and minor. */
  major?: number;
  minor?: number;
  /** A further name of an inode seen before (a hard link): that first path. */
  linkTo?: string;
}

/** The bytes of a tmpfs file from its page cache; a page swapped out cannot be read from RAM. */
function fileData(inode: KObject, size: number, path: string): Buffer {
  const mapping = inode.member('i_mapping').deref();
  const out = Buffer.alloc(size);
  for (let off = 0; off < size; off += PAGE) {
    const e = pageCacheEntry(mapping, BigInt(off / PAGE));
    if (e === 'value') throw new UnsupportedError(`tmpfs file ${path} has pages swapped out`);
    if (e === 'hole') continue;
    inode.prog.mem.readInto(e, out.subarray(off, Math.min(size, off + PAGE)), `tmpfs file ${path}`);
  }
  return out;
}

/** A tmpfs symlink's target: inline (i_link, up to SHORT_SYMLINK_LEN) or in its first page. */
function symlinkTarget(inode: KObject, path: string): string {
  const size = Number(inode.member('i_size').value());
  if (size <= 0 || size > PAGE) throw new BadDataError(`tmpfs symlink ${path} of ${size} bytes`);
  const link = inode.member('i_link').value();
  if (link !== 0n) return inode.prog.read(link, size, `${path} i_link`).toString('utf8');
  return fileData(inode, size, path).toString('utf8');
}

/**
 * Everything under the root of a tmpfs, as `tar --create` would archive it
 * (CRIU keeps a tmpfs's contents as a tarball): the dentry tree from the
 * superblock's root (d_subdirs/d_child, as 6.1 links children), with each
 * inode's mode, owner, mtime and contents. tmpfs keeps every name in the
 * dcache, so the tree is complete.
 */
export function tmpfsEntries(sb: KObject): TmpfsEntry[] {
  const prog = sb.prog;
  const out: TmpfsEntry[] = [];
  const seen = new Map<bigint, string>();
  let bytes = 0;
  const visit = (dentry: KObject, path: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw new BadDataError(`tmpfs tree deeper than ${MAX_DEPTH} at ${path}`);
    if (out.length >= MAX_ENTRIES) throw new UnsupportedError(`tmpfs holds more than ${MAX_ENTRIES} entries`);
    const inodeAddr = dentry.member('d_inode').value();
    if (inodeAddr === 0n) return; // a negative dentry: a name that does not exist
    const inode = KObject.struct(prog, 'inode', inodeAddr);
    const mode = inode.member('i_mode').num();
    const entry: TmpfsEntry = {
      path,
      mode,
      uid: inode.member('i_uid.val').num(),
      gid: inode.member('i_gid.val').num(),
      mtime: Number(inode.member('i_mtime.tv_sec').value()),
    };
    const first = seen.get(inodeAddr);
    if (first !== undefined && (mode & S_IFMT) !== S_IFDIR) {
      out.push({ ...entry, linkTo: first });
      return;
    }
    seen.set(inodeAddr, path);
    switch (mode & S_IFMT) {
      case S_IFREG: {
        const size = Number(inode.member('i_size').value());
        bytes += size;
        if (size < 0 || bytes > MAX_BYTES) throw new UnsupportedError(`tmpfs holds more than ${MAX_BYTES} bytes of files`);
        entry.data = fileData(inode, size, path);
        break;
      }
      case S_IFLNK:
        entry.target = symlinkTarget(inode, path);
        break;
      case S_IFCHR: case S_IFBLK: {
        const rdev = inode.member('i_rdev').num();
        entry.major = rdev >>> 20;
        entry.minor = rdev & 0xfffff;
        break;
      }
      case S_IFDIR: case S_IFIFO:
        break;
      default:
        throw new UnsupportedError(`tmpfs entry ${path} of mode 0${mode.toString(8)} (a socket?) cannot be archived`);
    }
    out.push(entry);
    if ((mode & S_IFMT) !== S_IFDIR) return;
    const children = [...listForEach(prog, dentry.member('d_subdirs').address, 'dentry', 'd_child', MAX_ENTRIES)];
    for (const child of children) {
      // Unhashed children were removed (d_delete) but are still referenced: not part of the tree.
      if (child.member('d_hash.pprev').value() === 0n) continue;
      visit(child, `${path}/${dentryName(child)}`, depth + 1);
    }
  };
  visit(sb.member('s_root').deref(), '.', 0);
  return out;
}
