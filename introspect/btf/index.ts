export { Btf } from './btf.js';
export { BtfKind, BtfType, Member, StructType } from './types.js';
