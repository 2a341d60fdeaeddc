import { PhysicalFaultError, PhysicalMemory } from '../../../introspect/memory/physical-memory.js';

/** Guest RAM held in a Buffer at gpa 0: for page walks and object reads without a guest. */
export class BufferMemory implements PhysicalMemory {
  readonly segments;
  /** Reads made of this RAM: work a test can bound (a Program's own reads are counted by its CachedMemory). */
  reads = 0;
  constructor(readonly ram: Buffer) {
    this.segments = [{ gpa: 0n, size: BigInt(ram.length), fileOffset: 0n }];
  }

  read(gpa: bigint, length: number, what = 'memory'): Buffer {
    const buf = Buffer.alloc(length);
    this.readInto(gpa, buf, what);
    return buf;
  }

  readInto(gpa: bigint, buf: Buffer, what = 'memory'): void {
    this.reads++;
    if (gpa < 0n || gpa + BigInt(buf.length) > BigInt(this.ram.length)) throw new PhysicalFaultError(gpa, what, 'not guest RAM');
    this.ram.copy(buf, 0, Number(gpa), Number(gpa) + buf.length);
  }

  close(): void {}

  u64(gpa: bigint, value: bigint): void {
    this.ram.writeBigUInt64LE(value, Number(gpa));
  }
}
