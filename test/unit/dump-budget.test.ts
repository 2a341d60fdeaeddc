import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { ResourceExhaustedError, TimeoutError } from '../../common/errors.js';
import { walkRange } from '../../introspect/arch/x86-64.js';
import { byteSize } from '../../introspect/cli/quota-options.js';
import { DumpBudget, budgetLimits } from '../../introspect/dump/budget.js';
import { VmaInfo, planPages } from '../../introspect/dump/memory.js';
import { DumpProblem } from '../../introspect/dump/problem.js';
import { RunList, diffRuns } from '../../introspect/dump/run-list.js';
import { KObject } from '../../introspect/kernel/object.js';
import { PageInfo } from '../../introspect/linux/pages.js';
import { FakeKernel } from './helpers/fake-program.js';

const P = 1n, RW = 2n, US = 4n;
const GIB = 1n << 30n;
/** The hostile mapping: 128 MiB at VA 1 GiB whose every PTE maps the zero page (a MAP_NORESERVE region read page by page). */
const PMDS = 64;
const START = GIB;
const END = GIB + BigInt(PMDS) * (2n << 20n);
const PTES = 512 * PMDS;

/**
 * A process whose page tables map [START, END) to the zero page, page by
 * page: one PT of zero-page entries that every PMD entry points at (a real
 * guest needs 2 MiB of tables per GiB; the walker reads the same entries).
 */
function zeroPageProcess() {
  // planPages reads mm_struct's task_size, exe_file and flags (mmState) besides pgd.
  const k = new FakeKernel({ structs: { mm_struct: [['pgd', 'ptr'], ['task_size', 'u64'], ['exe_file', 'ptr'], ['flags', 'u64']] } });
  const zero = k.phys(k.symbolAddress('empty_zero_page'));
  const pgd = k.newPgd();
  const pud = k.newPgd();
  const pmd = k.newPgd();
  const pt = k.newPgd();
  for (let i = 0; i < 512; i++) k.ram.u64(pt.phys + BigInt(i) * 8n, zero | P | US);
  for (let i = 0; i < PMDS; i++) k.ram.u64(pmd.phys + BigInt(i) * 8n, pt.phys | P | RW | US);
  k.ram.u64(pud.phys + 8n, pmd.phys | P | RW | US);
  k.ram.u64(pgd.phys, pud.phys | P | RW | US);
  // One real page after the region, to see that a walk under budget still finds it.
  const page = k.allocPage();
  k.map(pgd.phys, END, page.phys);
  const mm = k.new('mm_struct', { pgd: pgd.va, task_size: 1n << 47n });
  const task = k.new('task_struct', { pid: 99, mm });
  const prog = k.program();
  const vmas: VmaInfo[] = [{ start: START, end: END + 4096n, status: 1 | (1 << 9), flags: 0x22 | 0x4000, dumpPages: true, lazy: true, filePrivate: false }];
  return { k, prog, leader: KObject.struct(prog, 'task_struct', task), vmas, page, pgdPhys: pgd.phys };
}

const limits = (over: Partial<ReturnType<typeof budgetLimits>> = {}) => ({ ...budgetLimits(8 << 20), ptes: 10 * PTES, ...over });

describe('dump budget', () => {
  it('defaults follow the RAM size, and a quota overrides them', () => {
    assert.deepEqual(budgetLimits(1 << 30), { ptes: 2 * 262144, runs: 262144, bytes: 1 << 30, pauseMs: 10_000 });
    assert.deepEqual(budgetLimits(1 << 30, { bytes: 4096, pauseMs: 50 }), { ptes: 2 * 262144, runs: 262144, bytes: 4096, pauseMs: 50 });
    assert.throws(() => budgetLimits(1 << 30, { ptes: 0 }), /ptes/);
  });

  it('a walk of zero-page PTEs within budget keeps no zero page and finds the real one', async () => {
    const w = zeroPageProcess();
    const problems: DumpProblem[] = [];
    const meter = new DumpBudget(limits()).meter();
    const planned = await planPages(w.leader, w.vmas, new PageInfo(w.prog), problems, 'pid 99 (zero)', meter);
    assert.deepEqual(problems, []);
    assert.equal(planned.runs.length, 1);
    assert.deepEqual(planned.runs.get(0), { vpn: Number(END >> 12n), ppn: Number(w.page.phys >> 12n), pages: 1 });
    assert.ok(meter.ptes >= PTES, `${meter.ptes} PTEs counted`);
  });

  it('zero-page PTEs past the budget end the walk with RESOURCE_EXHAUSTED naming the task', async () => {
    const w = zeroPageProcess();
    const meter = new DumpBudget(limits({ ptes: 10_000 })).meter();
    await assert.rejects(planPages(w.leader, w.vmas, new PageInfo(w.prog), [], 'pid 99 (zero)', meter), (err: unknown) => {
      assert.ok(err instanceof ResourceExhaustedError);
      assert.equal(err.code, 'RESOURCE_EXHAUSTED');
      assert.equal(err.resource, 'page table entries');
      assert.equal(err.who, 'pid 99 (zero)');
      assert.match(err.message, /pid 99 \(zero\)/);
      return true;
    });
    assert.ok(meter.ptes <= 10_000 + 512, `stopped at ${meter.ptes} PTEs`);
  });

  it('the walk yields to the event loop and honours the request\'s deadline mid-walk', async () => {
    const w = zeroPageProcess();
    const ac = new AbortController();
    let turns = 0;
    const spin = async () => { while (!ac.signal.aborted) { turns++; await tick(); } };
    void spin();
    setTimeout(() => ac.abort(new TimeoutError('deadline of the test request')), 0);
    const meter = new DumpBudget(limits({ ptes: 1e12 }), ac.signal).meter();
    // A walk 1000 times longer than the PTEs above: it must stop at the deadline, not run to its end.
    const vmas = Array.from({ length: 1000 }, () => w.vmas[0]);
    await assert.rejects(planPages(w.leader, vmas, new PageInfo(w.prog), [], 'pid 99 (zero)', meter), TimeoutError);
    assert.ok(turns > 0, 'other work ran during the walk');
    assert.ok(meter.ptes < 1000 * PTES, `stopped after ${meter.ptes} PTEs`);
  });

  it('a walk under a VM pause stops when the pause budget runs out', async () => {
    const w = zeroPageProcess();
    const meter = new DumpBudget(limits({ ptes: 1e12 })).meter(Date.now() - 1);
    const vmas = Array.from({ length: 100 }, () => w.vmas[0]);
    await assert.rejects(planPages(w.leader, vmas, new PageInfo(w.prog), [], 'pid 99 (zero)', meter),
      (err: unknown) => err instanceof ResourceExhaustedError && err.resource === 'ms of VM pause');
  });

  it('runs and bytes are bounded per walk and across the dump', async () => {
    const w = zeroPageProcess();
    await assert.rejects(planPages(w.leader, w.vmas, new PageInfo(w.prog), [], 'pid 99', new DumpBudget(limits({ bytes: 100 })).meter()),
      (err: unknown) => err instanceof ResourceExhaustedError && err.resource === 'bytes of pages');
    const budget = new DumpBudget(limits({ runs: 3, bytes: 3 * 4096 }));
    budget.charge(2, 8192, 'pid 1');
    assert.throws(() => budget.charge(2, 4096, 'pid 2'), (err: unknown) => err instanceof ResourceExhaustedError && err.who === 'pid 2');
  });

  it('walkRange with an observer gives its consumer a turn without changing what it finds', () => {
    const w = zeroPageProcess();
    const plain = [...walkRange(w.prog.mem, w.pgdPhys, START, END + 4096n, 4)];
    let tables = 0;
    const pieces = [...walkRange(w.prog.mem, w.pgdPhys, START, END + 4096n, 4, 0n, 'test', { table: () => ++tables % 7 === 0 })];
    const pages = (runs: typeof plain) => runs.reduce((n, r) => n + r.size, 0n);
    assert.equal(pages(pieces), pages(plain));
    assert.ok(tables >= PMDS);
    const resident = (runs: typeof plain) => runs.filter((r) => r.phys !== undefined && r.phys === w.page.phys).length;
    assert.equal(resident(pieces), 1);
    assert.equal(resident(plain), 1);
    // Told the zero page, the walker passes over its PTEs as untouched memory, in one run rather than one per PTE.
    const zero = Number(w.k.phys(w.k.symbolAddress('empty_zero_page')));
    const quick = [...walkRange(w.prog.mem, w.pgdPhys, START, END + 4096n, 4, 0n, 'test', { table: () => false, zeroPage: zero })];
    assert.deepEqual(quick.map((r) => ({ ...r })), [
      { va: START, size: END - START, swapped: false },
      { va: END, size: 4096n, phys: w.page.phys, swapped: false },
    ]);
    assert.ok(plain.length >= PTES);
  });
});

describe('compact page runs', () => {
  it('merge contiguous runs and hold page frame numbers far past 2^32 exactly', () => {
    const runs = new RunList();
    runs.push(2 ** 44, 2 ** 39 + 1, 3);
    runs.push(2 ** 44 + 3, 2 ** 39 + 4, 2);
    runs.push(2 ** 44 + 10, 7, 1);
    assert.equal(runs.length, 2);
    assert.equal(runs.pages, 6);
    assert.deepEqual(runs.get(0), { vpn: 2 ** 44, ppn: 2 ** 39 + 1, pages: 5 });
    for (let i = 0; i < 1000; i++) runs.push(2 ** 45 + 2 * i, i * 3, 1);
    assert.equal(runs.length, 1002);
  });

  it('compare walks past 2^24 pages in one pass, finding what moved and where it goes in the image', () => {
    const big = 1 << 26; // 64 Mi pages (256 GiB): a Map of every page could not hold them
    const before = new RunList();
    before.push(0x1000, 0x100000, big);
    before.push(0x1000 + big + 5, 0x10, 2);
    const after = new RunList();
    after.push(0x1000, 0x100000, (1 << 25) + 3);
    after.push(0x1000 + (1 << 25) + 3, 0x9000000, 5); // these 5 pages moved
    after.push(0x1000 + (1 << 25) + 8, 0x100000 + (1 << 25) + 8, big - (1 << 25) - 8);
    after.push(0x1000 + big + 5, 0x10, 2);
    const diff = diffRuns(before, after);
    assert.equal(diff.sameSet, true);
    assert.equal(diff.movedPages, 5);
    assert.deepEqual(diff.moved, [{ vpn: 0x1000 + (1 << 25) + 3, ppn: 0x9000000, pages: 5, at: ((1 << 25) + 3) * 4096 }]);
    assert.equal(before.equals(after), false);
    assert.equal(diffRuns(before, before).movedPages, 0);
  });

  it('tell a changed set of pages from moved pages', () => {
    const a = new RunList();
    a.push(100, 500, 10);
    const gone = new RunList();
    gone.push(100, 500, 9);
    const shifted = new RunList();
    shifted.push(101, 500, 10);
    const split = new RunList();
    split.push(100, 500, 4);
    split.push(105, 505, 6); // page 104 went, 110 came
    assert.equal(diffRuns(a, gone).sameSet, false);
    assert.equal(diffRuns(a, shifted).sameSet, false);
    assert.equal(diffRuns(a, split).sameSet, false);
  });
});

describe('dump quota options', () => {
  it('read sizes with binary suffixes and refuse anything else', () => {
    const parse = byteSize('--max-dump-bytes');
    assert.equal(parse('4096'), 4096);
    assert.equal(parse('512M'), 512 * 2 ** 20);
    assert.equal(parse('2GiB'), 2 * 2 ** 30);
    for (const bad of ['0', '-1', '1.5G', 'lots', '']) assert.throws(() => parse(bad), /not a size/);
  });
});
