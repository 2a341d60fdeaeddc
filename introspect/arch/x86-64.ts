import { OvmError } from '../../common/errors.js';
import { PhysicalMemory } from '../memory/physical-memory.js';

/**
 * x86-64 page tables (arch/x86/include/asm/pgtable_types.h). The format is
 * data: levels from the top (PML5 or PML4) down to PT, each 9 index bits.
 */
const LEVELS = [
  { name: 'pml5', shift: 48n, large: false },
  { name: 'pml4', shift: 39n, large: false },
  { name: 'pdpt', shift: 30n, large: true },
  { name: 'pd', shift: 21n, large: true },
  { name: 'pt', shift: 12n, large: false },
] as const;

const P = 1n << 0n;
const RW = 1n << 1n;
const US = 1n << 2n;
const PSE = 1n << 7n;
/** On a non-present entry, bit 8 (G) is _PAGE_PROTNONE: a PROT_NONE page, still resident. */
const PROTNONE = 1n << 8n;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
const U64 = (1n << 64n) - 1n;

export interface Translation {
  phys: bigint;
  /** Size of the page mapping it: 4 KiB, 2 MiB or 1 GiB. */
  pageSize: bigint;
  writable: boolean;
  user: boolean;
  /** PROT_NONE: resident, but the entry is not present. */
  protNone: boolean;
}

/** Why an address does not translate: no entry at some level, or a swap/migration entry in the PTE. */
export class PageFaultError extends OvmError {
  override readonly code = 'PAGE_FAULT';
  constructor(readonly address: bigint, readonly level: string, readonly entry: bigint, readonly swapped: boolean, what: string) {
    super(`${what} at 0x${address.toString(16)}: ${swapped ? 'swapped out (swap or migration entry)' : 'not mapped'} ` +
      `at ${level} (entry 0x${entry.toString(16)})`);
  }
}

/** PFN of a non-present, non-zero entry is stored inverted (L1TF, asm/pgtable-invert.h). */
function entryAddress(entry: bigint, present: boolean): bigint {
  return (present ? entry : ~entry & U64) & ADDR_MASK;
}

/**
 * Walks the page tables rooted at physical `root` for `va`. Top-level NX
 * is ignored: with PTI the kernel copy of a user PGD has NX set there
 * (__pti_set_user_pgtbl), and permissions come from the VMA anyway.
 */
export function translate(mem: PhysicalMemory, root: bigint, va: bigint, levels: 4 | 5, smeMask = 0n, what = 'virtual address'): Translation {
  let table = root & ~0xfffn;
  let writable = true;
  let user = true;
  const entryBuf = Buffer.alloc(8);
  for (const level of levels === 5 ? LEVELS : LEVELS.slice(1)) {
    const index = (va >> level.shift) & 0x1ffn;
    mem.readInto(table + index * 8n, entryBuf, `${what}: ${level.name} entry`);
    const entry = entryBuf.readBigUInt64LE(0) & ~smeMask;
    const present = (entry & P) !== 0n;
    const protNone = !present && (entry & PROTNONE) !== 0n && level.name === 'pt';
    const huge = level.large && (entry & PSE) !== 0n;
    if (!present && !protNone && !(huge && (entry & PROTNONE) !== 0n)) {
      throw new PageFaultError(va, level.name, entry, entry !== 0n && level.name === 'pt', what);
    }
    writable &&= (entry & RW) !== 0n;
    user &&= (entry & US) !== 0n;
    if (level.name === 'pt' || huge) {
      const pageSize = 1n << level.shift;
      const base = entryAddress(entry, present) & ~(pageSize - 1n);
      return { phys: base | (va & (pageSize - 1n)), pageSize, writable, user, protNone: !present };
    }
    table = entryAddress(entry, true);
  }
  throw new Error('unreachable');
}


/** A run of virtual pages: resident at `phys` onwards (physically contiguous), or not. */
export interface PageRun {
  va: bigint;
  size: bigint;
  /** Undefined when not resident. */
  phys?: bigint;
  /** Not resident because swapped out (a swap or migration entry), not merely never touched. */
  swapped: boolean;
}

/** Told of every table a walk reads (it may throw to end the walk); true asks the walker to hand its consumer a run now. */
export interface WalkObserver {
  table(entries: number): boolean;
  /**
   * Physical address of the zero page: PTEs that map it come out as
   * untouched (it reads as zeros, as untouched anonymous memory does), in
   * long runs rather than one run per PTE.
   */
  zeroPage?: number;
}

/**
 * Walks the page tables for [start, end) reading each table page once, and
 * yields runs of pages merged where they are physically contiguous: the fast
 * path for reading large user ranges (translate() costs a read per level).
 * With an observer, a run may be yielded in pieces (when it asks for a
 * turn), so that a consumer can yield to the event loop mid-walk.
 */
export function* walkRange(mem: PhysicalMemory, root: bigint, start: bigint, end: bigint, levels: 4 | 5, smeMask = 0n, what = 'user memory',
  observer?: WalkObserver): Generator<PageRun> {
  const levelList = levels === 5 ? LEVELS : LEVELS.slice(1);
  let pending: PageRun | undefined;
  const table = Buffer.alloc(4096 * levelList.length);
  function* emit(run: PageRun): Generator<PageRun> {
    if (pending && pending.va + pending.size === run.va && pending.swapped === run.swapped &&
        (pending.phys === undefined ? run.phys === undefined : run.phys !== undefined && pending.phys + pending.size === run.phys)) {
      pending.size += run.size;
      return;
    }
    if (pending) yield pending;
    pending = { ...run };
  }
  function* walk(depth: number, tablePhys: bigint, base: bigint): Generator<PageRun> {
    const level = levelList[depth];
    const span = 1n << level.shift;
    const buf = table.subarray(depth * 4096, depth * 4096 + 4096);
    mem.readInto(tablePhys & ~0xfffn, buf, `${what}: ${level.name} table`);
    const first = start > base ? Number((start - base) >> level.shift) : 0;
    if (observer) {
      const lastEntry = end - base >= 512n * span ? 511 : Number((end - base - 1n) >> level.shift);
      if (observer.table(lastEntry - first + 1) && pending) {
        yield pending;
        pending = undefined;
      }
    }
    if (level.name === 'pt') {
      yield* leaf(buf, base, first);
      return;
    }
    for (let i = first; i < 512; i++) {
      const va = base + BigInt(i) * span;
      if (va >= end) break;
      const entry = buf.readBigUInt64LE(i * 8) & ~smeMask;
      const lo = va > start ? va : start;
      const hi = va + span < end ? va + span : end;
      const present = (entry & P) !== 0n;
      const huge = level.large && (entry & PSE) !== 0n;
      if (huge && (present || (entry & PROTNONE) !== 0n)) {
        yield* emit({ va: lo, size: hi - lo, phys: entryAddress(entry, present) + (lo - va), swapped: false });
      } else if (!present) {
        yield* emit({ va: lo, size: hi - lo, swapped: false });
      } else {
        yield* walk(depth + 1, entryAddress(entry, true), va);
      }
    }
  }
  /**
   * A page table's 512 PTEs, in plain numbers (a hot loop: BigInt per entry
   * costs several times more); BigInt only where a run ends.
   */
  function* leaf(buf: Buffer, base: bigint, first: number): Generator<PageRun> {
    const smeHi = Number((smeMask >> 32n) & 0xffffffffn);
    const zero = observer?.zeroPage ?? -1;
    const last = end - base >= 512n * 4096n ? 511 : Number((end - base - 1n) >> 12n);
    let runStart = first;
    let runKind = -1; // 0 untouched, 1 swapped, 2 resident
    let runPhys = 0; // physical address of page runStart, when resident
    const flush = function* (upTo: number): Generator<PageRun> {
      if (runKind < 0 || upTo <= runStart) return;
      const va0 = base + BigInt(runStart) * 4096n;
      const lo = va0 > start ? va0 : start;
      const va1 = base + BigInt(upTo) * 4096n;
      const hi = va1 < end ? va1 : end;
      yield* emit({ va: lo, size: hi - lo, ...(runKind === 2 ? { phys: BigInt(runPhys) + (lo - va0) } : {}), swapped: runKind === 1 });
    };
    for (let i = first; i <= last; i++) {
      const lo32 = buf.readUInt32LE(i * 8);
      const hi32 = (buf.readUInt32LE(i * 8 + 4) & ~smeHi) >>> 0;
      let kind: number;
      let phys = 0;
      if (lo32 & 1) {
        kind = 2;
        phys = (hi32 & 0xfffff) * 4294967296 + ((lo32 & 0xfffff000) >>> 0);
        if (phys === zero) kind = 0;
      } else if (lo32 & 0x100) {
        kind = 2; // PROT_NONE: resident, PFN inverted (L1TF)
        phys = (~hi32 & 0xfffff) * 4294967296 + ((~lo32 & 0xfffff000) >>> 0);
      } else {
        kind = lo32 === 0 && hi32 === 0 ? 0 : 1;
      }
      if (kind !== runKind || (kind === 2 && phys !== runPhys + (i - runStart) * 4096)) {
        yield* flush(i);
        runStart = i;
        runKind = kind;
        runPhys = phys;
      }
    }
    yield* flush(last + 1);
  }
  // Canonical address: the walk's base for the top level is the sign-extended zero of the half the range is in.
  const top = levels === 5 ? 57n : 48n;
  const half = (start >> (top - 1n)) & 1n ? ((1n << 64n) - 1n) ^ ((1n << top) - 1n) : 0n;
  if (end - start > 0n) yield* walk(0, root, half);
  if (pending) yield pending;
}
