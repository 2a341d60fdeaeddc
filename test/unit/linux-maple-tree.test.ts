import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { mapleTreeForEach } from '../../introspect/linux/maple-tree.js';
import { forEachVma } from '../../introspect/linux/mm.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { MAPLE, MAX_INDEX, mapleNode, mmWithVmas } from './helpers/fake-maple.js';
import { FakeKernel, OUTSIDE_RAM } from './helpers/fake-program.js';

const treeOf = (k: FakeKernel, mm: bigint) => k.addr('mm_struct', mm, 'mm_mt');

describe('maple tree and VMAs on a fake kernel', () => {
  it('walks VMAs in address order across leaves, skipping gaps', () => {
    const k = new FakeKernel();
    const mm = k.new('mm_struct');
    const vma = (start: bigint, end: bigint) => k.new('vm_area_struct', { vm_start: start, vm_end: end });
    const [a, b, c] = [vma(0x400000n, 0x402000n), vma(0x600000n, 0x601000n), vma(0x7ffff000n, 0x80000000n)];
    const left = mapleNode(k, MAPLE.leaf, [0x3fffffn, 0x401fffn, 0x5fffffn, 0x600fffn, MAX_INDEX], [0n, a, 0n, b, 0n]);
    const right = mapleNode(k, MAPLE.leaf, [0x7fffefffn, 0x7fffffffn, MAX_INDEX], [0n, c, 0n]);
    const mid = mapleNode(k, MAPLE.range, [0x6fffffn, MAX_INDEX], [left, right]);
    k.write(mm, 'mm_struct', { 'mm_mt.ma_root': mapleNode(k, MAPLE.arange, [MAX_INDEX], [mid]) });
    const prog = k.program();
    assert.deepEqual([...mapleTreeForEach(prog, treeOf(k, mm))], [[0x400000n, 0x401fffn, a], [0x600000n, 0x600fffn, b], [0x7ffff000n, 0x7fffffffn, c]]);
    assert.deepEqual([...forEachVma(KObject.struct(prog, 'mm_struct', mm))].map((v) => v.address), [a, b, c]);
  });

  it('reads an empty tree and a single-entry root', () => {
    const k = new FakeKernel();
    const empty = k.new('mm_struct');
    const single = k.new('mm_struct', { 'mm_mt.ma_root': 0xffff888000123400n });
    const prog = k.program();
    assert.deepEqual([...mapleTreeForEach(prog, treeOf(k, empty))], []);
    assert.deepEqual([...mapleTreeForEach(prog, treeOf(k, single))], [[0n, 0n, 0xffff888000123400n]]);
  });

  describe('hostile values end in typed errors', () => {
    it('a node that is its own child', () => {
      const k = new FakeKernel();
      const mm = k.new('mm_struct');
      const va = k.alloc(256, 256);
      const self = va | (MAPLE.range << 3n) | 2n;
      k.write(va, 'maple_range_64', { 'pivot[0]': MAX_INDEX, 'slot[0]': self });
      k.write(mm, 'mm_struct', { 'mm_mt.ma_root': self });
      assertOvmError(() => mapleTreeForEach(k.program(), treeOf(k, mm)), BadDataError);
    });

    it('a chain of nodes deeper than MAPLE_HEIGHT_MAX', () => {
      const k = new FakeKernel();
      const mm = k.new('mm_struct');
      let node = mapleNode(k, MAPLE.leaf, [MAX_INDEX], [k.new('vm_area_struct')]);
      for (let i = 0; i < 40; i++) node = mapleNode(k, MAPLE.range, [MAX_INDEX], [node]);
      k.write(mm, 'mm_struct', { 'mm_mt.ma_root': node });
      assertOvmError(() => mapleTreeForEach(k.program(), treeOf(k, mm)), BadDataError);
    });

    it('dense and unknown node types', () => {
      for (const type of [MAPLE.dense, 7n, 15n]) {
        const k = new FakeKernel();
        const mm = k.new('mm_struct', { 'mm_mt.ma_root': mapleNode(k, type, [MAX_INDEX], [0x1000n]) });
        assertOvmError(() => mapleTreeForEach(k.program(), treeOf(k, mm)), BadDataError);
      }
    });

    it('a node outside RAM, or in user space', () => {
      for (const node of [OUTSIDE_RAM, 0x7f00_0000_0000n]) {
        const k = new FakeKernel();
        const mm = k.new('mm_struct', { 'mm_mt.ma_root': node | (MAPLE.leaf << 3n) | 2n });
        assertOvmError(() => forEachVma(KObject.struct(k.program(), 'mm_struct', mm)), PageFaultError);
      }
    });

    it('more entries than the caller allows', () => {
      const k = new FakeKernel();
      const { mm } = mmWithVmas(k, [{ start: 0x1000n, end: 0x2000n }, { start: 0x3000n, end: 0x4000n }, { start: 0x5000n, end: 0x6000n }]);
      assert.equal([...mapleTreeForEach(k.program(), treeOf(k, mm), 3)].length, 3);
      assertOvmError(() => mapleTreeForEach(k.program(), treeOf(k, mm), 2), BadDataError);
    });

    it('a BTF whose pivot and slot arrays run past the 256-byte node', () => {
      const shapes: [string, string][] = [['u64[40]', 'ptr[41]'], ['u64[15]', 'ptr[40]'], ['u64[40]', 'ptr[16]']];
      for (const [pivot, slot] of shapes) {
        const k = new FakeKernel({ structs: { maple_range_64: [['parent', 'ptr'], ['pivot', pivot], ['slot', slot]] } });
        const mm = k.new('mm_struct');
        const va = k.alloc(4096, 256);
        k.write(va, 'maple_range_64', { 'pivot[0]': MAX_INDEX, 'slot[0]': k.new('vm_area_struct') });
        k.write(mm, 'mm_struct', { 'mm_mt.ma_root': va | (MAPLE.leaf << 3n) | 2n });
        assertOvmError(() => mapleTreeForEach(k.program(), treeOf(k, mm)), BadDataError);
      }
    });

    it('every pivot and slot all-ones', () => {
      const k = new FakeKernel();
      const mm = k.new('mm_struct');
      const va = k.alloc(256, 256);
      k.put(va, Buffer.alloc(256, 0xff));
      k.write(mm, 'mm_struct', { 'mm_mt.ma_root': va | (MAPLE.arange << 3n) | 2n });
      assertOvmError(() => mapleTreeForEach(k.program(), treeOf(k, mm)));
    });
  });
});
