import { loadProtos } from './proto.js';
import { TypedMethod } from './ttrpc/typed-method.js';

/**
 * The service a guest's shim calls on the host (proto/ovmigrate/backend.proto),
 * shared by the host backend (introspect/backend) and the guest client (shim/channel).
 * Objects carry the .proto's own field names (keepCase); uint64 fields are bigint.
 */
const PACKAGE = 'ovmigrate.backend.v1';
export const BACKEND_SERVICE = `${PACKAGE}.Backend`;
/** Name of the virtio-serial port that carries the service between guest and host. */
export const BACKEND_PORT = 'ovmigrate.0';
/** CheckpointRequest.config: the bundle's config.json, at most this many bytes (backend.proto). */
export const MAX_CONFIG_BYTES = 1 << 20;
/**
 * CheckpointRequest.archive: the data of its entries and the config together, at most this many bytes
 * (backend.proto), so that a request with an archive stays within MAX_REQUEST_BYTES.
 */
export const MAX_ARCHIVE_METADATA_BYTES = MAX_CONFIG_BYTES;
/**
 * Names the guest may give archive entries (backend.proto ArchiveRequest): the top-level
 * files of containerd 2.x's checkpoint archive that only the guest knows. Never paths.
 */
export const ARCHIVE_ENTRY_NAMES: readonly string[] = ['config.dump', 'container.log', 'rootfs-diff.tar', 'status.dump'];
/** The largest request: a config of MAX_CONFIG_BYTES (with archive entries, both together), the id, a cgroup path and protobuf's few bytes around them. */
export const MAX_REQUEST_BYTES = MAX_CONFIG_BYTES + 8192;
/**
 * The largest ttrpc frame on the channel: a request at its limit plus the envelope (service, method, metadata),
 * so one just over MAX_REQUEST_BYTES still gets its INVALID_ARGUMENT answer and only larger frames drop the link.
 */
export const MAX_CHANNEL_FRAME = MAX_REQUEST_BYTES + 4096;
/** Image directory names the backend makes: 32 hex digits, so a name can never be a path. */
export const IMAGE_NAME = /^[0-9a-f]{32}$/;

export type HelloRequest = Record<string, never>;

export interface HelloResponse {
  version: string;
  max_request_bytes: number;
  max_concurrent_checkpoints: number;
}

export interface CheckpointRequest {
  /** The container's id: 1-64 of [A-Za-z0-9_.-]. */
  id: string;
  /** Its cgroup v2 path in the guest's initial cgroup namespace, e.g. /default/web. */
  cgroup: string;
  /** The bundle's config.json; empty dumps a plain process tree (no namespaces of its own). */
  config?: Uint8Array;
  /** Asks for one archive file instead of an image directory. */
  archive?: ArchiveRequest | null;
  /** Established TCP connections are dumped for repair (criu --tcp-established); the shim kills the container afterwards. */
  tcp_established?: boolean;
}

export interface ArchiveEntry {
  /** One of ARCHIVE_ENTRY_NAMES. */
  name: string;
  data: Uint8Array;
}

export interface ArchiveRequest {
  entries: ArchiveEntry[];
  /** spec.dump is the request's config, byte for byte. */
  spec_from_config?: boolean;
}

export interface CheckpointResponse {
  /** The image directory (the archive file, when one was asked for), one path component under the share. */
  name: string;
  /** Pids in the guest's initial pid namespace, root first. */
  pids: number[];
  pages_written: bigint;
  bytes_written: bigint;
  total_ms: number;
  pause_ms: number;
  /** The archive file's size; 0 for an image directory. */
  archive_bytes: bigint;
}

export interface ReleaseRequest {
  name: string;
}

export type ReleaseResponse = Record<string, never>;

export interface BackendMethods {
  hello: TypedMethod<HelloRequest, HelloResponse>;
  checkpoint: TypedMethod<CheckpointRequest, CheckpointResponse>;
  release: TypedMethod<ReleaseRequest, ReleaseResponse>;
}

let methods: BackendMethods | undefined;

/** The service's methods, typed; the .proto is loaded on first use. */
export function backendMethods(): BackendMethods {
  if (!methods) {
    const root = loadProtos('ovmigrate');
    const method = <Req extends object, Res extends object>(name: string, req: string, res: string): TypedMethod<Req, Res> =>
      new TypedMethod<Req, Res>(BACKEND_SERVICE, name, root.lookupType(`${PACKAGE}.${req}`), root.lookupType(`${PACKAGE}.${res}`));
    methods = {
      hello: method('Hello', 'HelloRequest', 'HelloResponse'),
      checkpoint: method('Checkpoint', 'CheckpointRequest', 'CheckpointResponse'),
      release: method('Release', 'ReleaseRequest', 'ReleaseResponse'),
    };
  }
  return methods;
}
