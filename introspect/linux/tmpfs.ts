import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { KObject, hlistForEach, listForEach } from '../kernel/object.js';
import { dentryName } from './d-path.js';
import { pageCacheRuns, runPages } from './page-cache.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, inodeMtimeSec } from './stat.js';

/** Bounds on what one tmpfs may hold for a dump: entries, and bytes of file data in RAM. */
const MAX_ENTRIES = 1 << 16;
const MAX_BYTES = 1 << 30;
const MAX_DEPTH = 256;
const PAGE = 4096;
/** A node holds at least one present entry, so a real tree has fewer nodes than pages, plus a path of them per file. */
const MAX_XA_NODES = MAX_BYTES / PAGE + 4 * MAX_ENTRIES;
/** Holes a tmpfs's files may have in all, unless the caller says otherwise: they are written out as zeros. */
export const DEFAULT_MAX_HOLE_BYTES = 1 << 30;

export interface TmpfsOptions {
  /** Bytes of holes (sparse parts) of all files together; more is an UnsupportedError. */
  maxHoleBytes?: number;
}

/** A regular file's contents: the pages its page cache holds; every other byte below size is a hole. */
export interface TmpfsFile {
  size: number;
  /** Page index and guest-physical address, ascending. */
  pages: { index: number; phys: bigint }[];
  /** The bytes in order: a Buffer of data (at most a page), or a number of zero bytes (a hole). */
  chunks(): Generator<Buffer | number>;
}

export interface TmpfsEntry {
  /** Relative to the file system's root: "." for the root, "./dev/null" style below it. */
  path: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** Regular files: their contents. */
  file?: TmpfsFile;
  /** Symlinks: the target. */
  target?: string;
  /** Device nodes: major and minor. */
  major?: number;
  minor?: number;
  /** A further name of an inode seen before (a hard link): that first path. */
  linkTo?: string;
}

/**
 * A tmpfs file's pages from its page cache, walking only the entries that
 * exist; a page swapped out cannot be read from RAM. `pageBudget` is how
 * many pages may still be taken, `budget` how many xa_nodes visited.
 */
function filePages(inode: KObject, size: number, path: string, pageBudget: number, budget: { nodes: number }): TmpfsFile['pages'] {
  const mapping = inode.member('i_mapping').deref();
  const end = BigInt(Math.ceil(size / PAGE));
  const pages: TmpfsFile['pages'] = [];
  for (const run of pageCacheRuns(mapping, end, budget)) {
    if (run.value) throw new UnsupportedError(`tmpfs file ${path} has pages swapped out`);
    for (const { index, phys } of runPages(mapping, run, end)) {
      if (pages.length >= pageBudget) throw new UnsupportedError(`tmpfs holds more than ${MAX_BYTES} bytes of files`);
      pages.push({ index: Number(index), phys });
    }
  }
  return pages;
}

function tmpfsFile(inode: KObject, size: number, pages: TmpfsFile['pages'], path: string): TmpfsFile {
  const mem = inode.prog.mem;
  return {
    size,
    pages,
    *chunks() {
      let at = 0;
      for (const { index, phys } of pages) {
        const off = index * PAGE;
        if (off > at) yield off - at;
        const page = Buffer.alloc(Math.min(PAGE, size - off));
        mem.readInto(phys, page, `tmpfs file ${path}`);
        yield page;
        at = off + page.length;
      }
      if (size > at) yield size - at;
    },
  };
}

/** The first `size` bytes of a file, holes as zeros; for the small contents of a symlink. */
function smallFileData(file: TmpfsFile): Buffer {
  return Buffer.concat([...file.chunks()].map((c) => (typeof c === 'number' ? Buffer.alloc(c) : c)));
}

/** A tmpfs symlink's target: inline (i_link, up to SHORT_SYMLINK_LEN) or in its first page. */
function symlinkTarget(inode: KObject, path: string): string {
  const size = Number(inode.member('i_size').value());
  if (size <= 0 || size > PAGE) throw new BadDataError(`tmpfs symlink ${path} of ${size} bytes`);
  const link = inode.member('i_link').value();
  if (link !== 0n) return inode.prog.read(link, size, `${path} i_link`).toString('utf8');
  return smallFileData(tmpfsFile(inode, size, filePages(inode, size, path, 1, { nodes: MAX_XA_NODES }), path)).toString('utf8');
}

/**
 * A directory dentry's children: the list d_subdirs through d_child in 6.1,
 * the hlist d_children through d_sib since 6.8 ("dcache: convert
 * d_subdirs/d_child to hlist"), whichever this kernel's BTF has.
 */
function dentryChildren(dentry: KObject): Iterable<KObject> {
  if (dentry.has('d_children')) return hlistForEach(dentry.prog, dentry.member('d_children').address, 'dentry', 'd_sib', MAX_ENTRIES);
  return listForEach(dentry.prog, dentry.member('d_subdirs').address, 'dentry', 'd_child', MAX_ENTRIES);
}

/**
 * Everything under the root of a tmpfs, as `tar --create` would archive it
 * (CRIU keeps a tmpfs's contents as a tarball): the dentry tree from the
 * superblock's root (dentryChildren), with each
 * inode's mode, owner, mtime and contents. tmpfs keeps every name in the
 * dcache, so the tree is complete.
 */
export function tmpfsEntries(sb: KObject, opts: TmpfsOptions = {}): TmpfsEntry[] {
  const maxHoles = opts.maxHoleBytes ?? DEFAULT_MAX_HOLE_BYTES;
  const prog = sb.prog;
  const out: TmpfsEntry[] = [];
  const seen = new Map<bigint, string>();
  let pagesLeft = MAX_BYTES / PAGE;
  const budget = { nodes: MAX_XA_NODES };
  let holes = 0;
  const visit = (dentry: KObject, path: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw new BadDataError(`tmpfs tree deeper than ${MAX_DEPTH} at ${path}`);
    if (out.length >= MAX_ENTRIES) throw new UnsupportedError(`tmpfs holds more than ${MAX_ENTRIES} entries`);
    const inodeAddr = dentry.member('d_inode').value();
    if (inodeAddr === 0n) return; // a negative dentry: a name that does not exist
    const inode = KObject.struct(prog, 'inode', inodeAddr);
    const mode = inode.member('i_mode').num();
    // GNU tar skips a socket ("socket ignored"), so CRIU's tarball has none: restore binds the socket anew.
    if ((mode & S_IFMT) === S_IFSOCK) return;
    const entry: TmpfsEntry = {
      path,
      mode,
      uid: inode.member('i_uid.val').num(),
      gid: inode.member('i_gid.val').num(),
      mtime: Number(inodeMtimeSec(inode)),
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
        // Checked before the page cache is read: no file this size could fit.
        if (size < 0 || size > MAX_BYTES + maxHoles - holes) throw new UnsupportedError(`tmpfs file ${path} of ${size} bytes is more than the dump takes`);
        const pages = filePages(inode, size, path, pagesLeft, budget);
        pagesLeft -= pages.length;
        holes += Math.max(0, size - pages.length * PAGE);
        if (holes > maxHoles) throw new UnsupportedError(`tmpfs files have more than ${maxHoles} bytes of holes`);
        entry.file = tmpfsFile(inode, size, pages, path);
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
        throw new UnsupportedError(`tmpfs entry ${path} of mode 0${mode.toString(8)} cannot be archived`);
    }
    out.push(entry);
    if ((mode & S_IFMT) !== S_IFDIR) return;
    const children = [...dentryChildren(dentry)];
    for (const child of children) {
      // Unhashed children were removed (d_delete) but are still referenced: not part of the tree.
      if (child.member('d_hash.pprev').value() === 0n) continue;
      visit(child, `${path}/${dentryName(child)}`, depth + 1);
    }
  };
  visit(sb.member('s_root').deref(), '.', 0);
  return out;
}
