import protobuf from 'protobufjs';
import { BadDataError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { loadProtos } from '../../common/proto.js';
import { IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, ImageKind, extraBytes, kindByMagic, kindByName } from './image-kinds.js';

/** No entry of ours comes near this; a larger size in an image is corrupt. */
const MAX_ENTRY = 64 << 20;

/** Every message of CRIU's images, from all of proto/criu (fields keep CRIU's snake_case names, as crit prints them). */
function messageType(name: string): protobuf.Type {
  return loadProtos('criu').lookupType(name);
}

/** A decoded entry: the message as protobufjs decoded it, and any raw bytes that follow it. */
export interface ImageEntry {
  message: protobuf.Message;
  extra?: Buffer;
}

export interface Image {
  kind: ImageKind;
  entries: ImageEntry[];
}

/**
 * Builds an entry from a plain object, checking it first as proto2 requires
 * (missing required fields are an error here, not a corrupt image later).
 * 64-bit fields may be given as bigint, bytes fields as Buffer.
 */
export function makeEntry(typeName: string, fields: Record<string, unknown>, extra?: Buffer): ImageEntry {
  const type = messageType(typeName);
  const plain = JSON.parse(JSON.stringify(fields, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    // A Buffer reaches the replacer already as its toJSON() form; bytes fields take base64.
    if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return Buffer.from((v as { data: number[] }).data).toString('base64');
    }
    return v;
  })) as Record<string, unknown>;
  checkRequired(type, plain, typeName);
  const message = type.fromObject(plain);
  const problem = type.verify(message);
  if (problem) throw new InvalidArgumentError(`${typeName}: ${problem}`);
  return { message, extra };
}

/**
 * proto2 `required` fields must be present: protobufjs fills absent ones
 * from defaults on decoded messages, so check the caller's object itself.
 */
function checkRequired(type: protobuf.Type, obj: Record<string, unknown>, where: string): void {
  for (const field of type.fieldsArray) {
    const value = obj[field.name];
    if (field.required && (value === undefined || value === null)) throw new InvalidArgumentError(`${where}.${field.name} is required`);
    field.resolve();
    if (value !== undefined && field.resolvedType instanceof protobuf.Type) {
      const items = field.repeated ? (value as Record<string, unknown>[]) : [value as Record<string, unknown>];
      items.forEach((item, i) => checkRequired(field.resolvedType as protobuf.Type, item, field.repeated ? `${where}.${field.name}[${i}]` : `${where}.${field.name}`));
    }
  }
}

/** Encodes a whole image file: its magics, then each entry as a little-endian u32 size and the message. */
export function encodeImage(kindName: string, entries: ImageEntry[]): Buffer {
  const kind = kindByName(kindName);
  if (!kind) throw new NotFoundError(`no CRIU image kind ${kindName}`);
  const parts: Buffer[] = [];
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
  if (kind.header === 'common') parts.push(u32(IMG_COMMON_MAGIC));
  if (kind.header === 'service') parts.push(u32(IMG_SERVICE_MAGIC));
  parts.push(u32(kind.magic));
  entries.forEach((e, i) => {
    const type = messageType(i === 0 && kind.head ? kind.head : kind.entry);
    const problem = type.verify(e.message);
    if (problem) throw new InvalidArgumentError(`${kind.name} entry ${i}: ${problem}`);
    const body = Buffer.from(type.encode(e.message).finish());
    parts.push(u32(body.length), body);
    if (kind.extraBytesField) {
      const want = extraBytes(kind, e.message);
      const extra = e.extra ?? Buffer.alloc(0);
      if (extra.length !== want) throw new InvalidArgumentError(`${kind.name} entry ${i}: ${kind.extraBytesField} is ${want} but ${extra.length} bytes follow`);
      parts.push(extra);
    }
  });
  return Buffer.concat(parts);
}

/** Decodes an image file of any kind in the table. */
export function decodeImage(buf: Buffer, what = 'image'): Image {
  if (buf.length < 4) throw new BadDataError(`${what}: too short for a magic`);
  let off = 0;
  let magic = buf.readUInt32LE(0);
  let header: ImageKind['header'] = 'none';
  if (magic === IMG_COMMON_MAGIC || magic === IMG_SERVICE_MAGIC) {
    if (buf.length < 8) throw new BadDataError(`${what}: too short for an image magic`);
    header = magic === IMG_COMMON_MAGIC ? 'common' : 'service';
    magic = buf.readUInt32LE(4);
    off = 8;
  } else {
    off = 4;
  }
  const kind = kindByMagic(magic);
  if (!kind || kind.header !== header) throw new BadDataError(`${what}: unknown image magic 0x${magic.toString(16)}`);
  const entries: ImageEntry[] = [];
  while (off < buf.length) {
    if (off + 4 > buf.length) throw new BadDataError(`${what}: entry ${entries.length} size is cut off`);
    const size = buf.readUInt32LE(off);
    off += 4;
    if (size > MAX_ENTRY || off + size > buf.length) throw new BadDataError(`${what}: entry ${entries.length} of ${size} bytes runs past the end`);
    const type = messageType(entries.length === 0 && kind.head ? kind.head : kind.entry);
    let message: protobuf.Message;
    try {
      message = type.decode(buf.subarray(off, off + size));
    } catch (err) {
      throw new BadDataError(`${what}: entry ${entries.length} is not a ${type.name}: ${(err as Error).message}`, { cause: err });
    }
    off += size;
    const entry: ImageEntry = { message };
    if (kind.extraBytesField) {
      const n = extraBytes(kind, message);
      if (off + n > buf.length) throw new BadDataError(`${what}: entry ${entries.length} announces ${n} bytes of data past the end`);
      entry.extra = Buffer.from(buf.subarray(off, off + n));
      off += n;
    }
    entries.push(entry);
  }
  return { kind, entries };
}

/**
 * An entry as a plain object, for tests and crit-like output: 64-bit values
 * as decimal strings and enums as names, as crit prints them. CRIU's images
 * are proto2, so presence is kept (defaults: false): an absent field stays
 * absent, as in crit's output.
 */
export function entryObject(image: Image, index: number): Record<string, unknown> {
  const type = messageType(index === 0 && image.kind.head ? image.kind.head : image.kind.entry);
  return type.toObject(image.entries[index].message, { longs: String, enums: String, defaults: false });
}
