/** JSON text of a value holding bigints (addresses print as 0x-hex strings). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v), 2);
}

export function hex(v: bigint): string {
  return '0x' + v.toString(16);
}
