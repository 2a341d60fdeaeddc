import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { pageCacheEntry, pageCachePhys, readCachedFile } from '../../introspect/linux/page-cache.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, OUTSIDE_RAM } from './helpers/fake-program.js';

/** An xa_node of `shift` with these slots; returns the internal entry (node | 2) that points at it. */
function xaNode(k: FakeKernel, shift: number, slots: Map<number, bigint>): bigint {
  const values: Record<string, bigint | number> = { shift };
  for (const [i, v] of slots) values[`slots[${i}]`] = v;
  return k.new('xa_node', values) | 2n;
}

/** A cached page of file offset `index` holding `text`; its struct page says which index it caches. */
function cachedPage(k: FakeKernel, index: bigint, text = '') {
  const p = k.allocPage();
  k.put(p.va, Buffer.from(text));
  k.write(p.page, 'page', { index });
  return p;
}

const mapping = (k: FakeKernel, xaHead: bigint) => KObject.struct(k.program(), 'address_space', k.new('address_space', { 'i_pages.xa_head': xaHead }));
const xaValue = (v: bigint) => (v << 1n) | 1n;
const sibling = (slot: number) => (BigInt(slot) << 2n) | 2n;

describe('page cache on a fake kernel', () => {
  it('finds pages, holes, value entries and the tail of a large folio', () => {
    const k = new FakeKernel();
    const a = cachedPage(k, 3n);
    // A two-page folio at index 8: its second index holds a sibling entry naming slot 8.
    const folio = k.alloc(8192, 4096);
    const folioPage = k.structPage(k.phys(folio));
    k.structPage(k.phys(folio) + 4096n);
    k.write(folioPage, 'page', { index: 8 });
    const m = mapping(k, xaNode(k, 0, new Map([[3, a.page], [5, xaValue(42n)], [8, folioPage], [9, sibling(8)]])));
    assert.equal(pageCacheEntry(m, 3n), a.phys);
    assert.equal(pageCacheEntry(m, 5n), 'value');
    assert.equal(pageCacheEntry(m, 6n), 'hole');
    assert.equal(pageCacheEntry(m, 9n), k.phys(folio) + 4096n);
    assert.equal(pageCachePhys(m, 5n), undefined);
  });

  it('walks two levels, and reads a file across pages', () => {
    const k = new FakeKernel();
    const p0 = cachedPage(k, 64n, 'x'.repeat(4096));
    const p1 = cachedPage(k, 65n, 'hello');
    const leaf = xaNode(k, 0, new Map([[0, p0.page], [1, p1.page]]));
    const m = mapping(k, xaNode(k, 6, new Map([[1, leaf]])));
    assert.equal(pageCachePhys(m, 65n), p1.phys);
    assert.equal(pageCachePhys(m, 1n), undefined);
    assert.equal(readCachedFile(m, 64 * 4096 + 4094, 7)?.toString(), 'xxhello');
    assert.equal(readCachedFile(m, 0, 10), undefined);
  });

  it('reads a single page held in xa_head itself', () => {
    const k = new FakeKernel();
    const p = cachedPage(k, 0n, 'only');
    assert.equal(readCachedFile(mapping(k, p.page), 0, 4)?.toString(), 'only');
    assert.equal(pageCacheEntry(mapping(k, 0n), 0n), 'hole');
  });

  it('a single page in xa_head holds index 0 only, and a head node only the indexes its shift covers', () => {
    const k = new FakeKernel();
    const p = cachedPage(k, 0n, 'only');
    const single = mapping(k, p.page);
    assert.equal(pageCacheEntry(single, 0n), p.phys);
    for (const index of [1n, 2n, 1023n, 1024n]) assert.equal(pageCacheEntry(single, index), 'hole', `index ${index}`);
    assert.equal(readCachedFile(single, 4096, 4), undefined);
    const q = cachedPage(k, 5n);
    const node = mapping(k, xaNode(k, 0, new Map([[5, q.page]])));
    assert.equal(pageCacheEntry(node, 5n), q.phys);
    // 69 & 63 is 5, but a shift-0 head node holds only indexes 0-63.
    assert.equal(pageCacheEntry(node, 69n), 'hole');
  });

  describe('hostile values end in typed errors', () => {
    it('a node that is its own child', () => {
      const k = new FakeKernel();
      const node = k.new('xa_node', { shift: 6 });
      k.write(node, 'xa_node', { 'slots[0]': node | 2n });
      assertOvmError(() => pageCacheEntry(mapping(k, node | 2n), 0n), BadDataError);
    });

    it('a chain of nodes deeper than an index has bits', () => {
      const k = new FakeKernel();
      let entry = cachedPage(k, 0n).page;
      for (let i = 0; i < 20; i++) entry = xaNode(k, 6, new Map([[0, entry]]));
      assertOvmError(() => pageCacheEntry(mapping(k, entry), 0n), BadDataError);
    });

    it('a node outside RAM', () => {
      const k = new FakeKernel();
      assertOvmError(() => pageCacheEntry(mapping(k, OUTSIDE_RAM | 2n), 0n), PageFaultError);
    });

    it('an entry that is not a struct page, or a folio that does not hold the index', () => {
      const k = new FakeKernel();
      const p = cachedPage(k, 500n);
      assertOvmError(() => pageCacheEntry(mapping(k, xaNode(k, 0, new Map([[3, p.page]]))), 3n), BadDataError);
      assertOvmError(() => pageCacheEntry(mapping(k, xaNode(k, 0, new Map([[3, p.va]]))), 3n), BadDataError);
      k.write(p.page, 'page', { index: 0xffff_ffff_ffff_ffffn });
      assertOvmError(() => pageCacheEntry(mapping(k, xaNode(k, 0, new Map([[3, p.page]]))), 3n), BadDataError);
    });
  });
});
