import type { FileHandle } from 'node:fs/promises';
import fs from 'node:fs';
import { InvalidArgumentError } from '../errors.js';

/**
 * A small tar writer (POSIX ustar, with PAX headers for what ustar cannot
 * hold), enough for checkpoint archives: regular files, directories,
 * symlinks, hard links, devices and FIFOs. Ours rather than GNU tar because
 * the rootfs diff turns overlayfs whiteouts into `.wh.` entries, and the
 * archive's parts come from buffers, files and a staging directory at once.
 * Go's archive/tar (containerd, checkpointctl) reads it.
 */

const BLOCK = 512;
const COPY_CHUNK = 1 << 20;

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

const TYPE_FLAG: Record<TarEntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

export interface TarHeader {
  /** Relative, '/'-separated; a directory's without its trailing slash. */
  name: string;
  type: TarEntryType;
  mode: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  /** For 'file' only. */
  size?: number;
  /** The target of a symlink or hard link. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

/** Fits `value` as `width - 1` octal digits and a NUL, or undefined when it does not. */
function octal(value: number, width: number): string | undefined {
  const s = Math.trunc(value).toString(8);
  return s.length < width ? `${s.padStart(width - 1, '0')}\0` : undefined;
}

/** One PAX record: "<len> <key>=<value>\n", its length counting itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + String(bodyLen).length;
  if (String(len).length + bodyLen !== len) len = bodyLen + String(len).length;
  return `${len}${body}`;
}

function checkName(name: string): void {
  if (!name || name.startsWith('/') || name.split('/').includes('..') || name.includes('\0')) {
    throw new InvalidArgumentError(`tar entry name ${JSON.stringify(name)}: must be relative, without .. or NUL`);
  }
}

/** Writes entries to an open file, in order; `end()` writes the two zero blocks that close the archive. */
export class TarWriter {
  private pos = 0;

  constructor(private readonly out: FileHandle) {}

  /** Bytes written so far. */
  get size(): number {
    return this.pos;
  }

  private async write(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.out.write(buf, off, buf.length - off, this.pos + off);
      off += bytesWritten;
    }
    this.pos += buf.length;
  }

  private async pad(size: number): Promise<void> {
    const rest = (BLOCK - (size % BLOCK)) % BLOCK;
    if (rest) await this.write(Buffer.alloc(rest));
  }

  private headerBlock(h: TarHeader, name: string, typeFlag: string, size: number): { block: Buffer; pax: string[] } {
    const block = Buffer.alloc(BLOCK);
    const pax: string[] = [];
    let prefix = '';
    let base = name;
    if (Buffer.byteLength(name) > 100) {
      // ustar splits a long name at a '/' into prefix (155) and name (100); otherwise PAX path.
      const cut = name.lastIndexOf('/', 155);
      if (cut > 0 && Buffer.byteLength(name.slice(0, cut)) <= 155 && Buffer.byteLength(name.slice(cut + 1)) <= 100 && cut + 1 < name.length) {
        prefix = name.slice(0, cut);
        base = name.slice(cut + 1);
      } else {
        pax.push(paxRecord('path', name));
        base = name.slice(0, 100);
      }
    }
    const link = h.linkname ?? '';
    if (Buffer.byteLength(link) > 100) pax.push(paxRecord('linkpath', link));
    const numeric = (key: string, value: number, width: number): string => {
      const o = octal(value, width);
      if (o !== undefined) return o;
      pax.push(paxRecord(key, String(Math.trunc(value))));
      return `${'0'.repeat(width - 1)}\0`;
    };
    block.write(base, 0, 100, 'utf8');
    block.write(octal(h.mode & 0o7777, 8)!, 100, 8, 'ascii');
    block.write(numeric('uid', h.uid ?? 0, 8), 108, 8, 'ascii');
    block.write(numeric('gid', h.gid ?? 0, 8), 116, 8, 'ascii');
    block.write(numeric('size', size, 12), 124, 12, 'ascii');
    block.write(numeric('mtime', h.mtime ?? 0, 12), 136, 12, 'ascii');
    block.write(typeFlag, 156, 1, 'ascii');
    block.write(link.slice(0, 100), 157, 100, 'utf8');
    block.write('ustar\u000000', 257, 8, 'ascii');
    block.write(octal(h.devmajor ?? 0, 8)!, 329, 8, 'ascii');
    block.write(octal(h.devminor ?? 0, 8)!, 337, 8, 'ascii');
    block.write(prefix, 345, 155, 'utf8');
    return { block, pax };
  }

  private async header(h: TarHeader): Promise<void> {
    checkName(h.name);
    const size = h.type === 'file' ? h.size ?? 0 : 0;
    const name = h.type === 'dir' ? `${h.name}/` : h.name;
    const { block, pax } = this.headerBlock(h, name, TYPE_FLAG[h.type], size);
    if (pax.length) {
      const body = Buffer.from(pax.join(''), 'utf8');
      const paxName = `PaxHeaders/${h.name.split('/').pop()!.slice(0, 80)}`;
      const ext = this.headerBlock({ name: paxName, type: 'file', mode: 0o644 }, paxName, 'x', body.length).block;
      await this.write(checksummed(ext));
      await this.write(body);
      await this.pad(body.length);
    }
    await this.write(checksummed(block));
  }

  /** An entry with no data (directory, link, device, FIFO), or an empty file. */
  async entry(h: TarHeader): Promise<void> {
    if (h.type === 'file' && (h.size ?? 0) !== 0) throw new InvalidArgumentError(`tar entry ${h.name}: a file with data needs file() or data()`);
    await this.header({ ...h, size: 0 });
  }

  /** A regular file from a buffer. */
  async data(h: Omit<TarHeader, 'type' | 'size'>, content: Buffer): Promise<void> {
    await this.header({ ...h, type: 'file', size: content.length });
    await this.write(content);
    await this.pad(content.length);
  }

  /**
   * A regular file copied from `source`, exactly `size` bytes (its size when
   * looked at): a file that grows meanwhile is cut there, one that shrinks is
   * padded with zeros, so the archive stays well-formed either way.
   */
  async file(h: Omit<TarHeader, 'type'> & { size: number }, source: string): Promise<void> {
    await this.header({ ...h, type: 'file' });
    const fd = await fs.promises.open(source, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(h.size, 1)));
      let done = 0;
      while (done < h.size) {
        const want = Math.min(buf.length, h.size - done);
        const { bytesRead } = await fd.read(buf, 0, want, done);
        if (bytesRead === 0) {
          await this.write(Buffer.alloc(h.size - done));
          done = h.size;
          break;
        }
        await this.write(buf.subarray(0, bytesRead));
        done += bytesRead;
      }
    } finally {
      await fd.close();
    }
    await this.pad(h.size);
  }

  /** The end-of-archive marker. */
  async end(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
  }
}

/** The header with its checksum filled in (the sum of its bytes, the checksum field counted as spaces). */
function checksummed(block: Buffer): Buffer {
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return block;
}
