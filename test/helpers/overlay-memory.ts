import { PhysicalMemory } from '../../introspect/memory/physical-memory.js';

/** Guest RAM with some bytes overwritten, for fuzzing the kernel model with corrupt structures. */
export class OverlayMemory implements PhysicalMemory {
  private patches = new Map<bigint, Buffer>();

  constructor(private readonly base: PhysicalMemory) {}

  get segments() {
    return this.base.segments;
  }

  /** Overwrites bytes at a guest-physical address (within one page). */
  patch(gpa: bigint, bytes: Buffer): void {
    const page = gpa & ~0xfffn;
    let copy = this.patches.get(page);
    if (!copy) {
      copy = this.base.read(page, 4096);
      this.patches.set(page, copy);
    }
    bytes.copy(copy, Number(gpa - page), 0, Math.min(bytes.length, 4096 - Number(gpa - page)));
  }

  reset(): void {
    this.patches.clear();
  }

  read(gpa: bigint, length: number, what?: string): Buffer {
    const buf = Buffer.allocUnsafe(length);
    this.readInto(gpa, buf, what);
    return buf;
  }

  readInto(gpa: bigint, buf: Buffer, what?: string): void {
    this.base.readInto(gpa, buf, what);
    if (this.patches.size === 0) return;
    const end = gpa + BigInt(buf.length);
    for (const [page, data] of this.patches) {
      if (page + 4096n <= gpa || page >= end) continue;
      const from = page > gpa ? page : gpa;
      const to = page + 4096n < end ? page + 4096n : end;
      data.copy(buf, Number(from - gpa), Number(from - page), Number(to - page));
    }
  }

  close(): void {
    this.base.close();
  }
}
