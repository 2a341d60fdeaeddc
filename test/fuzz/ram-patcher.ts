import { Rng, interesting } from './harness.js';

/** A byte range of guest RAM (guest-physical, in a Buffer at gpa 0). */
export interface Region {
  at: bigint;
  size: number;
}

/**
 * Corrupts a RAM buffer in place and puts it back afterwards: copying a
 * whole fake guest per case would cost more than the case.
 */
export class RamPatcher {
  private readonly pristine: Buffer;
  private touched: [number, number][] = [];

  constructor(readonly ram: Buffer) {
    this.pristine = Buffer.from(ram);
  }

  write(at: number, bytes: Buffer): void {
    const start = Math.max(0, at);
    const end = Math.min(this.ram.length, at + bytes.length);
    if (end <= start) return;
    this.touched.push([start, end]);
    bytes.copy(this.ram, start, start - at, end - at);
  }

  restore(): void {
    for (const [start, end] of this.touched) this.pristine.copy(this.ram, start, start, end);
    this.touched = [];
  }

  /** One random corruption inside `region`: bytes, a bit, an interesting integer, a zeroed or copied span. */
  mutate(rng: Rng, region: Region, near: bigint[] = []): void {
    const base = Number(region.at);
    const size = Math.max(1, region.size);
    const off = rng.int(size);
    switch (rng.int(6)) {
      case 0: {
        const b = Buffer.alloc(1 + rng.int(8));
        for (let i = 0; i < b.length; i++) b[i] = rng.int(256);
        this.write(base + off, b);
        break;
      }
      case 1: {
        const b = Buffer.from([this.ram[base + off] ^ (1 << rng.int(8))]);
        this.write(base + off, b);
        break;
      }
      case 2: case 3: {
        const width = rng.pick([1, 2, 4, 8]);
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(interesting(rng, near));
        this.write(base + (off & ~(width - 1)), b.subarray(0, width));
        break;
      }
      case 4:
        this.write(base + off, Buffer.alloc(1 + rng.int(64)));
        break;
      default: {
        const from = base + rng.int(size);
        const len = 1 + rng.int(64);
        this.write(base + off, Buffer.from(this.ram.subarray(from, Math.min(from + len, this.ram.length))));
      }
    }
  }
}
