import { BtfBuilder } from './btf-builder.js';

/**
 * Kernel types for tests, declared as C would (member name, type) and laid
 * out with natural alignment, then written as BTF. Type strings: an integer
 * ('u8'..'u64', 's8'..'s64', 'char', 'bool'), an enum or struct by name,
 * 'ptr' (void *), '*NAME' (pointer), 'T[N]' (array; N = 0 is a flexible
 * array) and 'uN:B' (a bitfield of B bits). The layout is not the real
 * kernel's: readers must find every offset through BTF, and tests find them
 * here.
 */
export type Fields = [name: string, type: string][];
export interface StructDecl {
  fields: Fields;
  union?: boolean;
}
export type StructDecls = Record<string, Fields | StructDecl>;
export type EnumDecls = Record<string, [string, number][]>;

const INTS: Record<string, { size: number; signed: boolean }> = {
  u8: { size: 1, signed: false }, u16: { size: 2, signed: false }, u32: { size: 4, signed: false }, u64: { size: 8, signed: false },
  s8: { size: 1, signed: true }, s16: { size: 2, signed: true }, s32: { size: 4, signed: true }, s64: { size: 8, signed: true },
  char: { size: 1, signed: true }, bool: { size: 1, signed: false },
};

export interface FieldLayout {
  name: string;
  type: string;
  /** Bits from the start of the struct. */
  bitOffset: number;
  /** 0 unless a bitfield. */
  bitSize: number;
}

/** What a type string resolves to, for writing values. */
export type TypeShape =
  | { kind: 'int'; size: number; signed: boolean }
  | { kind: 'ptr' }
  | { kind: 'enum' }
  | { kind: 'array'; elem: string; n: number }
  | { kind: 'struct'; name: string };

export class KernelTypes {
  private readonly structs = new Map<string, StructDecl>();
  private readonly layouts = new Map<string, { size: number; align: number; fields: FieldLayout[] }>();

  constructor(structs: StructDecls, private readonly enums: EnumDecls = {}) {
    for (const [name, decl] of Object.entries(structs)) this.structs.set(name, Array.isArray(decl) ? { fields: decl } : decl);
  }

  shape(type: string): TypeShape {
    const bits = /^(\w+):\d+$/.exec(type);
    if (bits) return this.shape(bits[1]);
    const arr = /^(.+)\[(\d+)\]$/.exec(type);
    if (arr) return { kind: 'array', elem: arr[1], n: Number(arr[2]) };
    if (type === 'ptr' || type.startsWith('*')) return { kind: 'ptr' };
    if (INTS[type]) return { kind: 'int', ...INTS[type] };
    if (this.enums[type]) return { kind: 'enum' };
    if (this.structs.has(type)) return { kind: 'struct', name: type };
    throw new Error(`test kernel types: unknown type ${type}`);
  }

  sizeAlign(type: string): { size: number; align: number } {
    const s = this.shape(type);
    switch (s.kind) {
      case 'int': return { size: s.size, align: s.size };
      case 'ptr': return { size: 8, align: 8 };
      case 'enum': return { size: 4, align: 4 };
      case 'array': { const e = this.sizeAlign(s.elem); return { size: e.size * s.n, align: e.align }; }
      case 'struct': return this.layout(s.name);
    }
  }

  layout(name: string): { size: number; align: number; fields: FieldLayout[] } {
    let l = this.layouts.get(name);
    if (l) return l;
    const decl = this.structs.get(name);
    if (!decl) throw new Error(`test kernel types: no struct ${name}`);
    const fields: FieldLayout[] = [];
    let bit = 0;
    let size = 0;
    let align = 1;
    for (const [fname, type] of decl.fields) {
      const bf = /^(\w+):(\d+)$/.exec(type);
      const sa = this.sizeAlign(type);
      align = Math.max(align, sa.align);
      if (decl.union) {
        fields.push({ name: fname, type, bitOffset: 0, bitSize: bf ? Number(bf[2]) : 0 });
        size = Math.max(size, sa.size);
        continue;
      }
      if (bf) {
        fields.push({ name: fname, type, bitOffset: bit, bitSize: Number(bf[2]) });
        bit += Number(bf[2]);
      } else {
        const at = Math.ceil(Math.ceil(bit / 8) / sa.align) * sa.align;
        fields.push({ name: fname, type, bitOffset: at * 8, bitSize: 0 });
        bit = (at + sa.size) * 8;
      }
      size = Math.ceil(bit / 8);
    }
    l = { size: Math.ceil(size / align) * align, align, fields };
    this.layouts.set(name, l);
    return l;
  }

  sizeof(type: string): number {
    return this.sizeAlign(type).size;
  }

  /** Where a member path ('d_name.len', 'numbers[1].nr') of a struct lies, as a C compiler would place it. */
  locate(struct: string, path: string): FieldLayout {
    let type = struct;
    let bitOffset = 0;
    let last: FieldLayout | undefined;
    for (const part of path.split('.')) {
      const m = /^(\w+)((?:\[\d+\])*)$/.exec(part);
      if (!m) throw new Error(`test kernel types: bad member path ${path}`);
      const shape = this.shape(type);
      if (shape.kind !== 'struct') throw new Error(`test kernel types: ${struct}.${path}: ${type} is not a struct`);
      const f = this.layout(shape.name).fields.find((x) => x.name === m[1]);
      if (!f) throw new Error(`test kernel types: no member ${m[1]} in struct ${type}`);
      bitOffset += f.bitOffset;
      type = f.type;
      for (const idx of m[2].match(/\d+/g) ?? []) {
        const arr = this.shape(type);
        if (arr.kind !== 'array') throw new Error(`test kernel types: ${struct}.${path}: not an array`);
        bitOffset += Number(idx) * this.sizeof(arr.elem) * 8;
        type = arr.elem;
      }
      last = { name: m[1], type, bitOffset, bitSize: m[2] ? 0 : f.bitSize };
    }
    return last!;
  }

  /** The BTF blob: ints, enums, then structs (ids known ahead), then the pointers and arrays they use. */
  btf(): Buffer {
    const b = new BtfBuilder();
    const ids = new Map<string, number>();
    let next = 1;
    for (const name of Object.keys(INTS)) ids.set(name, next++);
    for (const name of Object.keys(this.enums)) ids.set(name, next++);
    for (const name of this.structs.keys()) ids.set(name, next++);
    const derived: { key: string; emit: () => number }[] = [];
    const id = (type: string): number => {
      const bits = /^(\w+):\d+$/.exec(type);
      if (bits) return id(bits[1]);
      const have = ids.get(type);
      if (have !== undefined) return have;
      const s = this.shape(type);
      let emit: () => number;
      if (s.kind === 'ptr') {
        const target = type === 'ptr' ? 0 : id(type.slice(1));
        emit = () => b.ptr(target);
      } else if (s.kind === 'array') {
        const elem = id(s.elem);
        emit = () => b.array(elem, ids.get('u32')!, s.n);
      } else {
        throw new Error(`test kernel types: no id for ${type}`);
      }
      ids.set(type, next++);
      derived.push({ key: type, emit });
      return ids.get(type)!;
    };
    const members = new Map<string, [string, number, number, number?][]>();
    for (const name of this.structs.keys()) {
      const l = this.layout(name);
      const bitfields = l.fields.some((f) => f.bitSize > 0);
      members.set(name, l.fields.map((f) => [f.name, id(f.type), f.bitOffset, bitfields ? f.bitSize : undefined]));
    }
    for (const [name, { size, signed }] of Object.entries(INTS)) b.int(name, size, signed);
    for (const [name, values] of Object.entries(this.enums)) b.enumType(name, values);
    for (const [name, decl] of this.structs) b.struct(name, this.layout(name).size, members.get(name)!, decl.union);
    for (const d of derived) {
      if (d.emit() !== ids.get(d.key)) throw new Error(`test kernel types: BTF id of ${d.key} out of order`);
    }
    return b.build();
  }
}
