/**
 * `make bench`, hostile-input part: the time of what unit tests bound by
 * counting (reads of guest memory, bytes decoded), each next to a baseline
 * of ordinary input measured in the same run. A hostile case should cost
 * about what its baseline costs, not what its announced size would.
 * No guest: fake kernels in process.
 */
import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { decodeNames } from '../../introspect/kernel/kallsyms.js';
import { plainTokens } from '../fuzz/attachable-kernel.js';
import { FakeKernel } from '../unit/helpers/fake-program.js';
import { FakeTmpfs, cachedPage, sharedNodesTmpfs, sparseTmpfs, xarray } from '../unit/helpers/fake-tmpfs.js';
import { median } from './median.js';

const REPS = 7;
const NAMES = 20_000;

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Median ms of `fn`, which may throw the expected typed error. */
function timed(fn: () => unknown, expected?: new (...args: never[]) => Error): number {
  const samples: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = process.hrtime.bigint();
    try {
      fn();
      if (expected) throw new Error(`expected ${expected.name}`);
    } catch (err) {
      if (!expected || !(err instanceof expected)) throw err;
    }
    samples.push(ms(t0));
  }
  return median(samples);
}

/** A tmpfs with one file of `size` bytes holding two pages, at the first and last index. */
function twoPageFile(size: bigint, rootShift: number): FakeTmpfs {
  const k = new FakeKernel();
  const last = (size >> 12n) - 1n;
  const head = xarray(k, new Map([[0n, cachedPage(k, 0n, 'first')], [last, cachedPage(k, last, 'last')]]), rootShift);
  return sparseTmpfs(k, size, head);
}


function row(what: string, hostile: number, baseline: number, base: string): void {
  console.log(`  ${what.padEnd(44)} ${hostile.toFixed(2).padStart(8)} ms  ${(hostile / baseline).toFixed(2).padStart(6)}x ${base} (${baseline.toFixed(2)} ms)`);
}

function main(): void {
  console.log(`hostile inputs (median of ${REPS}; ratio to an ordinary input of the same shape, same run):`);

  const small = twoPageFile(8192n, 6);
  const smallMs = timed(() => small.entries());
  const huge = twoPageFile(1n << 40n, 24);
  row('tmpfs: 2^40-byte file, two pages cached', timed(() => huge.entries({ maxHoleBytes: 2 ** 41 })), smallMs, 'an 8 KiB file of two pages');
  row('tmpfs: the same, refused for its holes', timed(() => huge.entries(), UnsupportedError), smallMs, 'an 8 KiB file of two pages');
  const shared = sharedNodesTmpfs();
  row('tmpfs: 64^4 paths through shared xa_nodes', timed(() => shared.entries({ maxHoleBytes: 2 ** 41 }), BadDataError), smallMs, 'an 8 KiB file of two pages');

  // The same stream length both ways: one byte of length and two token bytes a name.
  const tokens = plainTokens();
  const plain = Buffer.concat(Array.from({ length: NAMES }, () => Buffer.from([2, 0x54, 0x61])));
  const plainMs = timed(() => decodeNames(plain, NAMES, tokens));
  const inflated = [...tokens];
  inflated[1] = 'T' + 'y'.repeat(249);
  inflated[2] = 'z'.repeat(250);
  const hostile = Buffer.concat(Array.from({ length: NAMES }, () => Buffer.from([2, 1, 2])));
  row('kallsyms: names inflated 160 times, refused', timed(() => decodeNames(hostile, NAMES, inflated), BadDataError), plainMs, `${NAMES} ordinary names`);
}

main();
