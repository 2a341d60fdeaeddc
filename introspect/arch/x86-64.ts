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

