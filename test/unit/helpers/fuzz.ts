/**
 * Seeded, reproducible fuzzing. OVMIGRATE_FUZZ_CASES sets how many cases a
 * fuzz test runs (default 200, so the unit run stays fast; `make fuzz` runs
 * 10,000), OVMIGRATE_FUZZ_SEED replays a run; a failing case names both.
 */
export const FUZZ_CASES = positiveInt(process.env.OVMIGRATE_FUZZ_CASES, 200);
const BASE_SEED = positiveInt(process.env.OVMIGRATE_FUZZ_SEED, Math.floor(Math.random() * 0x7fff_ffff));

function positiveInt(text: string | undefined, fallback: number): number {
  const n = Number(text);
  return text !== undefined && text !== '' && Number.isSafeInteger(n) && n >= 0 ? n : fallback;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export class Rng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A uint32. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.next() / 2 ** 32) * n);
  }

  chance(p: number): boolean {
    return this.next() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }

  /** `buf` cut into 1 to `pieces` chunks at random points. */
  split(buf: Buffer, pieces = 8): Buffer[] {
    const cuts = new Set<number>();
    const n = this.int(pieces);
    for (let i = 0; i < n && buf.length > 1; i++) cuts.add(1 + this.int(buf.length - 1));
    const sorted = [...cuts].sort((a, b) => a - b);
    const out: Buffer[] = [];
    let at = 0;
    for (const c of sorted) {
      out.push(buf.subarray(at, c));
      at = c;
    }
    out.push(buf.subarray(at));
    return out;
  }

  /** A copy of `buf` with a few bytes flipped, dropped or inserted. */
  mutate(buf: Buffer): Buffer {
    let out = Buffer.from(buf);
    const edits = 1 + this.int(4);
    for (let i = 0; i < edits; i++) {
      const at = this.int(out.length + 1);
      switch (this.int(4)) {
        case 0: if (out.length) out[Math.min(at, out.length - 1)] ^= 1 << this.int(8); break;
        case 1: if (out.length) out[Math.min(at, out.length - 1)] = this.next() & 0xff; break;
        case 2: out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + this.int(8))]); break;
        default: out = Buffer.concat([out.subarray(0, at), this.bytes(1 + this.int(8)), out.subarray(at)]);
      }
    }
    return out;
  }
}

/**
 * Runs `body` for each case with its own Rng; a failure is rethrown naming
 * the seed and case to replay it with.
 */
export async function forEachCase(body: (rng: Rng, index: number) => void | Promise<void>, cases = FUZZ_CASES): Promise<void> {
  for (let i = 0; i < cases; i++) {
    const seed = (BASE_SEED + i) >>> 0;
    try {
      await body(new Rng(seed), i);
    } catch (err) {
      const replay = `OVMIGRATE_FUZZ_SEED=${BASE_SEED} (case ${i}, case seed ${seed})`;
      if (err instanceof Error) {
        err.message = `${err.message}\n    fuzz: replay with ${replay}`;
        throw err;
      }
      throw new Error(`fuzz case failed: ${String(err)}; replay with ${replay}`);
    }
  }
}
