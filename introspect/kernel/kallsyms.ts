import crypto from 'node:crypto';
import { BadDataError, NotFoundError } from '../../common/errors.js';
import { PhysicalMemory } from '../memory/physical-memory.js';
import { readCachedNames, writeCachedNames } from './kallsyms-cache.js';
import { VmcoreInfo, kernelImageToPhys } from './vmcoreinfo.js';

/** One kernel symbol: its address and nm-style type letter (T text, D data, R rodata, B bss; lower case: local). */
export interface KernelSymbol {
  name: string;
  address: bigint;
  type: string;
}

/** Bounds on what an untrusted guest may announce. */
const MAX_SYMS = 1_000_000;
const MAX_NAMES_BYTES = 32 << 20;
const MAX_TOKEN_TABLE = 64 << 10;
/** include/linux/kallsyms.h KSYM_NAME_LEN (512 since 6.1): no name, with its type letter, is longer. */
export const KSYM_NAME_LEN = 512;
/**
 * Decoded bytes per byte of the names stream: real tables expand a few
 * times (the lab's 6.1 kernel: 94,265 names of at most 84 bytes, 2.2 MB in
 * all); far more is a guest inflating names to fill the host's memory or disk.
 */
const MAX_EXPANSION = 16;
/** Absolute bound on all names decoded. */
const MAX_DECODED = 64 << 20;
const U64 = (1n << 64n) - 1n;

/**
 * The kernel's symbol table, decoded from the kallsyms tables in its RAM
 * (kernel/kallsyms.c, scripts/kallsyms.c): a names stream of token-compressed
 * symbols, and 32-bit offsets from kallsyms_relative_base.
 */
export class Kallsyms {
  private readonly byName = new Map<string, KernelSymbol>();

  /**
   * @param cacheEntry names to store in the host's cache, under a key,
   *   once the caller has verified the kernel (commitCache)
   */
  private constructor(readonly symbols: readonly KernelSymbol[], private cacheEntry?: { key: string; names?: string[] }) {
    // Globals win over locals of the same name (static functions repeat across files).
    for (const sym of symbols) {
      const have = this.byName.get(sym.name);
      if (!have || (isLocal(have) && !isLocal(sym))) this.byName.set(sym.name, sym);
    }
  }

  static load(mem: PhysicalMemory, info: VmcoreInfo): Kallsyms {
    const sym = (name: string): bigint => {
      const v = info.symbols.get(name);
      if (v === undefined) throw new NotFoundError(`vmcoreinfo has no SYMBOL(${name}): the kernel is older than 6.0 or built without CONFIG_KALLSYMS`);
      return v;
    };
    const read = (va: bigint, len: number, what: string): Buffer => mem.read(kernelImageToPhys(info, va), len, what);

    const count = read(sym('kallsyms_num_syms'), 4, 'kallsyms_num_syms').readUInt32LE(0);
    if (count === 0 || count > MAX_SYMS) throw new BadDataError(`kallsyms_num_syms is ${count}`);
    const tokenIndex = read(sym('kallsyms_token_index'), 512, 'kallsyms_token_index');
    const tokens = decodeTokens(read, sym('kallsyms_token_table'), tokenIndex);

    // The names stream ends before the token table in 6.x (markers sit between); bound it either way.
    const namesVa = sym('kallsyms_names');
    const tableVa = sym('kallsyms_token_table');
    const span = tableVa > namesVa && tableVa - namesVa < BigInt(MAX_NAMES_BYTES) ? Number(tableVa - namesVa) : Math.min(count * 64, MAX_NAMES_BYTES);
    const stream = read(namesVa, span, 'kallsyms_names');
    const key = cacheKey(stream, tokens);
    const cached = readCachedNames(key, count);
    const names = cached ?? decodeNames(stream, count, tokens);

    const addresses = decodeAddresses(read, info, count, names);
    return new Kallsyms(names.map((n, i) => ({ name: n.slice(1), type: n[0], address: addresses[i] })), { key, names: cached ? undefined : names });
  }

  /**
   * Writes the decoded names to the host's cache (or marks them used). Call
   * only once the kernel they came from is verified: a failed attach writes
   * nothing.
   */
  commitCache(): void {
    if (!this.cacheEntry) return;
    writeCachedNames(this.cacheEntry.key, this.cacheEntry.names);
    this.cacheEntry = undefined;
  }

  /** A symbol table from symbols already decoded (or made up by a test). */
  static fromSymbols(symbols: readonly KernelSymbol[]): Kallsyms {
    return new Kallsyms(symbols);
  }

  lookup(name: string): KernelSymbol | undefined {
    return this.byName.get(name);
  }

  /** The address of a symbol the caller cannot do without. */
  address(name: string): bigint {
    const sym = this.byName.get(name);
    if (!sym) throw new NotFoundError(`no symbol ${name} in the guest kernel's kallsyms`);
    return sym.address;
  }
}

function isLocal(sym: KernelSymbol): boolean {
  return sym.type >= 'a' && sym.type <= 'z';
}

type Reader = (va: bigint, len: number, what: string) => Buffer;

function decodeTokens(read: Reader, tableVa: bigint, indexBuf: Buffer): string[] {
  let maxStart = 0;
  for (let t = 0; t < 256; t++) maxStart = Math.max(maxStart, indexBuf.readUInt16LE(t * 2));
  // Token strings are short; the last one starts at most at maxStart.
  const table = read(tableVa, Math.min(maxStart + 256, MAX_TOKEN_TABLE), 'kallsyms_token_table');
  const tokens: string[] = [];
  for (let t = 0; t < 256; t++) {
    const start = indexBuf.readUInt16LE(t * 2);
    const end = table.indexOf(0, start);
    if (end < 0) throw new BadDataError(`kallsyms token ${t} at offset ${start} has no end`);
    tokens.push(table.toString('latin1', start, end));
  }
  return tokens;
}

/**
 * Decoded names depend only on the kernel build (its names stream and token
 * table), not on KASLR: the cache keys them by a hash of both.
 */
function cacheKey(stream: Buffer, tokens: string[]): string {
  return crypto.createHash('sha256').update(stream).update(tokens.join('\0')).digest('hex').slice(0, 32);
}

/**
 * Each name: a length (1 byte, or 2 with bit 7 set: "big symbols", 6.1) then
 * that many token bytes. Each name is at most KSYM_NAME_LEN bytes expanded,
 * all of them at most MAX_EXPANSION times the stream. `stats`, when given,
 * learns how many bytes were decoded, also when the stream is refused.
 */
export function decodeNames(stream: Buffer, count: number, tokenStrings: string[], stats?: { decodedBytes: number }): string[] {
  // Expand into bytes and decode each name once: string concatenation per token costs several times more.
  const tokens = tokenStrings.map((t) => Buffer.from(t, 'latin1'));
  const scratch = Buffer.allocUnsafe(KSYM_NAME_LEN);
  const budget = Math.min(stream.length * MAX_EXPANSION, MAX_DECODED);
  const names: string[] = new Array(count);
  let total = 0;
  let off = 0;
  try {
    for (let i = 0; i < count; i++) {
      if (off >= stream.length) throw new BadDataError(`kallsyms_names ends after ${i} of ${count} symbols`);
      let len = stream[off++];
      if (len & 0x80) {
        if (off >= stream.length) throw new BadDataError(`kallsyms_names: symbol ${i} is cut off`);
        len = (len & 0x7f) | (stream[off++] << 7);
      }
      if (len === 0 || off + len > stream.length) throw new BadDataError(`kallsyms_names: symbol ${i} has length ${len}`);
      let n = 0;
      for (let k = 0; k < len; k++) {
        const t = tokens[stream[off + k]];
        if (n + t.length > KSYM_NAME_LEN) throw new BadDataError(`kallsyms_names: symbol ${i} expands past KSYM_NAME_LEN (${KSYM_NAME_LEN} bytes)`);
        t.copy(scratch, n);
        n += t.length;
      }
      off += len;
      if (n < 2) throw new BadDataError(`kallsyms_names: symbol ${i} expands to ${n} bytes`);
      total += n + 1;
      if (total > budget) throw new BadDataError(`kallsyms_names: ${i + 1} of ${count} symbols expand to more than ${budget} bytes from a ${stream.length}-byte stream`);
      names[i] = scratch.toString('latin1', 0, n);
    }
  } finally {
    if (stats) stats.decodedBytes = total;
  }
  return names;
}

/**
 * Addresses from kallsyms_offsets. Which encoding the kernel used
 * (CONFIG_KALLSYMS_ABSOLUTE_PERCPU or plain base-relative) is found, as drgn
 * does, by the one that puts _stext where vmcoreinfo says it is.
 */
function decodeAddresses(read: Reader, info: VmcoreInfo, count: number, names: string[]): bigint[] {
  const stext = info.symbols.get('_stext');
  const stextIndex = names.findIndex((n) => n.slice(1) === '_stext');
  if (stext === undefined || stextIndex < 0) throw new BadDataError('cannot place kallsyms: _stext is missing from vmcoreinfo or kallsyms');
  const offsetsVa = info.symbols.get('kallsyms_offsets');
  const baseVa = info.symbols.get('kallsyms_relative_base');
  if (offsetsVa === undefined || baseVa === undefined) {
    throw new NotFoundError('vmcoreinfo has no kallsyms_offsets/kallsyms_relative_base (absolute kallsyms_addresses are not supported)');
  }
  const offsets = read(offsetsVa, count * 4, 'kallsyms_offsets');
  const base = read(baseVa, 8, 'kallsyms_relative_base').readBigUInt64LE(0);
  const encodings: ((i: number) => bigint)[] = [
    (i) => { const o = offsets.readInt32LE(i * 4); return o >= 0 ? BigInt(o) : (base - 1n - BigInt(o)) & U64; },
    (i) => (base + BigInt(offsets.readUInt32LE(i * 4))) & U64,
  ];
  const decode = encodings.find((f) => f(stextIndex) === stext);
  if (!decode) throw new BadDataError(`no kallsyms address encoding puts _stext at 0x${stext.toString(16)}`);
  const addresses: bigint[] = new Array(count);
  for (let i = 0; i < count; i++) addresses[i] = decode(i);
  return addresses;
}
