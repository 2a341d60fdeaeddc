import protobuf from 'protobufjs';
import { BadDataError, InvalidArgumentError, NotFoundError, errorMessage } from '../../common/errors.js';
import { TO_OBJECT, asBuffer, loadProtos } from '../../common/proto.js';

/**
 * ttrpc service names, as containerd v1.6.20 registers them (runtime/v2/task/shim.pb.go,
 * api/services/ttrpc/events/v1/events.pb.go).
 */
export const TASK_SERVICE = 'containerd.task.v2.Task';
export const EVENTS_SERVICE = 'containerd.services.events.ttrpc.v1.Events';

/** Event topics, as containerd v1.6.20 runtime/events.go names them. */
export const TASK_TOPICS = {
  create: '/tasks/create',
  start: '/tasks/start',
  delete: '/tasks/delete',
  exit: '/tasks/exit',
  oom: '/tasks/oom',
  execAdded: '/tasks/exec-added',
  execStarted: '/tasks/exec-started',
  paused: '/tasks/paused',
  resumed: '/tasks/resumed',
  checkpointed: '/tasks/checkpointed',
} as const;
export type TaskEventKind = keyof typeof TASK_TOPICS;

/**
 * Type URLs of the events in an Envelope. containerd's typeurl (vendor/github.com/containerd/typeurl
 * in v1.6.20) names an unregistered protobuf message by its bare full name, with no
 * "type.googleapis.com/" prefix, and looks it up by that exact string when unpacking; the event
 * messages are not registered otherwise (api/events/task.pb.go only calls proto.RegisterType).
 */
export const TASK_EVENT_TYPE_URLS: { readonly [K in TaskEventKind]: string } = {
  create: 'containerd.events.TaskCreate',
  start: 'containerd.events.TaskStart',
  delete: 'containerd.events.TaskDelete',
  exit: 'containerd.events.TaskExit',
  oom: 'containerd.events.TaskOOM',
  execAdded: 'containerd.events.TaskExecAdded',
  execStarted: 'containerd.events.TaskExecStarted',
  paused: 'containerd.events.TaskPaused',
  resumed: 'containerd.events.TaskResumed',
  checkpointed: 'containerd.events.TaskCheckpointed',
};

/**
 * OCI runtime-spec types containerd packs as JSON, not protobuf (runtime/typeurl.go in v1.6.20):
 * Exec's spec is a Process, Update's resources a LinuxResources.
 */
export const SPEC_TYPE_URLS = {
  spec: 'types.containerd.io/opencontainers/runtime-spec/1/Spec',
  process: 'types.containerd.io/opencontainers/runtime-spec/1/Process',
  linuxResources: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources',
  windowsResources: 'types.containerd.io/opencontainers/runtime-spec/1/WindowsResources',
} as const;
/** Our own checkpoint options, from the guest's CRI layer (archive-checkpoint.ts), JSON as well. */
export const OVMIGRATE_ARCHIVE_OPTIONS = 'types.ovmigrate.io/shim/v1/ArchiveOptions';
const JSON_TYPE_URLS: ReadonlySet<string> = new Set([...Object.values(SPEC_TYPE_URLS), OVMIGRATE_ARCHIVE_OPTIONS]);

/** A google.protobuf.Any as encode takes it and decode gives it (keepCase names). */
export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

/** A google.protobuf.Timestamp; seconds (int64) is a bigint when decoded, as every 64-bit field. */
export interface Timestamp {
  seconds: bigint | number;
  nanos: number;
}

/** containerd's shim-facing API: every .proto under proto/containerd, in one Root (common/proto.ts). */
export function containerdApi(): protobuf.Root {
  return loadProtos('containerd');
}

/**
 * Types found by full name: the Root never changes once loaded, and a
 * protobufjs lookup walks it, at each message the shim encodes or decodes
 * (containerd's Stats every few seconds among them).
 */
const typesByName = new Map<string, protobuf.Type | undefined>();

/** The message type with exactly this full name (protobufjs would also take short names; containerd does not). */
function lookupMessage(fullName: string): protobuf.Type | undefined {
  if (typesByName.has(fullName)) return typesByName.get(fullName);
  const found = containerdApi().lookup(`.${fullName}`);
  const type = found instanceof protobuf.Type && found.fullName === `.${fullName}` ? found : undefined;
  // Names from a peer (an Any's type URL) that name nothing are not kept: they are not bounded.
  if (type) typesByName.set(fullName, type);
  return type;
}

/** A message type by its full name, e.g. "containerd.task.v2.CreateTaskRequest". */
export function type(name: string): protobuf.Type {
  const found = lookupMessage(name);
  if (!found) throw new NotFoundError(`${JSON.stringify(name)} is not the full name of a message type in containerd's shim API`);
  return found;
}

/** Refuse field names the type does not have, at any depth: fromObject would silently drop a misspelt (e.g. camelCase) one. */
function checkFields(t: protobuf.Type, obj: unknown, where: string): void {
  if (obj === null || typeof obj !== 'object' || Buffer.isBuffer(obj) || obj instanceof Uint8Array) return;
  for (const [key, value] of Object.entries(obj)) {
    const field = t.fields[key];
    if (!field) throw new InvalidArgumentError(`${where} has no field ${JSON.stringify(key)}`);
    if (value === undefined || value === null || !(field.resolvedType instanceof protobuf.Type)) continue;
    const inner = field.resolvedType;
    if (field.map) for (const [k, v] of Object.entries(value)) checkFields(inner, v, `${where}.${key}[${k}]`);
    else if (field.repeated && Array.isArray(value)) value.forEach((v, i) => checkFields(inner, v, `${where}.${key}[${i}]`));
    else checkFields(inner, value, `${where}.${key}`);
  }
}

/** A message's protobuf bytes from a plain object with the .proto's (snake_case) field names. */
export function encode(typeName: string, obj: object): Buffer {
  const t = type(typeName);
  checkFields(t, obj, typeName);
  let bytes: Uint8Array;
  try {
    bytes = t.encode(t.fromObject(obj as Record<string, unknown>)).finish();
  } catch (err) {
    throw new InvalidArgumentError(`${typeName} does not encode: ${errorMessage(err)}`, { cause: err });
  }
  return asBuffer(bytes);
}

/** A message from its protobuf bytes, as a plain object (see TO_OBJECT). */
export function decode(typeName: string, bytes: Uint8Array): Record<string, unknown> {
  const t = type(typeName);
  try {
    return t.toObject(t.decode(bytes), TO_OBJECT);
  } catch (err) {
    throw new BadDataError(`${typeName} does not decode: ${errorMessage(err)}`, { cause: err });
  }
}

/** An Any holding already-encoded bytes under typeUrl (for containerd's types, the bare full name). */
export function packAny(typeUrl: string, bytes: Uint8Array): AnyMessage {
  if (!typeUrl) throw new InvalidArgumentError('an Any needs a type URL');
  return { type_url: typeUrl, value: asBuffer(bytes) };
}

/** Encode a message of this API and pack it under its own name, as containerd's typeurl does. */
export function packMessage(typeName: string, obj: object): AnyMessage {
  return packAny(typeName, encode(typeName, obj));
}

/**
 * The contents of an Any: a message of this API (type URL = full name) decoded as decode does,
 * or a runtime-spec type (SPEC_TYPE_URLS) parsed from JSON.
 */
export function unpackAny(any: unknown): { typeUrl: string; message: Record<string, unknown> } {
  const a = (any ?? {}) as Partial<Record<keyof AnyMessage, unknown>>;
  if (typeof a.type_url !== 'string' || !a.type_url) throw new BadDataError('Any has no type URL');
  const typeUrl = a.type_url;
  const value = a.value instanceof Uint8Array ? a.value : new Uint8Array(0);
  if (JSON_TYPE_URLS.has(typeUrl)) {
    try {
      const parsed: unknown = JSON.parse(asBuffer(value).toString('utf8'));
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TypeError('not a JSON object');
      return { typeUrl, message: parsed as Record<string, unknown> };
    } catch (err) {
      throw new BadDataError(`Any of ${typeUrl} is not a JSON object: ${errorMessage(err)}`, { cause: err });
    }
  }
  if (!lookupMessage(typeUrl)) {
    throw new NotFoundError(`Any's type URL ${JSON.stringify(typeUrl)} names no message of containerd's shim API`);
  }
  return { typeUrl, message: decode(typeUrl, value) };
}

/** A Timestamp from a Date (millisecond precision). */
export function toTimestamp(date: Date): Timestamp {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new InvalidArgumentError('invalid Date for a Timestamp');
  const seconds = Math.floor(ms / 1000);
  return { seconds: BigInt(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** A Date from a decoded Timestamp (nanoseconds below a millisecond are dropped). */
export function fromTimestamp(ts: Timestamp): Date {
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1_000_000));
}
