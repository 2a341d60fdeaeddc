import { BadDataError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { PhysicalMemory } from '../memory/physical-memory.js';

/** What the guest kernel wrote about itself for crash tools (kernel/crash_core.c). */
export interface VmcoreInfo {
  /** Guest-physical address of the ELF note header. */
  noteAddress: bigint;
  text: string;
  osRelease: string;
  buildId?: string;
  pageSize: number;
  kernelOffset: bigint;
  /** Physical load address slide, as an unsigned 64-bit value (NUMBER(phys_base) prints signed). */
  physBase: bigint;
  pagingLevels: 4 | 5;
  symbols: Map<string, bigint>;
  numbers: Map<string, bigint>;
  offsets: Map<string, number>;
  sizes: Map<string, number>;
  lengths: Map<string, bigint>;
}

/** VMCOREINFO_BYTES is one page in 6.1; the note never carries more text. */
const MAX_TEXT = 4096;
const MAX_LINES = 1024;
const NOTE_NAME = Buffer.from('VMCOREINFO\0');
const HEADER = 24;
const U64 = (1n << 64n) - 1n;
const START_KERNEL_MAP = 0xffffffff80000000n;

/**
 * The note as append_elf_note() lays it out: n_namesz=11, n_descsz, n_type=0,
 * "VMCOREINFO\0" padded to 12, then the text. Anything else is not ours.
 */
export function parseVmcoreinfoNote(buf: Buffer, offset: number): { descsz: number; text: string } | undefined {
  if (offset < 0 || offset + HEADER > buf.length) return undefined;
  if (buf.readUInt32LE(offset) !== 11 || buf.readUInt32LE(offset + 8) !== 0) return undefined;
  const descsz = buf.readUInt32LE(offset + 4);
  if (descsz === 0 || descsz > MAX_TEXT || offset + HEADER + descsz > buf.length) return undefined;
  if (!buf.subarray(offset + 12, offset + 23).equals(NOTE_NAME) || buf[offset + 23] !== 0) return undefined;
  const text = buf.toString('latin1', offset + HEADER, offset + HEADER + descsz);
  return text.startsWith('OSRELEASE=') ? { descsz, text } : undefined;
}

function hexValue(key: string, v: string): bigint {
  if (!/^[0-9a-fA-F]{1,16}$/.test(v)) throw new BadDataError(`vmcoreinfo ${key}=${v.slice(0, 40)}: not a 64-bit hex number`);
  return BigInt('0x' + v);
}

function decValue(key: string, v: string, signed: boolean): bigint {
  if (!(signed ? /^-?\d{1,20}$/ : /^\d{1,20}$/).test(v)) throw new BadDataError(`vmcoreinfo ${key}=${v.slice(0, 40)}: not a decimal number`);
  const n = BigInt(v);
  if (n > U64 || n < -(1n << 63n)) throw new BadDataError(`vmcoreinfo ${key}=${v}: out of 64-bit range`);
  return n;
}

/**
 * NUMBER() is `%ld`, except where arch code prints its own: x86's
 * NUMBER(VMALLOC_START)=0x%lx (arch/x86/kernel/vmcore_info_64.c, 6.12).
 * drgn parses NUMBER with strtoull base 0 for the same reason.
 */
function numberValue(key: string, v: string): bigint {
  return /^0x/i.test(v) ? hexValue(key, v.slice(2)) : decValue(key, v, true);
}

function smallValue(key: string, v: string): number {
  const n = decValue(key, v, false);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new BadDataError(`vmcoreinfo ${key}=${v}: too large`);
  return Number(n);
}

/** Parses vmcoreinfo text (include/linux/crash_core.h formats: SYMBOL hex, NUMBER signed decimal, ...). */
export function parseVmcoreinfoText(text: string, noteAddress = 0n): VmcoreInfo {
  if (text.length > MAX_TEXT) throw new BadDataError(`vmcoreinfo text of ${text.length} bytes exceeds ${MAX_TEXT}`);
  const lines = text.split('\n').filter((l) => l.length > 0);
  if (lines.length > MAX_LINES) throw new BadDataError(`vmcoreinfo has ${lines.length} lines, more than ${MAX_LINES}`);
  const plain = new Map<string, string>();
  const symbols = new Map<string, bigint>();
  const numbers = new Map<string, bigint>();
  const offsets = new Map<string, number>();
  const sizes = new Map<string, number>();
  const lengths = new Map<string, bigint>();
  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq <= 0) throw new BadDataError(`vmcoreinfo line ${JSON.stringify(line.slice(0, 60))} has no key=value`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    const m = /^(SYMBOL|NUMBER|OFFSET|SIZE|LENGTH)\((.+)\)$/.exec(key);
    if (!m) plain.set(key, value);
    else if (m[1] === 'SYMBOL') symbols.set(m[2], hexValue(key, value));
    else if (m[1] === 'NUMBER') numbers.set(m[2], numberValue(key, value));
    else if (m[1] === 'OFFSET') offsets.set(m[2], smallValue(key, value));
    else if (m[1] === 'SIZE') sizes.set(m[2], smallValue(key, value));
    else lengths.set(m[2], decValue(key, value, false));
  }
  const need = (key: string): string => {
    const v = plain.get(key);
    if (v === undefined) throw new BadDataError(`vmcoreinfo has no ${key}`);
    return v;
  };
  const physBase = numbers.get('phys_base');
  if (physBase === undefined) throw new BadDataError('vmcoreinfo has no NUMBER(phys_base)');
  const l5 = numbers.get('pgtable_l5_enabled') ?? 0n;
  const osRelease = need('OSRELEASE');
  if (!/^[\x21-\x7e]{1,64}$/.test(osRelease)) throw new BadDataError(`vmcoreinfo OSRELEASE ${JSON.stringify(osRelease.slice(0, 70))} is not a release`);
  return {
    noteAddress,
    text,
    osRelease,
    // 6.1.113-6.1.118 print a broken BUILD-ID (drgn ignore_broken_vmcoreinfo_build_id): keep it, never require it.
    buildId: plain.get('BUILD-ID'),
    pageSize: smallValue('PAGESIZE', need('PAGESIZE')),
    kernelOffset: hexValue('KERNELOFFSET', need('KERNELOFFSET')),
    physBase: physBase & U64,
    pagingLevels: l5 === 1n ? 5 : 4,
    symbols,
    numbers,
    offsets,
    sizes,
    lengths,
  };
}

/** Chunk size of the scan; a multiple of the page size. */
const CHUNK = 4 << 20;

/**
 * Finds the VMCOREINFO note in guest RAM. The kernel allocates it with
 * alloc_pages_exact() (crash_save_vmcoreinfo_init), so page starts are
 * tried first; a byte-wise scan for the note name follows if that fails.
 * That early allocation comes from the highest zone, near its start (seen:
 * 18 MiB into a 1 GiB guest, 10 MiB above 4 GiB in a 3 GiB one), so the
 * segments are tried from the highest down, each from its start.
 */
export function findVmcoreinfo(mem: PhysicalMemory): VmcoreInfo {
  const buf = Buffer.allocUnsafe(CHUNK + MAX_TEXT + HEADER);
  const segments = [...mem.segments].sort((a, b) => (a.gpa > b.gpa ? -1 : 1));
  for (const pageAligned of [true, false]) {
    for (const seg of segments) {
      for (let off = 0n; off < seg.size; off += BigInt(CHUNK)) {
        const rest = seg.size - off;
        // Read a little past the chunk so a note starting near its end is whole.
        const len = Number(rest < BigInt(buf.length) ? rest : BigInt(buf.length));
        const view = buf.subarray(0, len);
        mem.readInto(seg.gpa + off, view, 'vmcoreinfo scan');
        const limit = Math.min(len, CHUNK);
        const hit = pageAligned ? scanPages(view, limit) : scanBytes(view, limit);
        if (hit) {
          const noteAddress = seg.gpa + off + BigInt(hit.offset);
          log.debug('vmcoreinfo note found', { gpa: noteAddress, pageAligned });
          return parseVmcoreinfoText(hit.text.replace(/\0+$/, ''), noteAddress);
        }
      }
    }
  }
  throw new NotFoundError('no VMCOREINFO ELF note in guest RAM (is this a Linux guest with CONFIG_CRASH_CORE, and booted?)');
}

function scanPages(view: Buffer, limit: number): { offset: number; text: string } | undefined {
  for (let o = 0; o < limit; o += 4096) {
    const note = parseVmcoreinfoNote(view, o);
    if (note) return { offset: o, text: note.text };
  }
  return undefined;
}

function scanBytes(view: Buffer, limit: number): { offset: number; text: string } | undefined {
  for (let at = view.indexOf(NOTE_NAME); at >= 0 && at < limit + 12; at = view.indexOf(NOTE_NAME, at + 1)) {
    const note = parseVmcoreinfoNote(view, at - 12);
    if (note && at - 12 < limit) return { offset: at - 12, text: note.text };
  }
  return undefined;
}

/** Kernel-image virtual address to physical (__phys_addr_symbol): va - __START_KERNEL_map + phys_base. */
export function kernelImageToPhys(info: VmcoreInfo, va: bigint): bigint {
  const size = info.numbers.get('KERNEL_IMAGE_SIZE') ?? 1n << 30n;
  if (va < START_KERNEL_MAP || va >= START_KERNEL_MAP + size) {
    throw new InvalidArgumentError(`0x${va.toString(16)} is not in the kernel image`);
  }
  return (va - START_KERNEL_MAP + info.physBase) & U64;
}

const UTS_FIELD = 65;

/**
 * Reads init_uts_ns.name through the kernel-image mapping; it must say
 * "Linux" and the vmcoreinfo release, which proves phys_base and the RAM layout.
 */
export function verifyUtsname(mem: PhysicalMemory, info: VmcoreInfo): { sysname: string; release: string } {
  const sym = info.symbols.get('init_uts_ns');
  if (sym === undefined) throw new BadDataError('vmcoreinfo has no SYMBOL(init_uts_ns)');
  const gpa = kernelImageToPhys(info, sym + BigInt(info.offsets.get('uts_namespace.name') ?? 0));
  const raw = mem.read(gpa, UTS_FIELD * 3, 'init_uts_ns.name');
  const field = (i: number): string => {
    const bytes = raw.subarray(i * UTS_FIELD, (i + 1) * UTS_FIELD);
    const nul = bytes.indexOf(0);
    return bytes.toString('latin1', 0, nul < 0 ? UTS_FIELD : nul);
  };
  const sysname = field(0);
  const release = field(2);
  if (sysname !== 'Linux' || release !== info.osRelease) {
    throw new BadDataError(`init_uts_ns at guest-physical 0x${gpa.toString(16)} reads ${JSON.stringify(sysname)} ` +
      `${JSON.stringify(release)}, not Linux ${info.osRelease}: wrong RAM layout or phys_base`);
  }
  return { sysname, release };
}
