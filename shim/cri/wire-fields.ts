import protobuf from 'protobufjs';
import { BadDataError, errorMessage } from '../../common/errors.js';

/**
 * Reading and rewriting single fields of a protobuf message at the wire
 * level, for intercepts that change one field of a CRI request (an image
 * reference, a location) and must keep every other field, known to us or
 * not, byte for byte. protobufjs' decode/encode would drop the fields our
 * .proto does not name, and the CRI adds fields every release.
 */

const LENGTH_DELIMITED = 2;

/** One field occurrence: its whole range, and for a length-delimited one the payload's. */
export interface WireField {
  field: number;
  wireType: number;
  start: number;
  end: number;
  valueStart: number;
  valueEnd: number;
}

/** The top-level fields of a message, in wire order. Malformed bytes are a BadDataError. */
export function scanFields(message: Uint8Array): WireField[] {
  const out: WireField[] = [];
  const reader = protobuf.Reader.create(message);
  try {
    while (reader.pos < reader.len) {
      const start = reader.pos;
      const tag = reader.uint32();
      const field = tag >>> 3;
      const wireType = tag & 7;
      if (field === 0) throw new Error(`field number 0 at byte ${start}`);
      let valueStart = reader.pos;
      if (wireType === LENGTH_DELIMITED) {
        const len = reader.uint32();
        valueStart = reader.pos;
        reader.skip(len);
      } else {
        reader.skipType(wireType);
      }
      out.push({ field, wireType, start, end: reader.pos, valueStart, valueEnd: reader.pos });
    }
  } catch (err) {
    throw new BadDataError(`malformed protobuf message (${message.length} bytes): ${errorMessage(err)}`, { cause: err });
  }
  return out;
}

function lengthDelimited(message: Uint8Array, field: number): WireField[] {
  const found = scanFields(message).filter((f) => f.field === field);
  const wrong = found.find((f) => f.wireType !== LENGTH_DELIMITED);
  if (wrong) throw new BadDataError(`field ${field} has wire type ${wrong.wireType}, not length-delimited`);
  return found;
}

/**
 * A length-delimited field's payload. A string or bytes field that occurs
 * more than once is its last occurrence; a message field is all its
 * occurrences concatenated, which is how protobuf merges them.
 */
export function getField(message: Uint8Array, field: number, kind: 'scalar' | 'message' = 'scalar'): Buffer | undefined {
  const found = lengthDelimited(message, field);
  if (found.length === 0) return undefined;
  const slice = (f: WireField) => Buffer.from(message.buffer, message.byteOffset + f.valueStart, f.valueEnd - f.valueStart);
  return kind === 'scalar' ? slice(found[found.length - 1]) : Buffer.concat(found.map(slice));
}

/** A string field (UTF-8), or undefined when absent. */
export function getString(message: Uint8Array, field: number): string | undefined {
  return getField(message, field)?.toString('utf8');
}

/**
 * The message with a length-delimited field set to `value` (undefined:
 * removed). The new field takes the place of its first occurrence (or goes
 * last); its other occurrences go; every other byte stays as it was.
 */
export function setField(message: Uint8Array, field: number, value: Uint8Array | undefined): Buffer {
  const found = lengthDelimited(message, field);
  const encoded = value === undefined ? Buffer.alloc(0) : Buffer.from(protobuf.Writer.create().uint32((field << 3) | LENGTH_DELIMITED).bytes(value).finish());
  const parts: Uint8Array[] = [];
  let pos = 0;
  for (const [i, f] of found.entries()) {
    parts.push(message.subarray(pos, f.start));
    if (i === 0) parts.push(encoded);
    pos = f.end;
  }
  parts.push(message.subarray(pos));
  if (found.length === 0) parts.push(encoded);
  return Buffer.concat(parts);
}

/** A string field set (UTF-8); proto3 leaves an empty string out, and so does this. */
export function setString(message: Uint8Array, field: number, value: string): Buffer {
  return setField(message, field, value === '' ? undefined : Buffer.from(value, 'utf8'));
}

/**
 * Edits a field nested in sub-messages: `path` is the field numbers from the
 * top (CreateContainerRequest.config.image.image is [2, 2, 1]). The edit
 * gets the field's payload (undefined when absent) and returns the new one
 * (undefined: remove). Sub-messages on the way are created when absent.
 */
export function editField(message: Uint8Array, path: readonly number[], edit: (value: Buffer | undefined) => Uint8Array | undefined): Buffer {
  if (path.length === 0) throw new BadDataError('editField: empty field path');
  const [field, ...rest] = path;
  if (rest.length === 0) return setField(message, field, edit(getField(message, field)));
  const inner = getField(message, field, 'message') ?? Buffer.alloc(0);
  return setField(message, field, editField(inner, rest, edit));
}

/** A string nested in sub-messages, as editField addresses it. */
export function getNestedString(message: Uint8Array, path: readonly number[]): string | undefined {
  let current: Buffer | undefined = Buffer.from(message.buffer, message.byteOffset, message.length);
  for (const [i, field] of path.entries()) {
    if (!current) return undefined;
    current = getField(current, field, i === path.length - 1 ? 'scalar' : 'message');
  }
  return current?.toString('utf8');
}

/** Every occurrence of a length-delimited field (a repeated string, message or map entry), in wire order. */
export function getRepeated(message: Uint8Array, field: number): Buffer[] {
  return lengthDelimited(message, field).map((f) => Buffer.from(message.buffer, message.byteOffset + f.valueStart, f.valueEnd - f.valueStart));
}

/** The message with one more occurrence of a length-delimited field at its end (a repeated element, a map entry). */
export function appendField(message: Uint8Array, field: number, value: Uint8Array): Buffer {
  const encoded = protobuf.Writer.create().uint32((field << 3) | LENGTH_DELIMITED).bytes(value).finish();
  return Buffer.concat([message, encoded]);
}

/** The message without the occurrences of a length-delimited field whose payload `drop` picks; every other byte kept. */
export function dropFields(message: Uint8Array, field: number, drop: (value: Buffer) => boolean): Buffer {
  const parts: Uint8Array[] = [];
  let pos = 0;
  for (const f of lengthDelimited(message, field)) {
    if (!drop(Buffer.from(message.buffer, message.byteOffset + f.valueStart, f.valueEnd - f.valueStart))) continue;
    parts.push(message.subarray(pos, f.start));
    pos = f.end;
  }
  parts.push(message.subarray(pos));
  return Buffer.concat(parts);
}

/** A map<string,string> entry's payload (key 1, value 2). */
export function mapEntry(key: string, value: string): Buffer {
  return Buffer.concat([setString(Buffer.alloc(0), 1, key), setString(Buffer.alloc(0), 2, value)]);
}
