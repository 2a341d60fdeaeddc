import { BadDataError, NotFoundError } from '../../common/errors.js';
import { BtfKind, BtfType, KINDS, Member, StructType, extraSize } from './types.js';

const MAGIC = 0xeb9f;
const HEADER_MIN = 24;
/** Bounds on untrusted input: a guest's whole BTF blob and its number of types. */
const MAX_BLOB = 64 << 20;
const MAX_TYPES = 2_000_000;
/** Longest typedef/const chain or nesting of anonymous members followed. */
const MAX_DEPTH = 64;

/**
 * The kernel's BTF type information. Parsing only indexes where each type
 * record starts (checking that it fits); a type is decoded when first asked
 * for, and the name index is built on first lookup (as cilium/ebpf does).
 */
export class Btf {
  private readonly offsets: Uint32Array;
  private readonly decoded = new Map<number, BtfType>();
  private names?: Map<string, number[]>;
  private enumerators?: Map<string, bigint>;

  private constructor(private readonly types: Buffer, private readonly strings: Buffer, offsets: number[]) {
    this.offsets = Uint32Array.from(offsets);
  }

  static parse(buf: Buffer): Btf {
    if (buf.length < HEADER_MIN) throw new BadDataError(`BTF blob of ${buf.length} bytes is shorter than its header`);
    if (buf.length > MAX_BLOB) throw new BadDataError(`BTF blob of ${buf.length} bytes exceeds ${MAX_BLOB}`);
    const magic = buf.readUInt16LE(0);
    if (magic === 0x9feb) throw new BadDataError('BTF blob is big-endian; only little-endian guests are supported');
    if (magic !== MAGIC) throw new BadDataError(`BTF magic is 0x${magic.toString(16)}, not 0xeb9f`);
    if (buf[2] !== 1) throw new BadDataError(`BTF version ${buf[2]} is not 1`);
    const hdrLen = buf.readUInt32LE(4);
    const [typeOff, typeLen, strOff, strLen] = [8, 12, 16, 20].map((o) => buf.readUInt32LE(o));
    if (hdrLen < HEADER_MIN || hdrLen > buf.length) throw new BadDataError(`BTF header length ${hdrLen}`);
    const section = (off: number, len: number, what: string): Buffer => {
      if (hdrLen + off + len > buf.length) throw new BadDataError(`BTF ${what} section (${off}+${len}) runs past the blob`);
      return buf.subarray(hdrLen + off, hdrLen + off + len);
    };
    const types = section(typeOff, typeLen, 'type');
    const strings = section(strOff, strLen, 'string');
    if (strings.length === 0 || strings[0] !== 0) throw new BadDataError('BTF string section does not start with an empty string');

    const offsets = [0];
    for (let off = 0; off < types.length;) {
      if (offsets.length >= MAX_TYPES) throw new BadDataError(`BTF has more than ${MAX_TYPES} types`);
      if (off + 12 > types.length) throw new BadDataError(`BTF type ${offsets.length} at offset ${off} is cut off`);
      const info = types.readUInt32LE(off + 4);
      const extra = extraSize((info >>> 24) & 0x1f, info & 0xffff);
      if (extra < 0) throw new BadDataError(`BTF type ${offsets.length} at offset ${off} has unknown kind ${(info >>> 24) & 0x1f}`);
      offsets.push(off);
      off += 12 + extra;
      if (off > types.length) throw new BadDataError(`BTF type ${offsets.length - 1} runs past the type section`);
    }
    return new Btf(types, strings, offsets);
  }

  /** Number of type ids, void (0) included. */
  get count(): number {
    return this.offsets.length;
  }

  type(id: number): BtfType {
    if (!Number.isInteger(id) || id < 0 || id >= this.offsets.length) throw new BadDataError(`BTF type id ${id} is out of range (${this.offsets.length} types)`);
    let t = this.decoded.get(id);
    if (!t) {
      t = this.decode(id);
      this.decoded.set(id, t);
    }
    return t;
  }

  /** The first type of that name (and kind, if given). */
  byName(name: string, kind?: BtfKind): BtfType | undefined {
    if (!this.names) {
      this.names = new Map();
      for (let id = 1; id < this.offsets.length; id++) {
        const name = this.str(this.types.readUInt32LE(this.offsets[id]), id);
        if (!name) continue;
        const ids = this.names.get(name);
        if (ids) ids.push(id);
        else this.names.set(name, [id]);
      }
    }
    for (const id of this.names.get(name) ?? []) {
      const t = this.type(id);
      if (!kind || t.kind === kind) return t;
    }
    return undefined;
  }

  /**
   * An enumerator's value by name, anonymous enums included: newer kernels
   * keep flag bit numbers there (6.12's `enum { INET_FLAGS_PKTINFO, ... }`).
   */
  enumerator(name: string): bigint | undefined {
    if (!this.enumerators) {
      this.enumerators = new Map();
      for (let id = 1; id < this.offsets.length; id++) {
        const kind = KINDS[(this.types.readUInt32LE(this.offsets[id] + 4) >>> 24) & 0x1f];
        if (kind !== 'enum' && kind !== 'enum64') continue;
        const t = this.type(id);
        if (t.kind !== 'enum' && t.kind !== 'enum64') continue;
        for (const v of t.values) if (!this.enumerators.has(v.name)) this.enumerators.set(v.name, BigInt(v.value));
      }
    }
    return this.enumerators.get(name);
  }

  struct(name: string): StructType {
    const t = this.byName(name, 'struct') ?? this.byName(name, 'union');
    if (!t || (t.kind !== 'struct' && t.kind !== 'union')) throw new NotFoundError(`no struct ${name} in the guest kernel BTF`);
    return t;
  }

  /** The type behind typedef, const, volatile, restrict and type tags. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    for (let depth = 0; t.kind === 'typedef' || t.kind === 'const' || t.kind === 'volatile' || t.kind === 'restrict' || t.kind === 'type_tag'; depth++) {
      if (depth > MAX_DEPTH) throw new BadDataError(`BTF type ${id}: qualifier chain longer than ${MAX_DEPTH}`);
      t = this.type(t.type);
    }
    return t;
  }

  sizeof(id: number, depth = 0): number {
    if (depth > MAX_DEPTH) throw new BadDataError(`BTF type ${id}: array nesting deeper than ${MAX_DEPTH}`);
    const t = this.resolve(id);
    switch (t.kind) {
      case 'int': case 'struct': case 'union': case 'enum': case 'enum64': case 'float': return t.size;
      case 'ptr': return 8;
      case 'array': {
        const size = t.nelems * this.sizeof(t.elemType, depth + 1);
        if (!Number.isSafeInteger(size)) throw new BadDataError(`BTF array type ${t.id} is too large`);
        return size;
      }
      default: throw new BadDataError(`BTF type ${id} (${t.kind} ${t.name}) has no size`);
    }
  }

  /** A member by name, looking into anonymous struct/union members; its bit offset is from the outer struct. */
  member(struct: StructType | number, name: string, depth = 0): Member | undefined {
    const t = typeof struct === 'number' ? this.resolve(struct) : struct;
    if (t.kind !== 'struct' && t.kind !== 'union') return undefined;
    if (depth > MAX_DEPTH) throw new BadDataError(`BTF ${t.kind} ${t.name}: anonymous members nest deeper than ${MAX_DEPTH}`);
    for (const m of t.members) {
      if (m.name === name) return m;
      if (m.name === '') {
        const inner = this.member(m.type, name, depth + 1);
        if (inner) return { ...inner, bitOffset: m.bitOffset + inner.bitOffset };
      }
    }
    return undefined;
  }

  hasMember(structName: string, name: string): boolean {
    return this.member(this.struct(structName), name) !== undefined;
  }

  /** Byte offset of a member path ('signal.thread_head' goes through embedded structs, not pointers). */
  memberOffset(structName: string, path: string): number {
    let t: BtfType = this.struct(structName);
    let bits = 0;
    for (const name of path.split('.')) {
      if (t.kind !== 'struct' && t.kind !== 'union') throw new BadDataError(`${structName}.${path}: ${name} is not inside a struct`);
      const m = this.member(t, name);
      if (!m) throw new NotFoundError(`no member ${path} in the guest kernel's struct ${structName}`);
      if (m.bitSize !== 0) throw new BadDataError(`${structName}.${path} is a bitfield`);
      bits += m.bitOffset;
      t = this.resolve(m.type);
    }
    if (bits % 8 !== 0) throw new BadDataError(`${structName}.${path} is not byte-aligned`);
    return bits / 8;
  }

  private str(off: number, id: number): string {
    if (off >= this.strings.length) throw new BadDataError(`BTF type ${id}: name offset ${off} is past the string section`);
    const end = this.strings.indexOf(0, off);
    if (end < 0) throw new BadDataError(`BTF type ${id}: name at ${off} is not NUL-terminated`);
    return this.strings.toString('latin1', off, end);
  }

  private ref(id: number, target: number): number {
    if (target >= this.offsets.length) throw new BadDataError(`BTF type ${id} refers to type ${target}, beyond the ${this.offsets.length} types`);
    return target;
  }

  private decode(id: number): BtfType {
    if (id === 0) return { kind: 'void', id, name: 'void' };
    const b = this.types;
    const off = this.offsets[id];
    const name = this.str(b.readUInt32LE(off), id);
    const info = b.readUInt32LE(off + 4);
    const vlen = info & 0xffff;
    const kindFlag = (info >>> 31) === 1;
    const kind = KINDS[(info >>> 24) & 0x1f];
    const sizeOrType = b.readUInt32LE(off + 8);
    const x = off + 12;
    const list = <T>(stride: number, f: (at: number) => T): T[] => Array.from({ length: vlen }, (_, i) => f(x + i * stride));
    switch (kind) {
      case 'int': {
        const enc = b.readUInt32LE(x);
        return { kind, id, name, size: sizeOrType, signed: ((enc >>> 24) & 1) !== 0, char: ((enc >>> 24) & 2) !== 0,
          bool: ((enc >>> 24) & 4) !== 0, bitOffset: (enc >>> 16) & 0xff, bits: enc & 0xff };
      }
      case 'ptr': case 'typedef': case 'volatile': case 'const': case 'restrict': case 'type_tag':
        return { kind, id, name, type: this.ref(id, sizeOrType) };
      case 'array':
        return { kind, id, name, elemType: this.ref(id, b.readUInt32LE(x)), indexType: this.ref(id, b.readUInt32LE(x + 4)), nelems: b.readUInt32LE(x + 8) };
      case 'struct': case 'union':
        return { kind, id, name, size: sizeOrType, members: list(12, (at) => {
          const raw = b.readUInt32LE(at + 8);
          return { name: this.str(b.readUInt32LE(at), id), type: this.ref(id, b.readUInt32LE(at + 4)),
            bitOffset: kindFlag ? raw & 0xffffff : raw, bitSize: kindFlag ? raw >>> 24 : 0 };
        }) };
      case 'enum':
        return { kind, id, name, size: sizeOrType, signed: kindFlag, values: list(8, (at) => ({
          name: this.str(b.readUInt32LE(at), id), value: BigInt(kindFlag ? b.readInt32LE(at + 4) : b.readUInt32LE(at + 4)) })) };
      case 'enum64':
        return { kind, id, name, size: sizeOrType, signed: kindFlag, values: list(12, (at) => {
          const v = (BigInt(b.readUInt32LE(at + 8)) << 32n) | BigInt(b.readUInt32LE(at + 4));
          return { name: this.str(b.readUInt32LE(at), id), value: kindFlag ? BigInt.asIntN(64, v) : v };
        }) };
      case 'fwd':
        return { kind, id, name, union: kindFlag };
      case 'func':
        return { kind, id, name, type: this.ref(id, sizeOrType), linkage: vlen };
      case 'func_proto':
        return { kind, id, name, returnType: this.ref(id, sizeOrType),
          params: list(8, (at) => ({ name: this.str(b.readUInt32LE(at), id), type: this.ref(id, b.readUInt32LE(at + 4)) })) };
      case 'var':
        return { kind, id, name, type: this.ref(id, sizeOrType), linkage: b.readUInt32LE(x) };
      case 'datasec':
        return { kind, id, name, size: sizeOrType,
          vars: list(12, (at) => ({ type: this.ref(id, b.readUInt32LE(at)), offset: b.readUInt32LE(at + 4), size: b.readUInt32LE(at + 8) })) };
      case 'float':
        return { kind, id, name, size: sizeOrType };
      case 'decl_tag':
        return { kind, id, name, type: this.ref(id, sizeOrType), componentIdx: b.readInt32LE(x) };
      default:
        throw new BadDataError(`BTF type ${id} has kind ${kind}`);
    }
  }
}
