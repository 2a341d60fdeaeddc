import { BadDataError } from '../../common/errors.js';
import { Program } from '../kernel/program.js';

/** include/linux/maple_tree.h: node type in bits 3-6 of an encoded node pointer, node address in the rest. */
const NODE_TYPE_SHIFT = 3n;
const NODE_TYPE_MASK = 0xfn;
const NODE_MASK = 0xffn;
const MAPLE_DENSE = 0n;
const MAPLE_LEAF_64 = 1n;
const MAPLE_RANGE_64 = 2n;
const MAPLE_ARANGE_64 = 3n;
/** Height is at most 31 (MAPLE_HEIGHT_MAX); a deeper walk is corrupt data. */
const MAX_HEIGHT = 31;
/** sizeof(struct maple_node): the walker reads this much of each node. */
const NODE_SIZE = 256;

/** xa_is_node(): internal entry (low bits 10) above the small-value range. */
function isNode(entry: bigint): boolean {
  return (entry & 3n) === 2n && entry > 4096n;
}

interface Layout {
  range: { pivots: number; slots: number; nPivots: number; nSlots: number };
  arange: { pivots: number; slots: number; nPivots: number; nSlots: number };
}

function layout(prog: Program): Layout {
  const btf = prog.btf;
  const shape = (struct: string) => {
    const t = btf.struct(struct);
    const pivot = btf.member(t, 'pivot');
    const slot = btf.member(t, 'slot');
    if (!pivot || !slot) throw new BadDataError(`struct ${struct} has no pivot/slot members`);
    const p = btf.resolve(pivot.type);
    const s = btf.resolve(slot.type);
    if (p.kind !== 'array' || s.kind !== 'array') throw new BadDataError(`struct ${struct} pivot/slot are not arrays`);
    // The types come from guest RAM: both arrays must lie, 8-byte aligned, within the node read.
    const within = (m: { bitOffset: number }, n: number) => m.bitOffset % 64 === 0 && m.bitOffset / 8 + 8 * n <= NODE_SIZE;
    if (!within(pivot, p.nelems) || !within(slot, s.nelems)) {
      throw new BadDataError(`struct ${struct}: pivot[${p.nelems}] at bit ${pivot.bitOffset} or slot[${s.nelems}] at bit ${slot.bitOffset} lies outside a ${NODE_SIZE}-byte node`);
    }
    return { pivots: pivot.bitOffset / 8, slots: slot.bitOffset / 8, nPivots: p.nelems, nSlots: s.nelems };
  };
  return { range: shape('maple_range_64'), arange: shape('maple_arange_64') };
}

/**
 * Entries of a maple tree (lib/maple_tree.c) as [first, last, entry], in
 * index order, as drgn's mt_for_each does. Bounded by height and count.
 */
export function* mapleTreeForEach(prog: Program, tree: bigint, bound = 1 << 20): Generator<[bigint, bigint, bigint]> {
  const root = prog.u64(tree + BigInt(prog.btf.memberOffset('maple_tree', 'ma_root')), 'maple_tree.ma_root');
  if (root === 0n) return;
  if (!isNode(root)) {
    yield [0n, 0n, root];
    return;
  }
  const shapes = layout(prog);
  let count = 0;
  const seen = new Set<bigint>();
  function* walk(enode: bigint, min: bigint, max: bigint, depth: number): Generator<[bigint, bigint, bigint]> {
    if (depth > MAX_HEIGHT) throw new BadDataError(`maple tree at 0x${tree.toString(16)} is deeper than ${MAX_HEIGHT}`);
    const node = enode & ~NODE_MASK;
    if (seen.has(node)) throw new BadDataError(`maple tree at 0x${tree.toString(16)} reaches node 0x${node.toString(16)} twice`);
    seen.add(node);
    const type = (enode >> NODE_TYPE_SHIFT) & NODE_TYPE_MASK;
    if (type === MAPLE_DENSE) throw new BadDataError(`maple tree at 0x${tree.toString(16)}: dense nodes are not used for VMAs`);
    const shape = type === MAPLE_ARANGE_64 ? shapes.arange : type === MAPLE_RANGE_64 || type === MAPLE_LEAF_64 ? shapes.range : undefined;
    if (!shape) throw new BadDataError(`maple node 0x${node.toString(16)} has type ${type}`);
    const raw = prog.read(node, NODE_SIZE, `maple node 0x${node.toString(16)}`);
    const leaf = type === MAPLE_LEAF_64;
    let first = min;
    for (let i = 0; i < shape.nSlots; i++) {
      const pivot = i < shape.nPivots ? raw.readBigUInt64LE(shape.pivots + 8 * i) : max;
      // Unused trailing slots have a zero pivot.
      if (i > 0 && pivot === 0n) break;
      const slot = raw.readBigUInt64LE(shape.slots + 8 * i);
      const last = pivot > max ? max : pivot;
      if (slot !== 0n) {
        if (leaf) {
          if (++count > bound) throw new BadDataError(`maple tree at 0x${tree.toString(16)} has more than ${bound} entries`);
          yield [first, last, slot];
        } else {
          yield* walk(slot, first, last, depth + 1);
        }
      }
      if (pivot >= max) break;
      first = pivot + 1n;
    }
  }
  yield* walk(root, 0n, (1n << 64n) - 1n, 0);
}
