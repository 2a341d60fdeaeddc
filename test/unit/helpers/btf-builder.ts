/** Writes small BTF blobs for tests, in the kernel's layout (include/uapi/linux/btf.h). */
export class BtfBuilder {
  private types: Buffer[] = [];
  private strings: Buffer[] = [Buffer.from([0])];
  private strLen = 1;

  str(s: string): number {
    if (!s) return 0;
    const off = this.strLen;
    const b = Buffer.from(s + '\0');
    this.strings.push(b);
    this.strLen += b.length;
    return off;
  }

  private add(name: string, kind: number, vlen: number, sizeOrType: number, extra: number[] = [], kindFlag = false): number {
    const b = Buffer.alloc(12 + extra.length * 4);
    b.writeUInt32LE(this.str(name), 0);
    b.writeUInt32LE(((kindFlag ? 1 : 0) << 31 | kind << 24 | vlen) >>> 0, 4);
    b.writeUInt32LE(sizeOrType >>> 0, 8);
    extra.forEach((v, i) => b.writeUInt32LE(v >>> 0, 12 + i * 4));
    this.types.push(b);
    return this.types.length;
  }

  int(name: string, size: number, signed = false): number {
    return this.add(name, 1, 0, size, [((signed ? 1 : 0) << 24) | size * 8]);
  }
  ptr(type: number): number { return this.add('', 2, 0, type); }
  array(elem: number, index: number, nelems: number): number { return this.add('', 3, 0, 0, [elem, index, nelems]); }
  struct(name: string, size: number, members: [string, number, number, number?][], union = false): number {
    const bitfields = members.some((m) => m[3] !== undefined);
    const extra = members.flatMap(([n, t, bitOff, bitSize]) => [this.str(n), t, bitfields ? ((bitSize ?? 0) << 24) | bitOff : bitOff]);
    return this.add(name, union ? 5 : 4, members.length, size, extra, bitfields);
  }
  enumType(name: string, values: [string, number][], signed = false): number {
    return this.add(name, 6, values.length, 4, values.flatMap(([n, v]) => [this.str(n), v]), signed);
  }
  enum64(name: string, values: [string, bigint][]): number {
    return this.add(name, 19, values.length, 8, values.flatMap(([n, v]) => [this.str(n), Number(v & 0xffffffffn), Number(v >> 32n)]));
  }
  fwd(name: string): number { return this.add(name, 7, 0, 0); }
  typedef(name: string, type: number): number { return this.add(name, 8, 0, type); }
  qual(kind: 'volatile' | 'const' | 'restrict', type: number): number { return this.add('', { volatile: 9, const: 10, restrict: 11 }[kind], 0, type); }
  funcProto(ret: number, params: [string, number][]): number { return this.add('', 13, params.length, ret, params.flatMap(([n, t]) => [this.str(n), t])); }
  func(name: string, proto: number): number { return this.add(name, 12, 1, proto); }

  build(): Buffer {
    const types = Buffer.concat(this.types);
    const strings = Buffer.concat(this.strings);
    const header = Buffer.alloc(24);
    header.writeUInt16LE(0xeb9f, 0);
    header[2] = 1;
    header.writeUInt32LE(24, 4);
    header.writeUInt32LE(0, 8);
    header.writeUInt32LE(types.length, 12);
    header.writeUInt32LE(types.length, 16);
    header.writeUInt32LE(strings.length, 20);
    return Buffer.concat([header, types, strings]);
  }
}
