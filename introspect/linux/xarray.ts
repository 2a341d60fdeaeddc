import { BadDataError } from '../../common/errors.js';
import type { Program } from '../kernel/program.js';

/** include/linux/xarray.h: 64 slots a node, each level 6 bits of the index; internal entries end in binary 10. */
export const XA_CHUNK_SHIFT = 6n;
export const XA_CHUNK_MASK = 63n;

/** An internal entry (a node, a sibling, a retry or zero entry): its low bits are 10. */
export function isInternal(entry: bigint): boolean {
  return (entry & 3n) === 2n;
}

/** A node pointer, as opposed to the small internal entries (siblings, retry, zero) kept below 4096. */
export function isNode(entry: bigint): boolean {
  return isInternal(entry) && entry > 4096n;
}

/** One present entry: its first index and how many indices it covers with its sibling slots. */
export interface XaEntry {
  index: bigint;
  count: bigint;
  /** The pointer or value entry (bit 0 set) as the slot holds it. */
  entry: bigint;
}

export interface XaWalk {
  /** Names the xarray in errors: "page cache of ...", "... ipcs_idr". */
  what: string;
  /** Levels of nodes a real tree of this kind can have. */
  maxLevels: number;
  /** Entries at or past this index are not visited. */
  end?: bigint;
  /** Node visits, taken from a count the caller's walks share. */
  budget?: { nodes: number };
}

/**
 * The present entries of the xarray whose xa_head is `head`, in index order,
 * visiting only the xa_nodes that exist. Bounded for untrusted RAM: a child's
 * shift is its parent's less 6 (no loops, no deeper than `maxLevels`), and
 * as every node of a real xarray leads to an entry, a walk that visits more
 * than a path of nodes per entry found is a looping, shared or bloated tree.
 * Both end in BadDataError naming `what`.
 */
export function* xarrayEntries(prog: Program, head: bigint, walk: XaWalk): Generator<XaEntry> {
  const slotsOff = BigInt(prog.btf.memberOffset('xa_node', 'slots'));
  const shiftOff = BigInt(prog.btf.memberOffset('xa_node', 'shift'));
  const end = walk.end;
  const maxShift = BigInt(walk.maxLevels - 1) * XA_CHUNK_SHIFT;
  let visited = 0;
  let found = 0;
  function* node(addr: bigint, base: bigint, expected?: bigint): Generator<XaEntry> {
    if (++visited > (found + 1) * walk.maxLevels || (walk.budget && --walk.budget.nodes < 0)) {
      throw new BadDataError(`${walk.what} has more xa_nodes than its entries could fill`);
    }
    const shift = BigInt(prog.read(addr + shiftOff, 1, 'xa_node.shift')[0]);
    if (shift % XA_CHUNK_SHIFT !== 0n || shift > maxShift || (expected !== undefined && shift !== expected)) {
      throw new BadDataError(`xa_node at 0x${addr.toString(16)} of ${walk.what} has shift ${shift}`);
    }
    const slots = prog.read(addr + slotsOff, 64 * 8, 'xa_node.slots');
    for (let offset = 0; offset < 64; offset++) {
      const index = base + (BigInt(offset) << shift);
      if (end !== undefined && index >= end) return;
      const entry = slots.readBigUInt64LE(offset * 8);
      if (entry === 0n) continue;
      if (isInternal(entry)) {
        // Siblings are counted with their head; retry and zero entries hold nothing.
        if (!isNode(entry)) continue;
        if (shift === 0n) throw new BadDataError(`xa_node at 0x${addr.toString(16)} of ${walk.what} points below its last level`);
        yield* node(entry - 2n, index, shift - XA_CHUNK_SHIFT);
        continue;
      }
      // xa_mk_sibling(offset): the slots after a large entry's name its slot.
      const sibling = (BigInt(offset) << 2n) | 2n;
      let siblings = 0;
      while (offset + 1 + siblings < 64 && slots.readBigUInt64LE((offset + 1 + siblings) * 8) === sibling) siblings++;
      found++;
      yield { index, count: BigInt(siblings + 1) << shift, entry };
    }
  }
  if (head === 0n) return;
  // xas_start(): a head that is not a node holds index 0 itself.
  if (!isInternal(head)) {
    if (end === undefined || end > 0n) yield { index: 0n, count: 1n, entry: head };
    return;
  }
  if (isNode(head)) yield* node(head - 2n, 0n);
}
