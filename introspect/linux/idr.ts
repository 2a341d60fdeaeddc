import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { xarrayEntries } from './xarray.js';

/** An idr of ints: 31 bits of id, at most 6 levels of 6 bits. */
const IDR_LEVELS = 6;

/**
 * The pointers an idr (struct idr: an xarray in idr_rt, ids from idr_base)
 * holds, in id order: what idr_for_each visits. Bounded: at most `max`
 * entries (the owner's count), and the xarray walk's own bounds.
 */
export function* idrEntries(idr: KObject, max: number): Generator<{ index: number; entry: bigint }> {
  const base = idr.member('idr_base').num();
  const head = idr.member('idr_rt.xa_head').value();
  let found = 0;
  for (const { index, count, entry } of xarrayEntries(idr.prog, head, { what: idr.path, maxLevels: IDR_LEVELS })) {
    if ((entry & 3n) !== 0n || count !== 1n) throw new BadDataError(`${idr.path}: entry 0x${entry.toString(16)} at ${index} is not a pointer`);
    if (++found > max) throw new BadDataError(`${idr.path} holds more than ${max} entries`);
    yield { index: Number(index) + base, entry };
  }
}
