import { OvmError } from '../../common/errors.js';

/**
 * A fuzz run: a seeded PRNG per case (so a failure names the seed and case
 * that reproduce it), typed errors only, a bound on each case's work (a
 * count the fuzzer names, such as reads of guest memory: never its time,
 * which a loaded machine stretches) and a bound on the heap the run may grow. `make test` runs a few hundred cases;
 * `make fuzz` sets OVMIGRATE_FUZZ_CASES=10000.
 */
export function fuzzCases(fallback = 200): number {
  const n = Number(process.env.OVMIGRATE_FUZZ_CASES ?? fallback);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`OVMIGRATE_FUZZ_CASES=${process.env.OVMIGRATE_FUZZ_CASES}: give a positive integer`);
  return n;
}

/** The run's base seed: OVMIGRATE_FUZZ_SEED to replay one, else fixed per fuzzer so `make test` is reproducible. */
export function fuzzSeed(fallback: number): number {
  const s = process.env.OVMIGRATE_FUZZ_SEED;
  return s === undefined ? fallback : Number(s) >>> 0;
}

/** Cases a fuzz test runs: OVMIGRATE_FUZZ_CASES, or 200. */
export const FUZZ_CASES = fuzzCases();

/** mulberry32: small, fast, and the same sequence everywhere for a seed. */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A uint32 (same as u32). */
  next(): number {
    return this.u32();
  }

  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.u32() / 2 ** 32) * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** `buf` cut into 1 to `pieces` chunks at random points. */
  split(buf: Buffer, pieces = 8): Buffer[] {
    const cuts = new Set<number>();
    const n = this.int(pieces);
    for (let i = 0; i < n && buf.length > 1; i++) cuts.add(1 + this.int(buf.length - 1));
    const out: Buffer[] = [];
    let at = 0;
    for (const c of [...cuts].sort((a, b) => a - b)) {
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
        case 1: if (out.length) out[Math.min(at, out.length - 1)] = this.u32() & 0xff; break;
        case 2: out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + this.int(8))]); break;
        default: out = Buffer.concat([out.subarray(0, at), this.bytes(1 + this.int(8)), out.subarray(at)]);
      }
    }
    return out;
  }
}

/**
 * Runs `body` for each case with its own Rng, for fuzzers that assert
 * their own invariants; a failure is rethrown naming the seed to replay it.
 */
export async function forEachCase(body: (rng: Rng, index: number) => void | Promise<void>, cases = FUZZ_CASES): Promise<void> {
  const base = fuzzSeed(0x5eed0202);
  for (let i = 0; i < cases; i++) {
    const seed = (base + i) >>> 0;
    try {
      await body(new Rng(seed), i);
    } catch (err) {
      const replay = `OVMIGRATE_FUZZ_SEED=${seed} OVMIGRATE_FUZZ_CASES=1 (case ${i})`;
      if (err instanceof Error) {
        err.message = `${err.message}\n    fuzz: replay with ${replay}`;
        throw err;
      }
      throw new Error(`fuzz case failed: ${String(err)}; replay with ${replay}`);
    }
  }
}

/** Values that break parsers: boundaries, sign bits, and the given near-miss values. */
export function interesting(rng: Rng, near: bigint[] = []): bigint {
  const u64 = (1n << 64n) - 1n;
  const pool = [0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x7fffn, 0x8000n, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
    0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n, u64, u64 - 1n, 0xffffffff80000000n, 0xffff888000000000n];
  if (near.length && rng.chance(0.4)) {
    const v = rng.pick(near);
    return (v + BigInt(rng.int(33)) - 16n) & u64;
  }
  return rng.chance(0.7) ? rng.pick(pool) : rng.u64();
}

export interface FuzzOptions {
  name: string;
  seed: number;
  cases: number;
  /**
   * Bound on one case's work: `count` only grows (reads of guest memory,
   * say) and a case may add at most `perCase` to it, whatever its input.
   */
  work?: { count: () => number; perCase: number; what: string };
  /** Bound on the heap and buffers the run may grow above where it started. */
  heapGrowth?: number;
}

export interface FuzzReport {
  cases: number;
  ms: number;
  outcomes: Record<string, number>;
  /** The slowest case, for the log only: time is never asserted. */
  maxCaseMs: number;
  /** The most work one case did, in the fuzzer's `work` count. */
  maxCaseWork?: number;
  peakGrowthMiB: number;
}

const MiB = 2 ** 20;

function used(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/**
 * Runs `body` once per case with its own Rng. The body returns an outcome
 * name ('ok', or what it saw); an OvmError it throws counts by its code;
 * anything else thrown fails the run with the seed that reproduces it.
 */
export async function fuzz(opts: FuzzOptions, body: (rng: Rng, index: number) => string | Promise<string>): Promise<FuzzReport> {
  const growth = opts.heapGrowth ?? 512 * MiB;
  const outcomes: Record<string, number> = {};
  const start = used();
  let peak = 0;
  let maxCaseMs = 0;
  let maxCaseWork: number | undefined;
  const t0 = Date.now();
  for (let i = 0; i < opts.cases; i++) {
    const seed = (opts.seed + i) >>> 0;
    const replay = `${opts.name}: case ${i}, replay with OVMIGRATE_FUZZ_SEED=${seed} OVMIGRATE_FUZZ_CASES=1`;
    const tc = Date.now();
    const w0 = opts.work?.count();
    let outcome: string;
    try {
      outcome = await body(new Rng(seed), i);
    } catch (err) {
      if (!(err instanceof OvmError)) {
        throw new Error(`${replay}: untyped ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
      }
      outcome = err.code;
    }
    maxCaseMs = Math.max(maxCaseMs, Date.now() - tc);
    if (opts.work) {
      const work = opts.work.count() - w0!;
      maxCaseWork = Math.max(maxCaseWork ?? 0, work);
      if (work > opts.work.perCase) throw new Error(`${replay}: ${work} ${opts.work.what}, over the bound of ${opts.work.perCase} (outcome ${outcome})`);
    }
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    peak = Math.max(peak, used() - start);
    if (peak > growth) throw new Error(`${replay}: heap grew by ${(peak / MiB).toFixed(0)} MiB, over ${(growth / MiB).toFixed(0)} MiB`);
  }
  return { cases: opts.cases, ms: Date.now() - t0, outcomes, maxCaseMs, maxCaseWork, peakGrowthMiB: Math.round(peak / MiB) };
}

export function describeReport(r: FuzzReport): string {
  const work = r.maxCaseWork === undefined ? '' : `, most work ${r.maxCaseWork}`;
  return `${r.cases} cases in ${r.ms} ms (slowest ${r.maxCaseMs} ms${work}, heap +${r.peakGrowthMiB} MiB peak); outcomes ${JSON.stringify(r.outcomes)}`;
}
