import zlib from 'node:zlib';
import { Header, Pax } from 'tar';
import { TmpfsEntry } from '../linux/tmpfs.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../linux/stat.js';

const BLOCK = 512;
const TYPES: Record<number, 'File' | 'Directory' | 'SymbolicLink' | 'CharacterDevice' | 'BlockDevice' | 'FIFO'> = {
  [S_IFREG]: 'File', [S_IFDIR]: 'Directory', [S_IFLNK]: 'SymbolicLink', [S_IFCHR]: 'CharacterDevice', [S_IFBLK]: 'BlockDevice', [S_IFIFO]: 'FIFO',
};

/**
 * tmpfs-dev-N.tar.gz.img: a tmpfs's contents as the gzipped tar CRIU makes
 * with `tar --create --gzip --numeric-owner --preserve-permissions` and
 * unpacks on restore. Headers come from node-tar (POSIX ustar, with a pax
 * header for long names).
 */
export function tmpfsTarball(entries: TmpfsEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const dir = (e.mode & S_IFMT) === S_IFDIR;
    const fields = {
      path: dir ? `${e.path}/` : e.path,
      mode: e.mode & 0o7777,
      uid: e.uid,
      gid: e.gid,
      mtime: new Date(e.mtime * 1000),
      size: e.data?.length ?? 0,
      type: e.linkTo !== undefined ? 'Link' as const : TYPES[e.mode & S_IFMT],
      linkpath: e.linkTo ?? e.target,
      devmaj: e.major,
      devmin: e.minor,
    };
    const header = new Header(fields);
    const block = Buffer.alloc(BLOCK);
    header.encode(block, 0);
    if (header.needPax) parts.push(new Pax({ path: fields.path, linkpath: fields.linkpath, mtime: fields.mtime }).encode());
    parts.push(block);
    if (e.data && e.linkTo === undefined) {
      parts.push(e.data, Buffer.alloc((BLOCK - (e.data.length % BLOCK)) % BLOCK));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return zlib.gzipSync(Buffer.concat(parts));
}
