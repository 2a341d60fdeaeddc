import zlib from 'node:zlib';
import { Header, Pax } from 'tar';
import { TmpfsEntry } from '../linux/tmpfs.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../linux/stat.js';

const BLOCK = 512;
/** Tar bytes gzipped at a time: what the writer holds uncompressed, however large the files. */
const CHUNK = 1 << 20;
const TYPES: Record<number, 'File' | 'Directory' | 'SymbolicLink' | 'CharacterDevice' | 'BlockDevice' | 'FIFO'> = {
  [S_IFREG]: 'File', [S_IFDIR]: 'Directory', [S_IFLNK]: 'SymbolicLink', [S_IFCHR]: 'CharacterDevice', [S_IFBLK]: 'BlockDevice', [S_IFIFO]: 'FIFO',
};

/**
 * Gzip of a byte stream as a series of gzip members, one per CHUNK of
 * input: a valid .gz (RFC 1952 2.2; gzip and GNU tar read on across
 * members), made synchronously without holding more than a chunk.
 */
class GzipMembers {
  private readonly members: Buffer[] = [];
  private readonly staging = Buffer.alloc(CHUNK);
  private used = 0;
  /** A whole chunk of zeros compresses the same every time. */
  private zeroMember?: Buffer;

  write(bytes: Buffer): void {
    for (let done = 0; done < bytes.length;) {
      const n = bytes.copy(this.staging, this.used, done);
      this.used += n;
      done += n;
      if (this.used === CHUNK) this.flush();
    }
  }

  zeros(count: number): void {
    while (count > 0) {
      if (this.used === 0 && count >= CHUNK) {
        this.zeroMember ??= zlib.gzipSync(Buffer.alloc(CHUNK));
        this.members.push(this.zeroMember);
        count -= CHUNK;
        continue;
      }
      const n = Math.min(count, CHUNK - this.used);
      this.staging.fill(0, this.used, this.used + n);
      this.used += n;
      count -= n;
      if (this.used === CHUNK) this.flush();
    }
  }

  end(): Buffer {
    this.flush();
    return Buffer.concat(this.members);
  }

  private flush(): void {
    if (this.used === 0) return;
    this.members.push(zlib.gzipSync(this.staging.subarray(0, this.used)));
    this.used = 0;
  }
}

/**
 * tmpfs-dev-N.tar.gz.img: a tmpfs's contents as the gzipped tar CRIU makes
 * with `tar --create --gzip --numeric-owner --preserve-permissions` and
 * unpacks on restore. Headers come from node-tar (POSIX ustar, with a pax
 * header for long names). File data streams from guest memory a page at a
 * time and holes as zeros (as GNU tar without --sparse stores them), so
 * nothing is held at a file's size; tmpfsEntries bounds the holes.
 */
export function tmpfsTarball(entries: TmpfsEntry[]): Buffer {
  const out = new GzipMembers();
  for (const e of entries) {
    const dir = (e.mode & S_IFMT) === S_IFDIR;
    const file = e.linkTo === undefined ? e.file : undefined;
    const fields = {
      path: dir ? `${e.path}/` : e.path,
      mode: e.mode & 0o7777,
      uid: e.uid,
      gid: e.gid,
      mtime: new Date(e.mtime * 1000),
      size: file?.size ?? 0,
      type: e.linkTo !== undefined ? 'Link' as const : TYPES[e.mode & S_IFMT],
      linkpath: e.linkTo ?? e.target,
      devmaj: e.major,
      devmin: e.minor,
    };
    const header = new Header(fields);
    const block = Buffer.alloc(BLOCK);
    header.encode(block, 0);
    if (header.needPax) out.write(new Pax({ path: fields.path, linkpath: fields.linkpath, mtime: fields.mtime }).encode());
    out.write(block);
    if (!file) continue;
    for (const chunk of file.chunks()) {
      if (typeof chunk === 'number') out.zeros(chunk);
      else out.write(chunk);
    }
    out.zeros((BLOCK - (file.size % BLOCK)) % BLOCK);
  }
  out.zeros(BLOCK * 2);
  return out.end();
}
