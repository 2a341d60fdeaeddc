import { BadDataError, InvalidArgumentError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { translate } from '../arch/x86-64.js';
import { Btf } from '../btf/index.js';
import { CachedMemory } from '../memory/cached-memory.js';
import { PhysicalMemory } from '../memory/physical-memory.js';
import { Kallsyms } from './kallsyms.js';
import { VmcoreInfo, findVmcoreinfo, kernelImageToPhys, verifyUtsname } from './vmcoreinfo.js';

const START_KERNEL_MAP = 0xffffffff80000000n;
/** Largest BTF blob accepted from a guest (Debian 6.1's is about 4.3 MB). */
const MAX_BTF = 64 << 20;
/** Largest single virtual read: callers stream bigger ranges. */
const MAX_VIRT_READ = 64 << 20;
const PAGE = 4096n;

/**
 * A guest kernel as seen from its RAM alone (in the manner of drgn's
 * Program): physical memory, vmcoreinfo, kallsyms, BTF types and the
 * randomized bases of the direct map, vmalloc and vmemmap.
 */
export class Program {
  /** Physical address of swapper_pg_dir, the kernel's top-level page table. */
  readonly kernelRoot: bigint;
  readonly pageOffset: bigint;
  readonly vmallocBase: bigint;
  readonly vmemmapBase: bigint;
  /** End of the direct map: guest RAM ends below this physical address. */
  private readonly directMapSize: bigint;
  private btfCache?: Btf;
  private readonly tlb = new Map<bigint, bigint>();

  private constructor(readonly mem: CachedMemory, readonly info: VmcoreInfo, readonly symbols: Kallsyms) {
    this.kernelRoot = kernelImageToPhys(info, info.symbols.get('swapper_pg_dir') ?? symbols.address('init_top_pgt'));
    const u64 = (name: string) => mem.read(kernelImageToPhys(info, symbols.address(name)), 8, name).readBigUInt64LE(0);
    // arch/x86/mm/kaslr.c randomizes these three (CONFIG_RANDOMIZE_MEMORY); they are variables, not in vmcoreinfo.
    this.pageOffset = u64('page_offset_base');
    this.vmallocBase = u64('vmalloc_base');
    this.vmemmapBase = u64('vmemmap_base');
    const top = mem.segments.reduce((max, s) => (s.gpa + s.size > max ? s.gpa + s.size : max), 0n);
    this.directMapSize = top;
  }

  /**
   * Finds the kernel in guest RAM and checks what it found: init_uts_ns
   * against vmcoreinfo, then the BTF and init_task (verify()). Only then are
   * the decoded kallsyms names committed to the host's cache.
   */
  static attach(source: PhysicalMemory): Program {
    const t0 = Date.now();
    const info = findVmcoreinfo(source);
    verifyUtsname(source, info);
    const prog = Program.fromParts(source, info, Kallsyms.load(source, info));
    prog.verify();
    prog.symbols.commitCache();
    log.debug('attached to guest kernel', { release: info.osRelease, ms: Date.now() - t0 });
    return prog;
  }

  /**
   * Checks that the parts found make one kernel: its BTF parses and knows
   * task_struct, and init_task (the idle task, pid 0) reads as such through
   * the kernel image mapping.
   */
  verify(): void {
    const btf = this.btf;
    const pidOff = btf.memberOffset('task_struct', 'pid');
    btf.memberOffset('task_struct', 'tasks');
    const task = this.symbols.address('init_task');
    const pid = this.read(task + BigInt(pidOff), 4, 'init_task.pid').readInt32LE(0);
    if (pid !== 0) throw new BadDataError(`init_task at 0x${task.toString(16)} has pid ${pid}, not 0: kallsyms or BTF do not match this kernel`);
  }

  /**
   * A Program over parts already found: attach() finds them in a guest's
   * RAM; unit tests build them in fake memory.
   */
  static fromParts(source: PhysicalMemory, info: VmcoreInfo, symbols: Kallsyms): Program {
    return new Program(new CachedMemory(source), info, symbols);
  }

  /**
   * Drops what was cached of guest RAM: call it before reading state that
   * may have changed since the last reads (the guest keeps running).
   */
  refresh(): void {
    this.mem.invalidate();
    this.tlb.clear();
  }

  get pagingLevels(): 4 | 5 {
    return this.info.pagingLevels;
  }

  /** The kernel's BTF (between __start_BTF and __stop_BTF), parsed on first use. */
  get btf(): Btf {
    if (!this.btfCache) {
      const start = this.symbols.address('__start_BTF');
      const stop = this.symbols.address('__stop_BTF');
      if (stop <= start || stop - start > BigInt(MAX_BTF)) throw new BadDataError(`BTF section of ${stop - start} bytes`);
      this.btfCache = Btf.parse(this.mem.read(kernelImageToPhys(this.info, start), Number(stop - start), 'kernel BTF'));
    }
    return this.btfCache;
  }

  /** Kernel virtual to guest-physical: image window, direct map, else a walk of swapper_pg_dir. */
  toPhys(va: bigint, what = 'kernel address'): bigint {
    if (va >= START_KERNEL_MAP && va - START_KERNEL_MAP < this.imageSize) return kernelImageToPhys(this.info, va);
    if (va >= this.pageOffset && va - this.pageOffset < this.directMapSize) return va - this.pageOffset;
    // vmalloc (kernel stacks) and modules: walked once per page until the next refresh().
    const page = va & ~(PAGE - 1n);
    let phys = this.tlb.get(page);
    if (phys === undefined) {
      phys = translate(this.mem, this.kernelRoot, page, this.pagingLevels, this.smeMask, what).phys;
      this.tlb.set(page, phys);
    }
    return phys + (va & (PAGE - 1n));
  }

  /** Physical address of a user page table root from mm->pgd (a direct-map address). */
  pgdPhys(pgd: bigint): bigint {
    if (pgd < this.pageOffset || pgd - this.pageOffset >= this.directMapSize) {
      throw new BadDataError(`mm->pgd 0x${pgd.toString(16)} is not in the direct map`);
    }
    return pgd - this.pageOffset;
  }

  /** The kernel image window; modules sit above it and are reached through the page tables. */
  private get imageSize(): bigint {
    return this.info.numbers.get('KERNEL_IMAGE_SIZE') ?? 1n << 30n;
  }

  get smeMask(): bigint {
    return (this.info.numbers.get('sme_mask') ?? 0n) & ((1n << 64n) - 1n);
  }

  /** Reads kernel virtual memory, page by page; `what` names it in errors. */
  read(va: bigint, length: number, what = 'kernel memory'): Buffer {
    return this.readVia(va, length, what, (addr) => this.toPhys(addr, what));
  }

  /** Reads user memory through the page tables at physical `root` (see pgdPhys). */
  readUser(root: bigint, va: bigint, length: number, what = 'user memory'): Buffer {
    return this.readVia(va, length, what, (addr) => translate(this.mem, root, addr, this.pagingLevels, this.smeMask, what).phys);
  }

  private readVia(va: bigint, length: number, what: string, toPhys: (va: bigint) => bigint): Buffer {
    if (!Number.isInteger(length) || length < 0 || length > MAX_VIRT_READ) throw new InvalidArgumentError(`read of ${length} bytes of ${what}`);
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const addr = va + BigInt(done);
      const inPage = Number(PAGE - (addr & (PAGE - 1n)));
      const n = Math.min(inPage, length - done);
      this.mem.readInto(toPhys(addr), out.subarray(done, done + n), what);
      done += n;
    }
    return out;
  }

  u64(va: bigint, what?: string): bigint {
    return this.read(va, 8, what).readBigUInt64LE(0);
  }

  u32(va: bigint, what?: string): number {
    return this.read(va, 4, what).readUInt32LE(0);
  }

  /** A NUL-terminated string of at most `max` bytes; reads no page past its end. */
  cstring(va: bigint, max: number, what?: string): string {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < max) {
      const addr = va + BigInt(got);
      const n = Math.min(Number(PAGE - (addr & (PAGE - 1n))), max - got);
      const chunk = this.read(addr, n, what);
      const nul = chunk.indexOf(0);
      parts.push(nul < 0 ? chunk : chunk.subarray(0, nul));
      if (nul >= 0) break;
      got += n;
    }
    return Buffer.concat(parts).toString('utf8');
  }
}

