import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { PageInfo, structPagePhys } from '../../introspect/linux/pages.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, OUTSIDE_RAM, VMEMMAP_BASE } from './helpers/fake-program.js';

const PAGE_MAPPING_ANON = 1n;

describe('struct page on a fake kernel', () => {
  it('maps struct page to physical, tells anonymous pages through their head, and finds zero pages', () => {
    const k = new FakeKernel();
    k.u64(k.symbol('huge_zero_pfn', 8), 0x600n);
    const anon = k.allocPage();
    k.write(anon.page, 'page', { mapping: k.alloc(64) | PAGE_MAPPING_ANON });
    const tail = k.allocPage();
    k.write(tail.page, 'page', { compound_head: anon.page | 1n });
    const file = k.allocPage();
    k.write(file.page, 'page', { mapping: k.alloc(64) });
    const prog = k.program();
    const info = new PageInfo(prog);
    assert.equal(structPagePhys(prog, anon.page, 'test'), anon.phys);
    assert.deepEqual([info.isAnon(anon.phys), info.isAnon(tail.phys), info.isAnon(file.phys)], [true, true, false]);
    const zero = k.phys(k.symbolAddress('empty_zero_page'));
    assert.deepEqual([info.isZero(zero), info.isZero(0x600000n + 0x1ff000n), info.isZero(0x800000n), info.isZero(anon.phys)], [true, true, false, false]);
    k.put(anon.va + 10n, Buffer.from('data'));
    assert.equal(info.readPageData(anon.page, 10, 4, 'test').toString(), 'data');
  });

  it('has no huge zero page until one is allocated (huge_zero_pfn is ~0)', () => {
    const k = new FakeKernel();
    k.u64(k.symbol('huge_zero_pfn', 8), (1n << 64n) - 1n);
    assert.equal(new PageInfo(k.program()).zeroPages.length, 1);
  });

  describe('hostile values end in typed errors', () => {
    it('pointers that are no struct page', () => {
      const k = new FakeKernel();
      const prog = k.program();
      const size = BigInt(k.types.sizeof('page'));
      for (const page of [0n, OUTSIDE_RAM, VMEMMAP_BASE - size, VMEMMAP_BASE + size + 1n]) {
        assertOvmError(() => structPagePhys(prog, page, 'test'), BadDataError);
      }
    });

    it('page data ranges that are negative or huge', () => {
      const k = new FakeKernel();
      const p = k.allocPage();
      const info = new PageInfo(k.program());
      for (const [offset, len] of [[-1, 4], [0, -1], [0, 2 << 20], [1 << 20, 1]]) {
        assertOvmError(() => info.readPageData(p.page, offset, len, 'test'), BadDataError);
      }
    });

    it('a compound head outside the vmemmap map', () => {
      const k = new FakeKernel();
      const p = k.allocPage();
      k.write(p.page, 'page', { compound_head: OUTSIDE_RAM | 1n });
      assertOvmError(() => new PageInfo(k.program()).isAnon(p.phys), PageFaultError);
      // A physical address whose struct page was never mapped.
      assertOvmError(() => new PageInfo(k.program()).isAnon(0x7000_0000n), PageFaultError);
    });
  });
});
