import assert from 'node:assert/strict';
import { OvmError } from '../../common/errors.js';
import { fakeProcess, readEverything } from '../fuzz/fake-process.js';
import { describeReport, fuzz, fuzzCases, fuzzSeed } from '../fuzz/harness.js';
import { RamPatcher } from '../fuzz/ram-patcher.js';

const CASES = fuzzCases();
const READERS = 20;
/**
 * Reads one case may make, in multiples of the uncorrupted readers' reads.
 * The largest bounded walk sets it: a d_parent chain bent into a loop is
 * climbed to d_path's 4096-component bound, ~17,800 reads (42x clean).
 */
const WORK_FACTOR = 64;
/**
 * tmpfs reads a file's pages into one buffer of i_size, up to its 1 GiB
 * bound (introspect/linux/tmpfs.ts MAX_BYTES): a corrupt i_size costs that
 * much for a moment. The run may grow that, and no more.
 */
const HEAP_GROWTH = (1 << 30) + (256 << 20);

describe('fuzz: the dump path\'s readers and memory plan over corrupted kernel objects (fake kernel)', function () {
  this.timeout(Math.max(60_000, CASES * 100));
  const p = fakeProcess();
  const patcher = new RamPatcher(p.k.ram.ram);
  const ram = p.k.ram.ram;
  // Words that hold something (pointers, sizes, list links) are corrupted more often than zeros.
  const words: number[] = [];
  for (let at = Number(p.heap.at); at < Number(p.heap.at) + p.heap.size; at += 8) if (ram.readBigUInt64LE(at) !== 0n) words.push(at);
  const near = words.map((at) => ram.readBigUInt64LE(at)).filter((v) => v >= 0xffff800000000000n);
  const strict = (fn: () => unknown): boolean => {
    fn();
    return true;
  };
  const typed = (fn: () => unknown): boolean => {
    try {
      fn();
      return true;
    } catch (err) {
      if (err instanceof OvmError) return false;
      throw err;
    }
  };
  after(() => {
    patcher.restore();
    p.prog.refresh();
  });

  it('the uncorrupted process reads whole', () => {
    assert.equal(readEverything(p, strict), READERS);
  });

  it(`${CASES} corruptions of its objects and page tables give results or typed errors, in bounded reads and memory`, async () => {
    // A case may read a few times what the uncorrupted readers read (a corrupt link that leads a walk astray), never without bound.
    patcher.restore();
    p.prog.refresh();
    const reads = () => p.prog.mem.reads;
    const before = reads();
    readEverything(p, strict);
    const clean = reads() - before;
    const work = { count: reads, perCase: WORK_FACTOR * clean, what: 'reads of guest memory' };
    const report = await fuzz({ name: 'fuzz-readers', seed: fuzzSeed(0x5eed0101), cases: CASES, heapGrowth: HEAP_GROWTH, work }, (rng) => {
      patcher.restore();
      for (let n = 1 + rng.int(4); n > 0; n--) {
        const at = rng.chance(0.8) && words.length ? BigInt(rng.pick(words)) : p.heap.at + BigInt(rng.int(p.heap.size) & ~7);
        patcher.mutate(rng, { at, size: 8 }, near);
      }
      p.prog.refresh();
      const ok = readEverything(p, typed);
      return ok === READERS ? 'ok' : `${READERS - ok} readers failed`;
    });
    console.log(`      ${describeReport(report)}`);
    assert.ok((report.outcomes.ok ?? 0) < CASES, 'some corruptions are caught');
  });
});
