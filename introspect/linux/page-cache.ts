import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { structPagePhys } from './pages.js';

/** include/linux/xarray.h: 64 slots a node; internal entries end in binary 10. */
/** Largest folio in pages (MAX_ORDER 10 on x86-64 6.1). */
const MAX_FOLIO_PAGES = 1024n;
const XA_CHUNK_MASK = 63n;
const MAX_XA_DEPTH = 11;

function isInternal(entry: bigint): boolean {
  return (entry & 3n) === 2n;
}

/**
 * The guest-physical address of page `index` of a file's page cache
 * (mapping->i_pages), or undefined when it is not cached. Follows sibling
 * entries of large folios to their head and offsets into the folio.
 */
export function pageCachePhys(mapping: KObject, index: bigint): bigint | undefined {
  const e = pageCacheEntry(mapping, index);
  return typeof e === 'bigint' ? e : undefined;
}

/**
 * What the page cache holds at `index`: the page's guest-physical address,
 * 'hole' when nothing is there, or 'value' for a value entry (a shadow of
 * an evicted page, or on tmpfs a page swapped out).
 */
export function pageCacheEntry(mapping: KObject, index: bigint): bigint | 'hole' | 'value' {
  const prog = mapping.prog;
  const slotsOff = BigInt(prog.btf.memberOffset('xa_node', 'slots'));
  const shiftOff = BigInt(prog.btf.memberOffset('xa_node', 'shift'));
  let entry = mapping.member('i_pages.xa_head').value();
  // xas_start() (lib/xarray.c): a head that is not a node holds index 0 only,
  // and a head node of `shift` covers indexes below 64 << shift.
  if (!(isInternal(entry) && entry > 4096n)) {
    if (index !== 0n) return 'hole';
  } else {
    const shift = BigInt(prog.read(entry - 2n + shiftOff, 1, 'xa_node.shift')[0]);
    if (index >> shift > XA_CHUNK_MASK) return 'hole';
  }
  for (let depth = 0; isInternal(entry) && entry > 4096n; depth++) {
    if (depth > MAX_XA_DEPTH) throw new BadDataError(`page cache of ${mapping.path} is deeper than ${MAX_XA_DEPTH}`);
    const node = entry - 2n;
    const shift = BigInt(prog.read(node + shiftOff, 1, 'xa_node.shift')[0]);
    let offset = (index >> shift) & XA_CHUNK_MASK;
    entry = prog.u64(node + slotsOff + offset * 8n, 'xa_node.slots');
    if (isInternal(entry) && entry < 256n * 4n + 2n) {
      // A sibling entry names the slot of the folio's head (xa_mk_sibling).
      offset = entry >> 2n;
      entry = prog.u64(node + slotsOff + offset * 8n, 'xa_node.slots');
    }
    if (shift === 0n) break;
  }
  if (entry === 0n || isInternal(entry)) return 'hole';
  if ((entry & 1n) === 1n) return 'value';
  const head = structPagePhys(prog, entry, `page cache entry of ${mapping.path}`);
  const inFolio = index - KObject.struct(prog, 'page', entry).member('index').value();
  if (inFolio < 0n || inFolio >= MAX_FOLIO_PAGES) throw new BadDataError(`page cache folio at 0x${entry.toString(16)} does not hold index ${index}`);
  return head + (inFolio << 12n);
}

/**
 * Bytes [offset, offset+length) of a file as its page cache holds them, or
 * undefined when a page of that range is not cached (it would have to come
 * from disk, which the host cannot reach).
 */
export function readCachedFile(mapping: KObject, offset: number, length: number): Buffer | undefined {
  const out = Buffer.alloc(length);
  for (let done = 0; done < length;) {
    const pos = offset + done;
    const n = Math.min(4096 - (pos % 4096), length - done);
    const phys = pageCachePhys(mapping, BigInt(Math.floor(pos / 4096)));
    if (phys === undefined) return undefined;
    mapping.prog.mem.readInto(phys + BigInt(pos % 4096), out.subarray(done, done + n), `page cache of ${mapping.path}`);
    done += n;
  }
  return out;
}
