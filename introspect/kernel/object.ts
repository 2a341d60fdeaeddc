import { BadDataError } from '../../common/errors.js';
import { BtfType } from '../btf/index.js';
import { Program } from './program.js';


/**
 * A lazy reference to a kernel object: an address and a BTF type, read only
 * when a value is asked for (drgn's Object). `path` names it in errors, e.g.
 * `task_struct(0xffff...).mm`.
 */
export class KObject {
  constructor(readonly prog: Program, readonly typeId: number, readonly address: bigint, readonly path: string) {}

  /** An object of a named struct at an address. */
  static struct(prog: Program, name: string, address: bigint): KObject {
    return new KObject(prog, prog.btf.struct(name).id, address, `${name}(0x${address.toString(16)})`);
  }

  get type(): BtfType {
    return this.prog.btf.resolve(this.typeId);
  }

  get size(): number {
    return this.prog.btf.sizeof(this.typeId);
  }

  /** A member by name, or a dotted path through nested structs ('signal.thread_head'). */
  member(path: string): KObject {
    let obj: KObject = this;
    for (const name of path.split('.')) {
      const t = obj.type;
      if (t.kind !== 'struct' && t.kind !== 'union') throw new BadDataError(`${obj.path} is not a struct, cannot take .${name}`);
      const m = obj.prog.btf.member(t, name);
      if (!m) throw new BadDataError(`${obj.path}: no member ${name} in this kernel's ${t.kind} ${t.name}`);
      if (m.bitSize !== 0 || m.bitOffset % 8 !== 0) throw new BadDataError(`${obj.path}.${name} is a bitfield; use bitfield()`);
      obj = new KObject(obj.prog, m.type, obj.address + BigInt(m.bitOffset / 8), `${obj.path}.${name}`);
    }
    return obj;
  }

  /** An unsigned bitfield member (e.g. task_struct.frozen). */
  bitfield(name: string): number {
    const t = this.type;
    if (t.kind !== 'struct' && t.kind !== 'union') throw new BadDataError(`${this.path} is not a struct, cannot take .${name}`);
    const m = this.prog.btf.member(t, name);
    if (!m) throw new BadDataError(`${this.path}: no member ${name} in this kernel's ${t.kind} ${t.name}`);
    const bits = m.bitSize || this.prog.btf.sizeof(m.type) * 8;
    if (bits > 32) throw new BadDataError(`${this.path}.${name}: bitfield of ${bits} bits`);
    const first = Math.floor(m.bitOffset / 8);
    const span = Math.ceil((m.bitOffset % 8 + bits) / 8);
    const raw = this.prog.read(this.address + BigInt(first), span, `${this.path}.${name}`);
    let v = 0n;
    for (let i = span - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]);
    return Number((v >> BigInt(m.bitOffset % 8)) & ((1n << BigInt(bits)) - 1n));
  }

  /** Whether this kernel's struct has the member (feature detection from BTF). */
  has(name: string): boolean {
    const t = this.type;
    return (t.kind === 'struct' || t.kind === 'union') && this.prog.btf.member(t, name) !== undefined;
  }

  /** The value of an integer, enum or pointer object, as an unsigned or signed bigint. */
  value(): bigint {
    const t = this.type;
    let signed = false;
    if (t.kind === 'int') signed = t.signed;
    else if (t.kind === 'enum' || t.kind === 'enum64') signed = t.signed;
    else if (t.kind !== 'ptr') throw new BadDataError(`${this.path} is a ${t.kind}, not a number`);
    const size = this.size;
    const buf = this.prog.read(this.address, size, this.path);
    switch (size) {
      case 1: return BigInt(signed ? buf.readInt8(0) : buf.readUInt8(0));
      case 2: return BigInt(signed ? buf.readInt16LE(0) : buf.readUInt16LE(0));
      case 4: return BigInt(signed ? buf.readInt32LE(0) : buf.readUInt32LE(0));
      case 8: return signed ? buf.readBigInt64LE(0) : buf.readBigUInt64LE(0);
      default: throw new BadDataError(`${this.path}: integer of ${size} bytes`);
    }
  }

  /** The value as a JS number; for counts, ids and flags that fit. */
  num(): number {
    const v = this.value();
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new BadDataError(`${this.path} = ${v} is too large`);
    return Number(v);
  }

  /** The object a pointer points to (the pointer must not be NULL). */
  deref(): KObject {
    const t = this.type;
    if (t.kind !== 'ptr') throw new BadDataError(`${this.path} is not a pointer`);
    const target = this.value();
    if (target === 0n) throw new BadDataError(`${this.path} is NULL`);
    return new KObject(this.prog, t.type, target, `*${this.path}`);
  }

  /** A NUL-terminated char array member, such as task_struct.comm. */
  string(): string {
    const t = this.type;
    if (t.kind !== 'array') throw new BadDataError(`${this.path} is not a char array`);
    const buf = this.prog.read(this.address, this.size, this.path);
    const nul = buf.indexOf(0);
    return buf.toString('utf8', 0, nul < 0 ? buf.length : nul);
  }

  /** Element i of an array member, bounds-checked against the array's length. */
  index(i: number): KObject {
    const t = this.type;
    if (t.kind !== 'array') throw new BadDataError(`${this.path} is not an array`);
    if (i < 0 || i >= t.nelems) throw new BadDataError(`${this.path}[${i}] is out of bounds (${t.nelems})`);
    return new KObject(this.prog, t.elemType, this.address + BigInt(i * this.prog.btf.sizeof(t.elemType)), `${this.path}[${i}]`);
  }

  /** Element i past a flexible array member (length 0 in the type), bounded by the caller. */
  flexIndex(i: number, bound: number): KObject {
    const t = this.type;
    if (t.kind !== 'array') throw new BadDataError(`${this.path} is not an array`);
    if (i < 0 || i >= bound) throw new BadDataError(`${this.path}[${i}] is out of bounds (${bound})`);
    return new KObject(this.prog, t.elemType, this.address + BigInt(i * this.prog.btf.sizeof(t.elemType)), `${this.path}[${i}]`);
  }
}

/** The struct that contains a member at `address` (the kernel's container_of). */
export function containerOf(prog: Program, address: bigint, structName: string, memberPath: string): KObject {
  return KObject.struct(prog, structName, address - BigInt(prog.btf.memberOffset(structName, memberPath)));
}

/**
 * Entries of a kernel list (struct list_head) of `structName` linked through
 * `memberPath`, head excluded. Bounded and cycle-checked: guest RAM may lie.
 */
export function* listForEach(prog: Program, head: bigint, structName: string, memberPath: string, bound = 1 << 20): Generator<KObject> {
  const seen = new Set<bigint>([head]);
  let node = prog.u64(head, `list_head at 0x${head.toString(16)}`);
  while (node !== head) {
    if (node === 0n) throw new BadDataError(`list of ${structName}.${memberPath} at 0x${head.toString(16)} has a NULL next`);
    if (seen.has(node)) throw new BadDataError(`list of ${structName}.${memberPath} at 0x${head.toString(16)} loops at 0x${node.toString(16)}`);
    if (seen.size > bound) throw new BadDataError(`list of ${structName}.${memberPath} at 0x${head.toString(16)} has more than ${bound} entries`);
    seen.add(node);
    yield containerOf(prog, node, structName, memberPath);
    node = prog.u64(node, `${structName}.${memberPath}.next at 0x${node.toString(16)}`);
  }
}


/**
 * Entries of a kernel hlist (struct hlist_head at `head`, NULL-terminated
 * through hlist_node.next) of `structName` linked through `memberPath`.
 * Bounded and cycle-checked.
 */
export function* hlistForEach(prog: Program, head: bigint, structName: string, memberPath: string, bound = 1 << 20): Generator<KObject> {
  const seen = new Set<bigint>();
  let node = prog.u64(head, `hlist_head at 0x${head.toString(16)}`);
  while (node !== 0n) {
    if (seen.has(node)) throw new BadDataError(`hlist of ${structName}.${memberPath} at 0x${head.toString(16)} loops at 0x${node.toString(16)}`);
    if (seen.size >= bound) throw new BadDataError(`hlist of ${structName}.${memberPath} at 0x${head.toString(16)} has more than ${bound} entries`);
    seen.add(node);
    yield containerOf(prog, node, structName, memberPath);
    node = prog.u64(node, `${structName}.${memberPath}.next at 0x${node.toString(16)}`);
  }
}
