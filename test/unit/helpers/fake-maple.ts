import { FakeKernel } from './fake-program.js';

/** include/linux/maple_tree.h node types, as encoded in bits 3-6 of a node pointer. */
export const MAPLE = { dense: 0n, leaf: 1n, range: 2n, arange: 3n } as const;
export const MAX_INDEX = (1n << 64n) - 1n;

/**
 * A maple node of `type` with these pivots and slots, 256-byte aligned as
 * the kernel's are; returns the encoded pointer a parent slot or ma_root holds.
 */
export function mapleNode(k: FakeKernel, type: bigint, pivots: bigint[], slots: bigint[]): bigint {
  const struct = type === MAPLE.arange ? 'maple_arange_64' : 'maple_range_64';
  const va = k.alloc(256, 256);
  const values: Record<string, bigint> = {};
  pivots.forEach((p, i) => (values[`pivot[${i}]`] = p));
  slots.forEach((s, i) => (values[`slot[${i}]`] = s));
  k.write(va, struct, values);
  return va | (type << 3n) | 2n;
}

/**
 * An mm whose maple tree maps each VMA [start, end): one leaf under an
 * arange root, gaps as empty slots, as mas_store leaves a small tree.
 */
export function mmWithVmas(k: FakeKernel, vmas: { start: bigint; end: bigint; values?: Record<string, bigint | number> }[], mm: Record<string, bigint | number> = {}): { mm: bigint; vmas: bigint[] } {
  const mmVa = k.new('mm_struct', mm);
  const addrs = vmas.map((v) => k.new('vm_area_struct', { vm_start: v.start, vm_end: v.end, vm_mm: mmVa, vm_flags: 0x73, ...v.values }));
  const pivots: bigint[] = [];
  const slots: bigint[] = [];
  let at = 0n;
  vmas.forEach((v, i) => {
    if (v.start > at) {
      pivots.push(v.start - 1n);
      slots.push(0n);
    }
    pivots.push(v.end - 1n);
    slots.push(addrs[i]);
    at = v.end;
  });
  pivots.push(MAX_INDEX);
  slots.push(0n);
  const leaf = mapleNode(k, MAPLE.leaf, pivots, slots);
  k.write(mmVa, 'mm_struct', { 'mm_mt.ma_root': mapleNode(k, MAPLE.arange, [MAX_INDEX], [leaf]) });
  return { mm: mmVa, vmas: addrs };
}
