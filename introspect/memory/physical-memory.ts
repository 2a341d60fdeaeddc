import fs from 'node:fs';
import { BadDataError, InvalidArgumentError, OvmError } from '../../common/errors.js';

/** Guest-physical range [gpa, gpa+size) stored at fileOffset in a RAM file. */
export interface MemorySegment {
  gpa: bigint;
  size: bigint;
  fileOffset: bigint;
}

/** A guest-physical address that no segment holds, or a read that runs off one. */
export class PhysicalFaultError extends OvmError {
  override readonly code = 'PHYSICAL_FAULT';
  constructor(readonly address: bigint, readonly what: string, detail: string) {
    super(`${what} at guest-physical 0x${address.toString(16)}: ${detail}`);
  }
}

/** Guest RAM by guest-physical address. Reads are synchronous across the introspection layer. */
export interface PhysicalMemory {
  readonly segments: readonly MemorySegment[];
  /** `what` names what is being read, for the error message. */
  read(gpa: bigint, length: number, what?: string): Buffer;
  readInto(gpa: bigint, buf: Buffer, what?: string): void;
  close(): void;
}

/** Largest single read: callers stream bigger ranges. */
export const MAX_READ = 64 << 20;

/** Guest RAM in a QEMU memory-backend file (share=on), read with pread. */
export class FileMemory implements PhysicalMemory {
  readonly segments: readonly MemorySegment[];
  private fd: number;

  constructor(readonly path: string, segments: readonly MemorySegment[]) {
    this.fd = fs.openSync(path, 'r');
    try {
      const size = BigInt(fs.fstatSync(this.fd).size);
      this.segments = checkSegments(segments, size, path);
    } catch (err) {
      fs.closeSync(this.fd);
      throw err;
    }
  }

  read(gpa: bigint, length: number, what = 'memory'): Buffer {
    const buf = Buffer.allocUnsafe(checkLength(length));
    this.readInto(gpa, buf, what);
    return buf;
  }

  readInto(gpa: bigint, buf: Buffer, what = 'memory'): void {
    checkLength(buf.length);
    const seg = this.segments.find((s) => gpa >= s.gpa && gpa < s.gpa + s.size);
    if (!seg) throw new PhysicalFaultError(gpa, what, 'not guest RAM');
    if (gpa + BigInt(buf.length) > seg.gpa + seg.size) {
      throw new PhysicalFaultError(gpa, what, `${buf.length} bytes run past the RAM range ending at 0x${(seg.gpa + seg.size).toString(16)}`);
    }
    const pos = Number(seg.fileOffset + (gpa - seg.gpa));
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(this.fd, buf, done, buf.length - done, pos + done);
      if (n === 0) throw new PhysicalFaultError(gpa, what, `short read of ${this.path} at offset ${pos + done}`);
      done += n;
    }
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function checkLength(length: number): number {
  if (!Number.isInteger(length) || length < 0 || length > MAX_READ) {
    throw new InvalidArgumentError(`read of ${length} bytes: give 0 to ${MAX_READ}`);
  }
  return length;
}

function checkSegments(segments: readonly MemorySegment[], fileSize: bigint, path: string): MemorySegment[] {
  const sorted = [...segments].sort((a, b) => (a.gpa < b.gpa ? -1 : a.gpa > b.gpa ? 1 : 0));
  sorted.forEach((s, i) => {
    if (s.size <= 0n || s.gpa < 0n || s.fileOffset < 0n) throw new InvalidArgumentError(`RAM segment at 0x${s.gpa.toString(16)} is empty or negative`);
    if (s.fileOffset + s.size > fileSize) {
      throw new InvalidArgumentError(`RAM segment at 0x${s.gpa.toString(16)} ends past the end of ${path} (${fileSize} bytes)`);
    }
    if (i > 0 && sorted[i - 1].gpa + sorted[i - 1].size > s.gpa) throw new InvalidArgumentError(`RAM segments overlap at 0x${s.gpa.toString(16)}`);
  });
  return sorted;
}

const FOUR_GIB = 0x1_0000_0000n;

/**
 * QEMU q35's RAM split (hw/i386/pc_q35.c pc_q35_init): RAM below the PCI hole
 * at gpa 0 and file offset 0, the rest at 4 GiB and file offset below_4g.
 */
export function q35Layout(ramSize: bigint, maxRamBelow4g?: bigint): MemorySegment[] {
  let lowmem = ramSize >= 0xb000_0000n ? 0x8000_0000n : 0xb000_0000n;
  if (maxRamBelow4g !== undefined && maxRamBelow4g < lowmem) lowmem = maxRamBelow4g;
  const below = ramSize < lowmem ? ramSize : lowmem;
  const segments = [{ gpa: 0n, size: below, fileOffset: 0n }];
  if (ramSize > below) segments.push({ gpa: FOUR_GIB, size: ramSize - below, fileOffset: below });
  return segments;
}

const MTREE_LINE = /^\s*([0-9a-f]{1,16})-([0-9a-f]{1,16}) \(prio -?\d+, (\w+)\): (\S+)(?: @([0-9a-f]{1,16}))?/;

/**
 * The RAM layout from QEMU's `info mtree -f`: the first flat view's `ram`
 * ranges of the RAM block, merged where contiguous in gpa and file offset.
 */
export function layoutFromMtree(text: string, ramBlock: string): MemorySegment[] {
  const segments: MemorySegment[] = [];
  let inView = false;
  for (const raw of text.split(/\r?\n/)) {
    if (/^FlatView #/.test(raw)) {
      if (segments.length) break;
      inView = true;
      continue;
    }
    const m = inView ? MTREE_LINE.exec(raw) : null;
    if (!m || m[3] !== 'ram' || m[4] !== ramBlock) continue;
    const start = BigInt('0x' + m[1]);
    const end = BigInt('0x' + m[2]);
    if (end < start) throw new BadDataError(`info mtree: range ${m[1]}-${m[2]} ends before it starts`);
    const seg = { gpa: start, size: end - start + 1n, fileOffset: m[5] ? BigInt('0x' + m[5]) : 0n };
    const last = segments[segments.length - 1];
    if (last && last.gpa + last.size === seg.gpa && last.fileOffset + last.size === seg.fileOffset) last.size += seg.size;
    else segments.push(seg);
  }
  if (!segments.length) throw new BadDataError(`info mtree shows no RAM of block ${ramBlock}`);
  return segments;
}
