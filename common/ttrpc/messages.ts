import protobuf from 'protobufjs';
import { BadDataError, errorMessage } from '../errors.js';
import { TO_OBJECT, asBuffer as bytesAsBuffer, loadProtos } from '../proto.js';
import { StatusCode } from './status.js';


/** Metadata as upstream's MD: lower-case keys, each with one or more values. */
export type Metadata = Map<string, string[]>;

export interface RequestMessage {
  service: string;
  method: string;
  payload: Buffer;
  /** Nanoseconds left for the call; 0n for none. */
  timeoutNano: bigint;
  metadata: Metadata;
}

export interface ResponseMessage {
  status: { code: StatusCode; message: string };
  payload: Buffer;
}

function type(name: string): protobuf.Type {
  return loadProtos('ttrpc').lookupType(name);
}

/** ttrpc's envelope types (for prepareCodecs ahead of a first call). */
export function envelopeTypes(): protobuf.Type[] {
  return [type('ttrpc.Request'), type('ttrpc.Response')];
}

function encode(typeName: string, fields: Record<string, unknown>): Buffer {
  const t = type(typeName);
  return bytesAsBuffer(t.encode(t.fromObject(fields)).finish());
}

function decode(typeName: string, bytes: Uint8Array): Record<string, unknown> {
  const t = type(typeName);
  try {
    return t.toObject(t.decode(bytes), TO_OBJECT);
  } catch (err) {
    throw new BadDataError(`ttrpc ${typeName} does not decode: ${errorMessage(err)}`, { cause: err });
  }
}

function asBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.length);
  return Buffer.alloc(0);
}

export function encodeRequest(req: RequestMessage): Buffer {
  const metadata: { key: string; value: string }[] = [];
  for (const [key, values] of req.metadata) for (const value of values) metadata.push({ key, value });
  return encode('ttrpc.Request', {
    service: req.service,
    method: req.method,
    payload: req.payload,
    timeout_nano: req.timeoutNano,
    metadata,
  });
}

/** ttrpc.Request's field number of its metadata entries. */
const METADATA_FIELD = 5;

/**
 * How many metadata entries a ttrpc.Request holds and their encoded bytes,
 * read from the wire without decoding anything (a few bytes an entry would
 * otherwise become a few objects each). Bytes that do not parse count as
 * none: decodeRequest then rejects them.
 */
export function metadataSize(bytes: Uint8Array): { entries: number; bytes: number } {
  const size = { entries: 0, bytes: 0 };
  const reader = protobuf.Reader.create(bytes);
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag >>> 3 === METADATA_FIELD && (tag & 7) === 2) {
        const length = reader.uint32();
        size.entries++;
        size.bytes += length;
        reader.skip(length);
      } else {
        reader.skipType(tag & 7);
      }
    }
  } catch {
    // Malformed: decodeRequest says so with its own error.
  }
  return size;
}

export function decodeRequest(bytes: Uint8Array): RequestMessage {
  const obj = decode('ttrpc.Request', bytes);
  const metadata: Metadata = new Map();
  for (const kv of obj.metadata as { key: string; value: string }[]) {
    // Upstream's MD.Get lower-cases the key it looks up; do it once here.
    const key = kv.key.toLowerCase();
    const values = metadata.get(key);
    if (values) values.push(kv.value);
    else metadata.set(key, [kv.value]);
  }
  return {
    service: obj.service as string,
    method: obj.method as string,
    payload: asBuffer(obj.payload),
    timeoutNano: obj.timeout_nano as bigint,
    metadata,
  };
}

export function encodeResponse(res: ResponseMessage): Buffer {
  return encode('ttrpc.Response', { status: { code: res.status.code, message: res.status.message }, payload: res.payload });
}

export function decodeResponse(bytes: Uint8Array): ResponseMessage {
  const obj = decode('ttrpc.Response', bytes);
  // An absent status is OK, as upstream's client treats a nil Status.
  const status = (obj.status ?? { code: 0, message: '' }) as { code: number; message: string };
  return { status: { code: status.code, message: status.message }, payload: asBuffer(obj.payload) };
}

/** Metadata from a caller's plain object: keys lower-cased as upstream's MD.Set does. */
export function toMetadata(fields: Record<string, string | string[]> | Metadata | undefined): Metadata {
  const md: Metadata = new Map();
  if (!fields) return md;
  const entries = fields instanceof Map ? fields.entries() : Object.entries(fields);
  for (const [key, value] of entries) {
    const values = Array.isArray(value) ? value : [value];
    if (values.length) md.set(key.toLowerCase(), [...(md.get(key.toLowerCase()) ?? []), ...values]);
  }
  return md;
}
