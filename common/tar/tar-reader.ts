import type { Readable } from 'node:stream';
import { ArchiveRefusedError } from '../errors.js';

/**
 * A tar reader for archives we do not trust: ustar, GNU long names (L/K)
 * and pax headers (x, g), with every size bounded before it is read. Our
 * own, not GNU tar or node-tar: each entry is judged (kind, name, size)
 * before a byte of it is written anywhere, by the caller's policy, and a
 * refusal names the entry.
 */

const BLOCK = 512;
/** PATH_MAX: a longer name (GNU L/K, pax path) is refused before it is read. */
export const MAX_NAME = 4096;
/** A pax header's records (names, times, xattrs we ignore). */
export const MAX_PAX = 64 * 1024;

export type EntryKind = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';

const KINDS: Record<string, EntryKind> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'directory', '6': 'fifo',
};

export interface TarEntry {
  /** The name as the archive gives it (pax, GNU long name, or ustar prefix/name). */
  name: string;
  kind: EntryKind;
  /** Symlink or hardlink target, as the archive gives it. */
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  size: number;
}

/** Pulls exact byte counts out of a stream (a file, a gunzip). */
export class ByteSource {
  private readonly it: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(stream: Readable) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n && !this.done) {
      const next = await this.it.next();
      if (next.done) this.done = true;
      else this.buf = this.buf.length ? Buffer.concat([this.buf, next.value]) : next.value;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** The next n bytes as the stream gives them (an entry's body), without copying; fewer only at the end. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0) {
        if (this.done) return;
        const next = await this.it.next();
        if (next.done) {
          this.done = true;
          return;
        }
        this.buf = next.value;
      }
      const take = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(take.length);
      left -= take.length;
      yield take;
    }
  }

  /** Stops the underlying stream (a refused archive is not read to its end). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

/** An octal field, or GNU base-256 (high bit set) for sizes past 8 GiB. */
function numeric(b: Buffer, what: string, at: string): number {
  if (b[0] & 0x80) {
    if (b[0] !== 0x80) throw new ArchiveRefusedError(at, `negative or huge base-256 ${what}`);
    let v = 0;
    for (const byte of b.subarray(1)) v = v * 256 + byte;
    if (!Number.isSafeInteger(v)) throw new ArchiveRefusedError(at, `${what} too large`);
    return v;
  }
  const text = cString(b).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new ArchiveRefusedError(at, `${what} is not octal: ${JSON.stringify(text)}`);
  const v = parseInt(text, 8);
  if (!Number.isSafeInteger(v)) throw new ArchiveRefusedError(at, `${what} too large`);
  return v;
}

function checksumOk(h: Buffer): boolean {
  const stored = parseInt(cString(h.subarray(148, 156)).trim(), 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

/** "LEN key=value\n" records; LEN counts the whole record. */
function paxRecords(data: Buffer, at: string): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    const len = space < 0 ? NaN : Number(data.subarray(pos, space).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= space - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new ArchiveRefusedError(at, `malformed pax record at byte ${pos}`);
    }
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq <= 0) throw new ArchiveRefusedError(at, `malformed pax record at byte ${pos}`);
    out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

/**
 * The entries of a tar stream, each with its body to read through `body`
 * before the next is asked for (an unread body is skipped). Ends at the
 * two zero blocks (or one, then the end); a cut-off archive is refused.
 */
export class TarReader {
  private pendingBody = 0;
  private globalPax = new Map<string, string>();
  private count = 0;

  constructor(private readonly src: ByteSource, private readonly label: string) {}

  /** The current entry's body, in chunks. */
  async *body(): AsyncGenerator<Buffer> {
    const n = this.pendingBody;
    let read = 0;
    for await (const c of this.src.chunks(n)) {
      read += c.length;
      this.pendingBody -= c.length;
      yield c;
    }
    if (read < n) throw new ArchiveRefusedError(this.label, 'archive ends inside an entry');
  }

  private async skipBody(): Promise<void> {
    for await (const _ of this.body()) { /* skipped */ }
    await this.padding();
  }

  private bodySize = 0;

  private async padding(): Promise<void> {
    const pad = (BLOCK - (this.bodySize % BLOCK)) % BLOCK;
    if (pad && (await this.src.read(pad)).length < pad) throw new ArchiveRefusedError(this.label, 'archive ends inside an entry');
    this.bodySize = 0;
  }

  private async readMeta(size: number, max: number, what: string, at: string): Promise<Buffer> {
    if (size > max) throw new ArchiveRefusedError(at, `${what} of ${size} bytes (at most ${max})`);
    const data = await this.src.read(size);
    if (data.length < size) throw new ArchiveRefusedError(this.label, 'archive ends inside an entry');
    this.bodySize = size;
    await this.padding();
    return data;
  }

  /** The next entry, or undefined at the end; `maxEntries` bounds every header read, pax and long names included. */
  async next(maxEntries: number): Promise<TarEntry | undefined> {
    if (this.pendingBody > 0 || this.bodySize > 0) await this.skipBody();
    let pax = new Map<string, string>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const h = await this.src.read(BLOCK);
      if (h.length === 0) throw new ArchiveRefusedError(this.label, 'archive ends without its end-of-archive blocks');
      if (h.length < BLOCK) throw new ArchiveRefusedError(this.label, 'archive ends inside a header');
      if (h.every((b) => b === 0)) return undefined;
      if (++this.count > maxEntries) throw new ArchiveRefusedError(this.label, `more than ${maxEntries} entries`);
      const rawName = cString(h.subarray(0, 100));
      const at = rawName || `header ${this.count}`;
      // Not named by its bytes: a file that is no tar at all (any file a caller names) is not echoed back.
      if (!checksumOk(h)) throw new ArchiveRefusedError(`${this.label} header ${this.count}`, 'header checksum mismatch (not a tar archive, or corrupt)');
      const type = String.fromCharCode(h[156]);
      const size = numeric(h.subarray(124, 136), 'size', at);
      if (type === 'x' || type === 'g') {
        const records = paxRecords(await this.readMeta(size, MAX_PAX, 'pax header', at), at);
        if (type === 'g') for (const [k, v] of records) this.globalPax.set(k, v);
        else pax = records;
        continue;
      }
      if (type === 'L' || type === 'K') {
        const text = cString(await this.readMeta(size, MAX_NAME, 'GNU long name', at));
        if (type === 'L') longName = text;
        else longLink = text;
        continue;
      }
      const kind = KINDS[type];
      const all = new Map([...this.globalPax, ...pax]);
      const magic = h.subarray(257, 263).toString('latin1');
      const prefix = magic === 'ustar\0' ? cString(h.subarray(345, 500)) : '';
      const name = all.get('path') ?? longName ?? (prefix ? `${prefix}/${rawName}` : rawName);
      if (!kind) throw new ArchiveRefusedError(name, `unsupported entry type ${JSON.stringify(type)}`);
      if (name.includes('\0')) throw new ArchiveRefusedError(JSON.stringify(name), 'NUL in the name');
      const paxSize = all.get('size');
      const entrySize = paxSize !== undefined ? Number(paxSize) : size;
      if (!Number.isSafeInteger(entrySize) || entrySize < 0) throw new ArchiveRefusedError(name, `bad size ${JSON.stringify(paxSize)}`);
      const entry: TarEntry = {
        name,
        kind,
        linkname: all.get('linkpath') ?? longLink ?? cString(h.subarray(157, 257)),
        mode: numeric(h.subarray(100, 108), 'mode', name) & 0o7777,
        uid: all.has('uid') ? Number(all.get('uid')) : numeric(h.subarray(108, 116), 'uid', name),
        gid: all.has('gid') ? Number(all.get('gid')) : numeric(h.subarray(116, 124), 'gid', name),
        mtime: all.has('mtime') ? Math.floor(Number(all.get('mtime'))) : numeric(h.subarray(136, 148), 'mtime', name),
        // Links, devices, directories and FIFOs carry no body whatever the size field says (POSIX).
        size: kind === 'file' ? entrySize : 0,
      };
      for (const id of [entry.uid, entry.gid, entry.mtime]) {
        if (!Number.isSafeInteger(id) || id < 0) throw new ArchiveRefusedError(name, 'bad uid, gid or mtime');
      }
      this.pendingBody = entry.size;
      this.bodySize = entry.size;
      return entry;
    }
  }
}
