import { KernelSymbol } from '../../introspect/kernel/kallsyms.js';
import { FakeKernel, PAGE_OFFSET, START_KERNEL_MAP } from '../unit/helpers/fake-program.js';

/** Where the parts Program.attach() finds lie, as guest-physical ranges, for a fuzzer to corrupt. */
export interface AttachRegions {
  vmcoreinfo: { at: bigint; size: number };
  utsname: { at: bigint; size: number };
  numSyms: { at: bigint; size: number };
  tokenIndex: { at: bigint; size: number };
  tokenTable: { at: bigint; size: number };
  names: { at: bigint; size: number };
  offsets: { at: bigint; size: number };
  relativeBase: { at: bigint; size: number };
  btf: { at: bigint; size: number };
}

export interface AttachableKernel {
  kernel: FakeKernel;
  regions: AttachRegions;
  /** The symbols kallsyms encodes, in table order. */
  symbols: readonly KernelSymbol[];
  release: string;
}

export interface KallsymsEncoding {
  /** Token strings by token byte; each non-empty. */
  tokens: string[];
  /** The names stream; by default each name is its type letter and name, one token per character. */
  names?: Buffer;
  /** kallsyms_num_syms; by default the number of symbols. */
  count?: number;
}

const UTS_FIELD = 65;
const NAMES_SPACE = 64 << 10;
const TOKEN_SPACE = 96 << 10;
const MAX_FAKE_SYMS = 512;

/** One token per printable character (its own), the others short strings, as scripts/kallsyms.c's table never has an empty one. */
export function plainTokens(): string[] {
  return Array.from({ length: 256 }, (_, t) => (t > 0x20 && t < 0x7f ? String.fromCharCode(t) : `${String.fromCharCode(0x61 + (t % 26))}_`));
}

/** The names stream for these symbols: each name a length byte then one token per character. */
export function plainNames(symbols: readonly KernelSymbol[]): Buffer {
  return Buffer.concat(symbols.map((s) => {
    const name = Buffer.from(s.type + s.name, 'latin1');
    if (name.length > 0x7f) throw new Error(`fake kallsyms: name ${s.name} too long for a one-byte length`);
    return Buffer.concat([Buffer.from([name.length]), name]);
  }));
}

/**
 * A fake kernel that Program.attach() finds from its RAM alone, as in a
 * guest: a VMCOREINFO note in a page of its own, init_uts_ns, the kallsyms
 * tables (token-compressed names, base-relative offsets) and the BTF, plus
 * init_task. `encode` lets a test replace the token table or names stream
 * (a hostile kernel's).
 */
export function attachableKernel(encode: (symbols: readonly KernelSymbol[]) => KallsymsEncoding = () => ({ tokens: plainTokens() })): AttachableKernel {
  const k = new FakeKernel();
  const release = '6.1.0-fuzz';
  k.symbol('_stext', 16);
  const initTask = k.global('init_task', 'task_struct', { pid: 0, comm: 'swapper/0' });
  k.write(initTask, 'task_struct', { 'tasks.next': k.addr('task_struct', initTask, 'tasks'), 'tasks.prev': k.addr('task_struct', initTask, 'tasks') });
  const uts = k.symbol('init_uts_ns', UTS_FIELD * 6);
  k.put(uts, Buffer.from('Linux\0'));
  k.put(uts + BigInt(UTS_FIELD * 2), Buffer.from(`${release}\0`));
  const numSyms = k.symbol('kallsyms_num_syms', 4);
  const base = k.symbol('kallsyms_relative_base', 8);
  const offsets = k.symbol('kallsyms_offsets', MAX_FAKE_SYMS * 4);
  const tokenIndex = k.symbol('kallsyms_token_index', 512);
  // The names stream ends where the token table starts, as in 6.x (Kallsyms.load bounds the stream by it).
  const names = k.symbol('kallsyms_names', NAMES_SPACE, 8);
  const tokenTable = k.symbol('kallsyms_token_table', TOKEN_SPACE, 8);

  const prog = k.program();
  const symbols = prog.symbols.symbols;
  if (symbols.length > MAX_FAKE_SYMS) throw new Error('fake kallsyms: too many symbols');
  const enc = encode(symbols);
  const index = Buffer.alloc(512);
  const table: Buffer[] = [];
  let at = 0;
  enc.tokens.forEach((t, i) => {
    index.writeUInt16LE(at, i * 2);
    const b = Buffer.from(t + '\0', 'latin1');
    table.push(b);
    at += b.length;
  });
  const tableBuf = Buffer.concat(table);
  const stream = enc.names ?? plainNames(symbols);
  if (tableBuf.length > TOKEN_SPACE || stream.length > NAMES_SPACE) throw new Error('fake kallsyms: tables too large');
  k.put(tokenIndex, index);
  k.put(tokenTable, tableBuf);
  k.put(names, stream);
  const count = Buffer.alloc(4);
  count.writeUInt32LE(enc.count ?? symbols.length);
  k.put(numSyms, count);
  k.u64(base, START_KERNEL_MAP);
  const offs = Buffer.alloc(symbols.length * 4);
  symbols.forEach((s, i) => offs.writeUInt32LE(Number(s.address - START_KERNEL_MAP), i * 4));
  k.put(offsets, offs);

  const sym = (name: string) => k.symbolAddress(name).toString(16);
  const text = [
    `OSRELEASE=${release}`, 'PAGESIZE=4096', `SYMBOL(init_uts_ns)=${sym('init_uts_ns')}`, 'OFFSET(uts_namespace.name)=0',
    `SYMBOL(_stext)=${sym('_stext')}`, `SYMBOL(swapper_pg_dir)=${sym('swapper_pg_dir')}`,
    ...['kallsyms_names', 'kallsyms_num_syms', 'kallsyms_token_table', 'kallsyms_token_index', 'kallsyms_offsets', 'kallsyms_relative_base']
      .map((n) => `SYMBOL(${n})=${sym(n)}`),
    'NUMBER(KERNEL_IMAGE_SIZE)=1073741824', 'NUMBER(phys_base)=0', 'KERNELOFFSET=0', '',
  ].join('\n');
  const note = Buffer.alloc(24 + text.length);
  note.writeUInt32LE(11, 0);
  note.writeUInt32LE(text.length, 4);
  note.write('VMCOREINFO\0', 12, 'latin1');
  note.write(text, 24, 'latin1');
  const page = k.alloc(4096, 4096);
  k.put(page, note);

  const btfStart = k.symbolAddress('__start_BTF');
  const btfStop = symbols.find((s) => s.name === '__stop_BTF')!.address;
  const phys = (va: bigint) => k.phys(va);
  return {
    kernel: k,
    symbols,
    release,
    regions: {
      vmcoreinfo: { at: page - PAGE_OFFSET, size: note.length },
      utsname: { at: phys(uts), size: UTS_FIELD * 3 },
      numSyms: { at: phys(numSyms), size: 4 },
      tokenIndex: { at: phys(tokenIndex), size: 512 },
      tokenTable: { at: phys(tokenTable), size: tableBuf.length },
      names: { at: phys(names), size: stream.length },
      offsets: { at: phys(offsets), size: offs.length },
      relativeBase: { at: phys(base), size: 8 },
      btf: { at: phys(btfStart), size: Number(btfStop - btfStart) },
    },
  };
}
