import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { TO_OBJECT, loadProtos } from '../../common/proto.js';
import { CRI_METHODS_BY_PATH, methodPath } from '../../shim/cri/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Msg = Record<string, any>;

/** Request and response types by method, where they are not <Name>Request/<Name>Response. */
const TYPE_NAMES: Record<string, [string, string]> = {
  GetContainerEvents: ['GetEventsRequest', 'ContainerEventResponse'],
};

function types(name: string): [protobuf.Type, protobuf.Type] {
  const root = loadProtos('cri');
  const [req, res] = TYPE_NAMES[name] ?? [`${name}Request`, `${name}Response`];
  return [root.lookupType(`runtime.v1.${req}`), root.lookupType(`runtime.v1.${res}`)];
}

function pathOf(name: string): string {
  for (const service of ['RuntimeService', 'ImageService'] as const) {
    const p = methodPath({ service, name, streaming: 'unary' });
    if (CRI_METHODS_BY_PATH.has(p)) return p;
  }
  throw new Error(`${name}: not a CRI method`);
}

/** One finished unary call as the client saw it: bytes, decoded answer, headers and status (with trailers). */
export interface RawResult {
  raw?: Buffer;
  response?: Msg;
  headers?: grpc.Metadata;
  status: grpc.StatusObject;
}

export interface CriCallOptions {
  deadline?: grpc.Deadline;
  metadata?: grpc.Metadata;
  /** Called with the call once it is made (to cancel it). */
  started?: (call: grpc.ClientUnaryCall) => void;
}

const raw = (b: Buffer): Buffer => b;

/**
 * A CRI runtime.v1 client for tests, from proto/cri: requests built from
 * plain objects, answers kept as bytes too, so an answer through the proxy
 * can be compared byte for byte with containerd's own.
 */
export class CriClient {
  readonly client: grpc.Client;

  constructor(socket: string) {
    this.client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure(), { 'grpc.max_reconnect_backoff_ms': 1000 });
  }

  encode(name: string, request: Msg): Buffer {
    const [req] = types(name);
    return Buffer.from(req.encode(req.fromObject(request)).finish());
  }

  decode(name: string, bytes: Buffer): Msg {
    const [, res] = types(name);
    return res.toObject(res.decode(bytes), TO_OBJECT);
  }

  /** A unary call that resolves with whatever status it ends with. */
  result(name: string, request: Msg | Buffer, opts: CriCallOptions = {}): Promise<RawResult> {
    const bytes = Buffer.isBuffer(request) ? request : this.encode(name, request);
    return new Promise((resolve) => {
      const out: Partial<RawResult> = {};
      const call = this.client.makeUnaryRequest(pathOf(name), raw, raw, bytes, opts.metadata ?? new grpc.Metadata(),
        { deadline: opts.deadline ?? Date.now() + 30_000 }, (_err, value) => {
          out.raw = value;
        });
      call.on('metadata', (md) => (out.headers = md));
      call.on('status', (status) => {
        if (out.raw && status.code === grpc.status.OK) out.response = this.decode(name, out.raw);
        resolve({ ...out, status });
      });
      opts.started?.(call);
    });
  }

  /** A unary call's decoded answer; a non-OK status rejects with its code and message. */
  async call(name: string, request: Msg = {}, opts: CriCallOptions = {}): Promise<Msg> {
    const r = await this.result(name, request, opts);
    if (r.status.code !== grpc.status.OK) throw Object.assign(new Error(`${name}: ${grpc.status[r.status.code]}: ${r.status.details}`), { grpcCode: r.status.code });
    return r.response!;
  }

  /** A server-streaming call; messages come decoded. */
  stream(name: string, request: Msg = {}, opts: { deadline?: grpc.Deadline } = {}): grpc.ClientReadableStream<Msg> {
    const [req, res] = types(name);
    const p = methodPath({ service: 'RuntimeService', name, streaming: 'server' });
    return this.client.makeServerStreamRequest(p, (m: Msg) => Buffer.from(req.encode(req.fromObject(m)).finish()),
      (b: Buffer) => res.toObject(res.decode(b), TO_OBJECT), request, new grpc.Metadata(), { deadline: opts.deadline ?? Infinity });
  }

  close(): void {
    this.client.close();
  }
}
