import assert from 'node:assert/strict';
import { PageFaultError, translate, walkRange } from '../../introspect/arch/x86-64.js';
import { PhysicalFaultError } from '../../introspect/memory/physical-memory.js';
import { BufferMemory } from './helpers/fake-memory.js';

const P = 1n, RW = 2n, US = 4n, PSE = 0x80n, PROTNONE = 0x100n, NX = 1n << 63n;
const U64 = (1n << 64n) - 1n;
const idx = (va: bigint, shift: bigint) => (va >> shift) & 0x1ffn;

/** Tables at fixed physical pages: 0x1000 top, then one table per level below. */
function setup(levels: 4 | 5, va: bigint) {
  const mem = new BufferMemory(Buffer.alloc(64 << 20));
  const shifts = levels === 5 ? [48n, 39n, 30n, 21n, 12n] : [39n, 30n, 21n, 12n];
  const tables = shifts.map((_, i) => BigInt(0x1000 * (i + 1)));
  const link = (depth: number, flags = P | RW | US) => mem.u64(tables[depth] + idx(va, shifts[depth]) * 8n, tables[depth + 1] | flags);
  return { mem, shifts, tables, link, root: tables[0] };
}

describe('x86-64 page walk', () => {
  const va = 0x7f12_3456_7abcn;

  for (const levels of [4, 5] as const) {
    it(`translates a 4 KiB page with ${levels} levels`, () => {
      const { mem, shifts, tables, link, root } = setup(levels, va);
      for (let d = 0; d < shifts.length - 1; d++) link(d, d === 0 ? P | RW | US | NX : P | RW | US);
      mem.u64(tables[shifts.length - 1] + idx(va, 12n) * 8n, 0x20_0000n | P | US);
      const t = translate(mem, root, va, levels);
      assert.equal(t.phys, 0x20_0000n | (va & 0xfffn));
      assert.deepEqual([t.pageSize, t.writable, t.user, t.protNone], [4096n, false, true, false]);
    });
  }

  it('translates 2 MiB and 1 GiB pages, ignoring the PAT bit of large entries', () => {
    const { mem, tables, link, root } = setup(4, va);
    link(0);
    link(1);
    mem.u64(tables[2] + idx(va, 21n) * 8n, 0x40_0000n | 0x1000n | P | RW | US | PSE);
    assert.equal(translate(mem, root, va, 4).phys, 0x40_0000n | (va & 0x1f_ffffn));
    mem.u64(tables[1] + idx(va, 30n) * 8n, 0x4000_0000n | P | RW | US | PSE);
    const t = translate(mem, root, va, 4);
    assert.deepEqual([t.phys, t.pageSize], [0x4000_0000n | (va & 0x3fff_ffffn), 1n << 30n]);
  });

  it('finds a PROT_NONE page through its inverted PFN', () => {
    const { mem, tables, link, root } = setup(4, va);
    link(0); link(1); link(2);
    mem.u64(tables[3] + idx(va, 12n) * 8n, ((~0x30_0000n & U64) & 0x000f_ffff_ffff_f000n) | PROTNONE | US);
    const t = translate(mem, root, va, 4);
    assert.deepEqual([t.phys, t.protNone], [0x30_0000n | (va & 0xfffn), true]);
  });

  it('tells a swap entry from an unmapped address', () => {
    const { mem, tables, link, root } = setup(4, va);
    link(0); link(1); link(2);
    assert.throws(() => translate(mem, root, va, 4), (e: unknown) => e instanceof PageFaultError && !e.swapped && e.level === 'pt');
    mem.u64(tables[3] + idx(va, 12n) * 8n, (~(5n << 9n) & U64) & ~0x1ffn & ~(1n << 63n));
    assert.throws(() => translate(mem, root, va, 4), (e: unknown) => e instanceof PageFaultError && e.swapped);
    assert.throws(() => translate(mem, root, 0x1000n, 4, 0n, 'stack of pid 7'), /stack of pid 7 at 0x1000: not mapped at pml4/);
  });

  it('is a typed error, not a crash, when an entry points outside RAM', () => {
    const { mem, tables, root } = setup(4, va);
    mem.u64(tables[0] + idx(va, 39n) * 8n, 0xf_ffff_f000n | P);
    assert.throws(() => translate(mem, root, va, 4), PhysicalFaultError);
  });

  it('walks a range into runs merged where physically contiguous, telling swapped from untouched', () => {
    const { mem, tables, link, root } = setup(4, va);
    link(0); link(1); link(2);
    const pt = tables[3];
    const base = va & ~0x1f_ffffn;
    // Pages 0-3 contiguous at 0x50_0000, page 4 elsewhere, page 5 untouched, page 6 swapped, page 7 PROT_NONE.
    for (let i = 0n; i < 4n; i++) mem.u64(pt + i * 8n, (0x50_0000n + i * 0x1000n) | P | US);
    mem.u64(pt + 4n * 8n, 0x60_0000n | P | US);
    mem.u64(pt + 6n * 8n, (~(3n << 9n) & U64) & ~0x1ffn & ~(1n << 63n));
    mem.u64(pt + 7n * 8n, ((~0x70_0000n & U64) & 0x000f_ffff_ffff_f000n) | PROTNONE);
    const runs = [...walkRange(mem, root, base + 0x800n, base + 0x8000n, 4)];
    assert.deepEqual(runs, [
      { va: base + 0x800n, size: 0x3800n, phys: 0x50_0800n, swapped: false },
      { va: base + 0x4000n, size: 0x1000n, phys: 0x60_0000n, swapped: false },
      { va: base + 0x5000n, size: 0x1000n, swapped: false },
      { va: base + 0x6000n, size: 0x1000n, swapped: true },
      { va: base + 0x7000n, size: 0x1000n, phys: 0x70_0000n, swapped: false },
    ]);
    // Every run agrees with translate() page by page.
    for (const run of runs) {
      if (run.phys !== undefined) assert.equal(translate(mem, root, run.va, 4).phys, run.phys);
    }
  });

  it('yields one run for a range with no tables at all', () => {
    const { mem, root } = setup(5, va);
    assert.deepEqual([...walkRange(mem, root, 0x1000n, 0x40_0000_0000n, 5)], [{ va: 0x1000n, size: 0x40_0000_0000n - 0x1000n, swapped: false }]);
  });
});
