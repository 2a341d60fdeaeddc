import { MemorySegment, PhysicalMemory } from './physical-memory.js';

const PAGE = 4096n;

/**
 * Guest RAM through a cache of whole pages: walking kernel structures
 * costs thousands of reads of a few bytes each, and a system call apiece
 * dominated a dump's planning. Reads of more than a page (user memory,
 * page contents) go straight to the source. The cache holds what RAM held
 * when first read: owners call invalidate() wherever the guest may have
 * changed since (each dump does, and again with the VM paused).
 */
export class CachedMemory implements PhysicalMemory {
  private readonly pages = new Map<bigint, Buffer>();
  /** Reads asked of the cache, hits and misses: the walking a reader did, which tests bound instead of its time. */
  reads = 0;

  constructor(readonly base: PhysicalMemory, private readonly capacity = 8192) {}

  get segments(): readonly MemorySegment[] {
    return this.base.segments;
  }

  read(gpa: bigint, length: number, what?: string): Buffer {
    const buf = Buffer.allocUnsafe(length);
    this.readInto(gpa, buf, what);
    return buf;
  }

  readInto(gpa: bigint, buf: Buffer, what?: string): void {
    this.reads++;
    const off = Number(gpa & (PAGE - 1n));
    if (buf.length > 4096 || off + buf.length > 4096) {
      if (buf.length > 4096) return this.base.readInto(gpa, buf, what);
      const first = 4096 - off;
      this.readInto(gpa, buf.subarray(0, first), what);
      this.readInto(gpa + BigInt(first), buf.subarray(first), what);
      return;
    }
    const base = gpa - BigInt(off);
    let page = this.pages.get(base);
    if (!page) {
      page = this.base.read(base, 4096, what);
      if (this.pages.size >= this.capacity) this.pages.delete(this.pages.keys().next().value!);
      this.pages.set(base, page);
    }
    page.copy(buf, 0, off, off + buf.length);
  }

  /** Forgets everything read: the next reads see RAM as it is now. */
  invalidate(): void {
    this.pages.clear();
  }

  close(): void {
    this.pages.clear();
    this.base.close();
  }
}
