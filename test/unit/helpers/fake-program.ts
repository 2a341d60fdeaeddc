import { Kallsyms, KernelSymbol } from '../../../introspect/kernel/kallsyms.js';
import { Program } from '../../../introspect/kernel/program.js';
import { parseVmcoreinfoText } from '../../../introspect/kernel/vmcoreinfo.js';
import { BufferMemory } from './fake-memory.js';
import { KERNEL_ENUMS, KERNEL_STRUCTS } from './kernel-structs.js';
import { EnumDecls, KernelTypes, StructDecls } from './kernel-types.js';

/** The x86-64 kernel's address map, without KASLR (Documentation/arch/x86/x86_64/mm.rst). */
export const START_KERNEL_MAP = 0xffffffff80000000n;
export const PAGE_OFFSET = 0xffff888000000000n;
export const VMALLOC_BASE = 0xffffc90000000000n;
export const VMEMMAP_BASE = 0xffffea0000000000n;
/** A direct-map address no RAM backs (the fake guest has a few MiB). */
export const OUTSIDE_RAM = PAGE_OFFSET + (1n << 40n);
/** The kernel image sits at guest-physical 1 MiB (phys_base 0); objects are allocated above IMAGE_END. */
const IMAGE_START = 0x10_0000n;
const IMAGE_END = 0x40_0000n;
const PAGE = 4096n;
const P = 1n, RW = 2n, US = 4n;

/** A value for one member: a number, a string for a char array, or raw bytes. */
export type Value = bigint | number | string | Buffer;
export type Values = Record<string, Value>;

export interface FakeKernelOptions {
  /** Replace or add struct declarations (a kernel that lacks a member, or has a new one). */
  structs?: StructDecls;
  enums?: EnumDecls;
  ramSize?: number;
}

/**
 * A guest kernel in a Buffer, for unit tests of the readers in
 * introspect/linux: a BTF of the structs they use (kernel-structs.ts),
 * objects laid out member by member, symbols, and a kernel page table for
 * what lies outside the image and the direct map (vmemmap). program()
 * gives the Program a reader takes; writes made after it are seen too.
 */
export class FakeKernel {
  readonly ram: BufferMemory;
  readonly types: KernelTypes;
  /** Guest-physical address of swapper_pg_dir. */
  readonly kernelRoot: bigint;
  private image = IMAGE_START;
  private heap = IMAGE_END;
  private readonly symbols: KernelSymbol[] = [];
  private readonly kernelPages = new Map<bigint, bigint>();
  private prog?: Program;

  constructor(opts: FakeKernelOptions = {}) {
    this.ram = new BufferMemory(Buffer.alloc(opts.ramSize ?? 8 << 20));
    this.types = new KernelTypes({ ...KERNEL_STRUCTS, ...opts.structs }, { ...KERNEL_ENUMS, ...opts.enums });
    this.kernelRoot = this.phys(this.symbol('swapper_pg_dir', Number(PAGE), Number(PAGE)));
    this.u64(this.symbol('page_offset_base', 8), PAGE_OFFSET);
    this.u64(this.symbol('vmalloc_base', 8), VMALLOC_BASE);
    this.u64(this.symbol('vmemmap_base', 8), VMEMMAP_BASE);
    this.symbol('empty_zero_page', Number(PAGE), Number(PAGE));
  }

  /** The Program over this RAM; the BTF and symbol table are fixed by the first call. */
  program(): Program {
    if (this.prog) return this.prog;
    const btf = this.types.btf();
    const start = this.symbol('__start_BTF', btf.length);
    this.put(start, btf);
    this.symbols.push({ name: '__stop_BTF', address: start + BigInt(btf.length), type: 'R' });
    const info = parseVmcoreinfoText([
      'OSRELEASE=6.1.0-test', 'PAGESIZE=4096', 'KERNELOFFSET=0', 'NUMBER(phys_base)=0',
      `SYMBOL(swapper_pg_dir)=${this.symbolAddress('swapper_pg_dir').toString(16)}`, `SIZE(page)=${this.types.sizeof('page')}`,
    ].join('\n'));
    this.prog = Program.fromParts(this.ram, info, Kallsyms.fromSymbols(this.symbols));
    return this.prog;
  }

  // ---- addresses

  /** Guest-physical address of a kernel virtual address this kernel maps. */
  phys(va: bigint): bigint {
    if (va >= START_KERNEL_MAP) return va - START_KERNEL_MAP;
    if (va >= PAGE_OFFSET && va < PAGE_OFFSET + BigInt(this.ram.ram.length)) return va - PAGE_OFFSET;
    const page = this.kernelPages.get(va & ~(PAGE - 1n));
    if (page === undefined) throw new Error(`fake kernel: 0x${va.toString(16)} is not mapped`);
    return page + (va & (PAGE - 1n));
  }

  /** The direct-map address of guest-physical `phys`. */
  direct(phys: bigint): bigint {
    return PAGE_OFFSET + phys;
  }

  /** Zeroed memory in the direct map (kmalloc). */
  alloc(size: number, align = 64): bigint {
    const at = (this.heap + BigInt(align) - 1n) / BigInt(align) * BigInt(align);
    if (at + BigInt(size) > BigInt(this.ram.ram.length)) throw new Error('fake kernel: out of RAM');
    this.heap = at + BigInt(size);
    return this.direct(at);
  }

  /** A zeroed page: its guest-physical address and its struct page (in the vmemmap). */
  allocPage(): { phys: bigint; va: bigint; page: bigint } {
    const va = this.alloc(Number(PAGE), Number(PAGE));
    const phys = this.phys(va);
    return { phys, va, page: this.structPage(phys) };
  }

  /** The struct page of guest-physical `phys`, with the vmemmap page holding it mapped. */
  structPage(phys: bigint): bigint {
    const page = VMEMMAP_BASE + (phys >> 12n) * BigInt(this.types.sizeof('page'));
    const first = page & ~(PAGE - 1n);
    const last = (page + BigInt(this.types.sizeof('page')) - 1n) & ~(PAGE - 1n);
    for (let va = first; va <= last; va += PAGE) {
      if (!this.kernelPages.has(va)) this.mapKernel(va, this.phys(this.alloc(Number(PAGE), Number(PAGE))));
    }
    return page;
  }

  /** Maps a kernel page in swapper_pg_dir (vmalloc, vmemmap). */
  mapKernel(va: bigint, phys: bigint): void {
    this.map(this.kernelRoot, va, phys, P | RW);
    this.kernelPages.set(va & ~(PAGE - 1n), phys);
  }

  /** A user page table root: its guest-physical address and the direct-map address mm->pgd holds. */
  newPgd(): { phys: bigint; va: bigint } {
    const va = this.alloc(Number(PAGE), Number(PAGE));
    return { phys: this.phys(va), va };
  }

  /** Maps a 4 KiB page in the page tables rooted at physical `root`, making tables as needed. */
  map(root: bigint, va: bigint, phys: bigint, flags = P | RW | US): void {
    let table = root;
    for (const shift of [39n, 30n, 21n]) {
      const slot = table + ((va >> shift) & 0x1ffn) * 8n;
      let entry = this.ram.ram.readBigUInt64LE(Number(slot));
      if (!(entry & P)) {
        entry = this.phys(this.alloc(Number(PAGE), Number(PAGE))) | P | RW | US;
        this.ram.u64(slot, entry);
      }
      table = entry & 0x000f_ffff_ffff_f000n;
    }
    this.ram.u64(table + ((va >> 12n) & 0x1ffn) * 8n, phys | flags);
    this.prog?.refresh();
  }

  // ---- symbols

  /** A variable or function in the kernel image, zeroed, with a kallsyms entry. */
  symbol(name: string, size = 16, align = 64): bigint {
    if (this.prog) throw new Error(`fake kernel: symbol ${name} declared after program()`);
    const at = (this.image + BigInt(align) - 1n) / BigInt(align) * BigInt(align);
    if (at + BigInt(size) > IMAGE_END) throw new Error('fake kernel: image is full');
    this.image = at + BigInt(size);
    const address = START_KERNEL_MAP + at;
    this.symbols.push({ name, address, type: 'D' });
    return address;
  }

  symbolAddress(name: string): bigint {
    const sym = this.symbols.find((s) => s.name === name);
    if (!sym) throw new Error(`fake kernel: no symbol ${name}`);
    return sym.address;
  }

  /** A global struct in the image (init_task, ...). */
  global(name: string, struct: string, values: Values = {}): bigint {
    const va = this.symbol(name, this.types.sizeof(struct));
    this.write(va, struct, values);
    return va;
  }

  // ---- objects

  /** A new zeroed struct in the direct map with these members set. */
  new(struct: string, values: Values = {}): bigint {
    const va = this.alloc(this.types.sizeof(struct) || 8);
    this.write(va, struct, values);
    return va;
  }

  /** Sets members of a struct at `va` by member path ('d_name.len', 'numbers[0].nr'). */
  write(va: bigint, struct: string, values: Values): void {
    for (const [path, value] of Object.entries(values)) {
      const f = this.types.locate(struct, path);
      const at = va + BigInt(Math.floor(f.bitOffset / 8));
      const shape = this.types.shape(f.type);
      if (Buffer.isBuffer(value)) {
        this.put(at, value);
      } else if (typeof value === 'string') {
        if (shape.kind !== 'array' || (shape.n !== 0 && value.length >= shape.n)) throw new Error(`fake kernel: ${struct}.${path} cannot hold ${JSON.stringify(value)}`);
        this.put(at, Buffer.from(value + '\0'));
      } else if (f.bitSize) {
        const bit = f.bitOffset % 8;
        const byte = this.read(at, 1)[0] & ~(((1 << f.bitSize) - 1) << bit);
        this.put(at, Buffer.from([byte | (Number(value) << bit)]));
      } else {
        const size = shape.kind === 'int' ? shape.size : shape.kind === 'enum' ? 4 : 8;
        if (shape.kind !== 'int' && shape.kind !== 'ptr' && shape.kind !== 'enum') throw new Error(`fake kernel: ${struct}.${path} is not a number`);
        const buf = Buffer.alloc(8);
        buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value)));
        this.put(at, buf.subarray(0, size));
      }
    }
  }

  /** Address of a member of the struct at `va`. */
  addr(struct: string, va: bigint, path: string): bigint {
    return va + BigInt(this.types.locate(struct, path).bitOffset / 8);
  }

  /** A NUL-terminated string in the direct map (names, paths). */
  cstr(s: string): bigint {
    const va = this.alloc(s.length + 1, 8);
    this.put(va, Buffer.from(s + '\0'));
    return va;
  }

  /** Links list_heads into a circular list: head, then each node in order. */
  link(head: bigint, nodes: bigint[]): void {
    const ring = [head, ...nodes];
    ring.forEach((n, i) => this.write(n, 'list_head', { next: ring[(i + 1) % ring.length], prev: ring[(i + ring.length - 1) % ring.length] }));
  }

  put(va: bigint, data: Buffer): void {
    for (let done = 0; done < data.length;) {
      const addr = va + BigInt(done);
      const n = Math.min(Number(PAGE - (addr & (PAGE - 1n))), data.length - done);
      data.copy(this.ram.ram, Number(this.phys(addr)), done, done + n);
      done += n;
    }
    this.prog?.refresh();
  }

  read(va: bigint, length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let done = 0; done < length;) {
      const addr = va + BigInt(done);
      const n = Math.min(Number(PAGE - (addr & (PAGE - 1n))), length - done);
      this.ram.ram.copy(out, done, Number(this.phys(addr)), Number(this.phys(addr)) + n);
      done += n;
    }
    return out;
  }

  /** A pointer member of the struct at `va` (to follow what a test laid out). */
  ptr(struct: string, va: bigint, path: string): bigint {
    return this.read(this.addr(struct, va, path), 8).readBigUInt64LE(0);
  }

  u64(va: bigint, value: bigint): void {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64LE(BigInt.asUintN(64, value));
    this.put(va, buf);
  }
}
