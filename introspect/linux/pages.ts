import { BadDataError } from '../../common/errors.js';
import { Program } from '../kernel/program.js';
import { kernelImageToPhys } from '../kernel/vmcoreinfo.js';

/** include/linux/page-flags.h: low bit of page->mapping marks an anonymous (or KSM) page. */
const PAGE_MAPPING_ANON = 1n;
const U64_MAX = (1n << 64n) - 1n;

/** sizeof(struct page): vmcoreinfo's SIZE(page), else BTF's. */
function structPageSize(prog: Program): bigint {
  return BigInt(prog.info.sizes.get('page') ?? prog.btf.struct('page').size);
}

/** Guest-physical address of the page a struct page pointer names (SPARSEMEM_VMEMMAP: vmemmap_base + pfn * sizeof(struct page)). */
export function structPagePhys(prog: Program, page: bigint, what: string): bigint {
  const size = structPageSize(prog);
  const off = page - prog.vmemmapBase;
  if (page < prog.vmemmapBase || off % size !== 0n) throw new BadDataError(`${what} 0x${page.toString(16)} is not a struct page`);
  return (off / size) << 12n;
}

/**
 * The struct page side of physical memory (SPARSEMEM_VMEMMAP, as on every
 * x86-64 kernel): which page is the zero page, and whether a page is
 * anonymous, which is what /proc/PID/pagemap reports as "file page" (PM_FILE)
 * and what CRIU uses to skip private file pages never written.
 */
export class PageInfo {
  private readonly pageSize: bigint;
  private readonly mappingOff: bigint;
  private readonly headOff: bigint;
  /** Physical addresses of the zero page and the huge zero page (when one was ever allocated). */
  readonly zeroPages: { phys: bigint; size: bigint }[] = [];

  constructor(private readonly prog: Program) {
    this.pageSize = structPageSize(prog);
    this.mappingOff = BigInt(prog.btf.memberOffset('page', 'mapping'));
    this.headOff = BigInt(prog.btf.memberOffset('page', 'compound_head'));
    const zero = prog.symbols.lookup('empty_zero_page');
    if (!zero) throw new BadDataError('kernel has no empty_zero_page symbol');
    this.zeroPages.push({ phys: kernelImageToPhys(prog.info, zero.address), size: 4096n });
    // mm/huge_memory.c: huge_zero_pfn is ~0UL until the huge zero page is first allocated.
    const hugePfn = prog.symbols.lookup('huge_zero_pfn');
    if (hugePfn) {
      const pfn = prog.u64(hugePfn.address, 'huge_zero_pfn');
      if (pfn !== U64_MAX) this.zeroPages.push({ phys: pfn << 12n, size: 2n << 20n });
    }
  }

  /** Whether the 4 KiB page at `phys` is (part of) a zero page. */
  isZero(phys: bigint): boolean {
    return this.zeroPages.some((z) => phys >= z.phys && phys < z.phys + z.size);
  }

  /** PageAnon() of the page at `phys`, looking through a tail page to its head (compound_head bit 0). */
  isAnon(phys: bigint): boolean {
    let page = this.prog.vmemmapBase + (phys >> 12n) * this.pageSize;
    const head = this.prog.u64(page + this.headOff, 'page.compound_head');
    if (head & 1n) page = head - 1n;
    const mapping = this.prog.u64(page + this.mappingOff, 'page.mapping');
    return (mapping & PAGE_MAPPING_ANON) !== 0n;
  }

  /** Reads `len` bytes at `offset` into the page(s) starting at struct page `page` (pipe buffers, skb frags; compound pages are contiguous). */
  readPageData(page: bigint, offset: number, len: number, what: string): Buffer {
    if (offset < 0 || len < 0 || offset + len > 1 << 20) throw new BadDataError(`${what}: ${len} bytes at offset ${offset} of a page`);
    return this.prog.mem.read(structPagePhys(this.prog, page, what) + BigInt(offset), len, what);
  }
}
