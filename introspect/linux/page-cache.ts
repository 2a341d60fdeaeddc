import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { structPagePhys } from './pages.js';
import { XA_CHUNK_MASK, isInternal, xarrayEntries } from './xarray.js';

/** Largest folio in pages (MAX_ORDER 10 on x86-64 6.1). */
const MAX_FOLIO_PAGES = 1024n;
/** A page cache's xarray covers 64-bit indices: 11 levels of 6 bits. */
const MAX_XA_DEPTH = 11;

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
  return folioPagePhys(mapping, entry, index);
}

/** The guest-physical address of page `index` of the folio whose head struct page is `entry`. */
function folioPagePhys(mapping: KObject, entry: bigint, index: bigint): bigint {
  const prog = mapping.prog;
  const head = structPagePhys(prog, entry, `page cache entry of ${mapping.path}`);
  const inFolio = index - KObject.struct(prog, 'page', entry).member('index').value();
  if (inFolio < 0n || inFolio >= MAX_FOLIO_PAGES) throw new BadDataError(`page cache folio at 0x${entry.toString(16)} does not hold index ${index}`);
  return head + (inFolio << 12n);
}

/** One present entry of a page cache: the indices its slot and siblings cover, and its page or value. */
export interface CachedRun {
  index: bigint;
  count: bigint;
  /** A value entry (an evicted page's shadow; on tmpfs a page swapped out). */
  value: boolean;
}

/**
 * The present entries of a file's page cache below index `end`, in index
 * order, visiting only the xa_nodes that exist (a sparse file costs what it
 * holds, not its size); each node visit is taken from `budget`, shared by
 * the caller's walks. Bounded as xarrayEntries bounds any xarray.
 */
export function* pageCacheRuns(mapping: KObject, end: bigint, budget: { nodes: number }): Generator<CachedRun> {
  const head = mapping.member('i_pages.xa_head').value();
  const walk = { what: `page cache of ${mapping.path}`, maxLevels: MAX_XA_DEPTH + 1, end, budget };
  for (const { index, count, entry } of xarrayEntries(mapping.prog, head, walk)) {
    if (count > MAX_FOLIO_PAGES) throw new BadDataError(`page cache entry 0x${entry.toString(16)} of ${mapping.path} covers ${count} pages`);
    yield { index, count, value: (entry & 1n) === 1n };
  }
}

/** The guest-physical address of each page of a run pageCacheRuns found, and its index. */
export function* runPages(mapping: KObject, run: CachedRun, end: bigint): Generator<{ index: bigint; phys: bigint }> {
  for (let index = run.index; index < run.index + run.count && index < end; index++) {
    const e = pageCacheEntry(mapping, index);
    if (typeof e === 'bigint') yield { index, phys: e };
  }
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
