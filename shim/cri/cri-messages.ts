import protobuf from 'protobufjs';
import { BadDataError, errorMessage } from '../../common/errors.js';
import { asBuffer, loadProtos, TO_OBJECT } from '../../common/proto.js';

/**
 * The few CRI messages the intercepts decode or build (proto/cri: a subset
 * of runtime.v1 with the API's field numbers). Forwarded calls never pass
 * through here: the proxy keeps their bytes.
 */

/** runtime.v1.ContainerState. */
export enum ContainerState {
  CREATED = 0,
  RUNNING = 1,
  EXITED = 2,
  UNKNOWN = 3,
}

export function criType(name: string): protobuf.Type {
  return loadProtos('cri').lookupType(`runtime.v1.${name}`);
}

export function encodeCri(name: string, obj: object): Buffer {
  const t = criType(name);
  return asBuffer(t.encode(t.fromObject(obj as Record<string, unknown>)).finish());
}

/** A message as a plain object with the .proto's names (TO_OBJECT: proto3 defaults filled). */
export function decodeCri<T = Record<string, unknown>>(name: string, bytes: Uint8Array): T {
  const t = criType(name);
  try {
    return t.toObject(t.decode(bytes), TO_OBJECT) as T;
  } catch (err) {
    throw new BadDataError(`runtime.v1.${name} does not decode: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * A message as Go's encoding/json writes the CRI's generated struct
 * (containerd's status.dump): fields in declaration order under their
 * .proto names, zero values left out (omitempty), a present sub-message kept
 * even when empty, map keys sorted, 64-bit integers as plain numbers, enums
 * as their numbers.
 */
export function goJson(name: string, bytes: Uint8Array): string {
  const t = criType(name);
  const obj = t.toObject(t.decode(bytes), { longs: BigInt, enums: Number, bytes: String, defaults: false, arrays: false, objects: false });
  return encodeGo(t, obj);
}

function isZero(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === false || v === 0 || v === 0n) return true;
  if (Array.isArray(v)) return v.length === 0;
  return false;
}

function scalar(v: unknown): string {
  return typeof v === 'bigint' ? v.toString() : JSON.stringify(v);
}

function encodeGo(t: protobuf.Type, obj: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const field of t.fieldsArray.slice().sort((a, b) => a.id - b.id)) {
    const v = obj[field.name];
    const message = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    if (field.map) {
      const entries = Object.entries((v ?? {}) as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      if (entries.length === 0) continue;
      const body = entries.map(([k, x]) => `${JSON.stringify(k)}:${message ? encodeGo(message, x as Record<string, unknown>) : scalar(x)}`);
      parts.push(`${JSON.stringify(field.name)}:{${body.join(',')}}`);
    } else if (field.repeated) {
      if (isZero(v)) continue;
      const items = (v as unknown[]).map((x) => (message ? encodeGo(message, x as Record<string, unknown>) : scalar(x)));
      parts.push(`${JSON.stringify(field.name)}:[${items.join(',')}]`);
    } else if (message) {
      if (v === undefined || v === null) continue;
      parts.push(`${JSON.stringify(field.name)}:${encodeGo(message, v as Record<string, unknown>)}`);
    } else {
      if (isZero(v)) continue;
      parts.push(`${JSON.stringify(field.name)}:${scalar(v)}`);
    }
  }
  return `{${parts.join(',')}}`;
}
