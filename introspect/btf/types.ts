/** BTF kinds (include/uapi/linux/btf.h), by their number in btf_type.info bits 24-28. */
export const KINDS = [
  'void', 'int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef', 'volatile', 'const', 'restrict',
  'func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64',
] as const;

export type BtfKind = (typeof KINDS)[number];

export interface Member {
  name: string;
  type: number;
  bitOffset: number;
  /** 0 unless a bitfield. */
  bitSize: number;
}

interface Base {
  id: number;
  name: string;
}

export type BtfType =
  | (Base & { kind: 'void' })
  | (Base & { kind: 'int'; size: number; signed: boolean; char: boolean; bool: boolean; bits: number; bitOffset: number })
  | (Base & { kind: 'ptr' | 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag'; type: number })
  | (Base & { kind: 'array'; elemType: number; indexType: number; nelems: number })
  | (Base & { kind: 'struct' | 'union'; size: number; members: Member[] })
  | (Base & { kind: 'enum' | 'enum64'; size: number; signed: boolean; values: { name: string; value: bigint }[] })
  | (Base & { kind: 'fwd'; union: boolean })
  | (Base & { kind: 'func'; type: number; linkage: number })
  | (Base & { kind: 'func_proto'; returnType: number; params: { name: string; type: number }[] })
  | (Base & { kind: 'var'; type: number; linkage: number })
  | (Base & { kind: 'datasec'; size: number; vars: { type: number; offset: number; size: number }[] })
  | (Base & { kind: 'float'; size: number })
  | (Base & { kind: 'decl_tag'; type: number; componentIdx: number });

export type StructType = Extract<BtfType, { kind: 'struct' | 'union' }>;

/** Bytes of kind-specific data after the 12-byte btf_type, for a kind number and vlen. */
export function extraSize(kind: number, vlen: number): number {
  switch (kind) {
    case 1: case 14: case 17: return 4; // INT encoding, VAR linkage, DECL_TAG component_idx
    case 3: return 12; // ARRAY
    case 4: case 5: case 15: case 19: return 12 * vlen; // members, datasec vars, enum64 values
    case 6: case 13: return 8 * vlen; // enum values, func_proto params
    case 2: case 7: case 8: case 9: case 10: case 11: case 12: case 16: case 18: return 0;
    default: return -1;
  }
}
