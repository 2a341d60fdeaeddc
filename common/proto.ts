import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { BadDataError, errorMessage } from './errors.js';

/** Compiled code lives in <root>/dist/common, the .proto files in <root>/proto. */
export const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');

/**
 * The one conversion policy for every message we decode: fields keep the
 * .proto's names (keepCase at load), 64-bit integers are bigint, enums their
 * numbers, bytes Buffers, repeated fields always arrays. `defaults` fills
 * absent fields: right for proto3, where absence and the default are the same
 * thing; proto2 images (CRIU) keep presence and pass `{ defaults: false }`.
 */
export const TO_OBJECT: protobuf.IConversionOptions = { longs: BigInt, enums: Number, bytes: Buffer, defaults: true, arrays: true };

const roots = new Map<string, protobuf.Root>();

function protoFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...protoFiles(p));
    else if (entry.name.endsWith('.proto')) out.push(p);
  }
  return out;
}

/**
 * Every .proto below proto/<folder>, in one resolved Root (loaded once).
 * Imports are written relative to proto/, as `protoc -I proto` takes them;
 * google/protobuf ones come from protobufjs' bundled copies.
 */
export function loadProtos(folder: string): protobuf.Root {
  let root = roots.get(folder);
  if (!root) {
    const dir = path.join(PROTO_ROOT, folder);
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_ROOT, target));
    try {
      r.loadSync(protoFiles(dir), { keepCase: true });
      r.resolveAll();
    } catch (err) {
      throw new BadDataError(`the protos in ${dir} do not load: ${errorMessage(err)}`, { cause: err });
    }
    root = r;
    roots.set(folder, root);
  }
  return root;
}

/** A message's bytes as a Buffer over the same memory. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/**
 * Has protobufjs generate now the codecs (encode, decode, fromObject,
 * toObject, verify) of a message type and of every message type it holds:
 * it generates each type's on that type's first use, nested ones included,
 * which under TCG is guest CPU a first call pays (one seen-set: types may
 * hold themselves).
 */
export function prepareCodecs(type: protobuf.Type, seen = new Set<protobuf.Type>()): void {
  if (seen.has(type)) return;
  seen.add(type);
  // setup() makes the codecs the type's own properties; until then decode is the prototype's, which calls it.
  if (!Object.hasOwn(type, 'decode')) type.setup();
  for (const field of type.fieldsArray) {
    if (field.resolvedType instanceof protobuf.Type) prepareCodecs(field.resolvedType, seen);
  }
}
