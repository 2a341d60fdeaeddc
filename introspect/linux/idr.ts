import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/** include/linux/xarray.h: 64 slots a node, shift a multiple of 6; an idr of ints is at most 6 levels deep. */
const XA_CHUNK_SHIFT = 6n;
const MAX_DEPTH = 6;

const isNode = (entry: bigint) => (entry & 3n) === 2n && entry > 4096n;

/**
 * The pointers an idr (struct idr: an xarray in idr_rt, ids from idr_base)
 * holds, in id order: what idr_for_each visits. Bounded: at most `max`
 * entries (the owner's count), and, as in any real xarray, no more nodes
 * than a path per entry; a child's shift is its parent's less 6 (no loops).
 */
export function* idrEntries(idr: KObject, max: number): Generator<{ index: number; entry: bigint }> {
  const prog = idr.prog;
  const slotsOff = BigInt(prog.btf.memberOffset('xa_node', 'slots'));
  const shiftOff = BigInt(prog.btf.memberOffset('xa_node', 'shift'));
  const base = idr.member('idr_base').num();
  const head = idr.member('idr_rt.xa_head').value();
  let found = 0;
  let visited = 0;
  const leaf = (index: bigint, entry: bigint) => {
    if ((entry & 3n) !== 0n) throw new BadDataError(`${idr.path}: entry 0x${entry.toString(16)} at ${index} is not a pointer`);
    if (++found > max) throw new BadDataError(`${idr.path} holds more than ${max} entries`);
    return { index: Number(index) + base, entry };
  };
  function* node(addr: bigint, start: bigint, depth: number, expected?: bigint): Generator<{ index: number; entry: bigint }> {
    if (depth >= MAX_DEPTH || ++visited > (found + 1) * MAX_DEPTH) throw new BadDataError(`${idr.path} has more xa_nodes than its entries could fill`);
    const shift = BigInt(prog.read(addr + shiftOff, 1, 'xa_node.shift')[0]);
    if (shift % XA_CHUNK_SHIFT !== 0n || shift > 30n || (expected !== undefined && shift !== expected)) {
      throw new BadDataError(`xa_node at 0x${addr.toString(16)} of ${idr.path} has shift ${shift}`);
    }
    const slots = prog.read(addr + slotsOff, 64 * 8, 'xa_node.slots');
    for (let offset = 0; offset < 64; offset++) {
      const entry = slots.readBigUInt64LE(offset * 8);
      const index = start + (BigInt(offset) << shift);
      if (entry === 0n) continue;
      if ((entry & 3n) === 2n) {
        // Retry and zero entries (internal, below 4096) hold nothing; an idr has no siblings.
        if (entry <= 4096n) continue;
        if (shift === 0n) throw new BadDataError(`xa_node at 0x${addr.toString(16)} of ${idr.path} points below its last level`);
        yield* node(entry - 2n, index, depth + 1, shift - XA_CHUNK_SHIFT);
        continue;
      }
      yield leaf(index, entry);
    }
  }
  if (head === 0n) return;
  if (isNode(head)) yield* node(head - 2n, 0n, 0);
  else if ((head & 3n) !== 2n) yield leaf(0n, head);
}
