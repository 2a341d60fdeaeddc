import * as grpc from '@grpc/grpc-js';
import { log } from '../../common/log.js';

/** Messages cross the proxy as the bytes they came in: no decode, no re-encode. */
export const raw = (b: Buffer): Buffer => b;
/** The CRI's messages (ListContainers on a big node, image lists) can pass 4 MiB; the kubelet allows 16 MiB. */
export const MAX_CRI_MESSAGE = 16 * 1024 * 1024;

/** Keys that belong to one hop of HTTP/2 or to grpc-js itself, never forwarded. */
const HOP_KEYS = new Set(['user-agent', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type']);

export interface UpstreamOptions {
  /**
   * How long a call waits for containerd to be reachable (within the
   * client's deadline) before it is forwarded anyway and fails as a direct
   * call would (UNAVAILABLE): a containerd restart looks like a slow call.
   */
  connectTimeoutMs?: number;
}

/** A call's end as containerd sent it: code, message, trailers. */
export class UpstreamStatusError extends Error {
  readonly code = 'UPSTREAM_STATUS';
  constructor(readonly status: grpc.StatusObject, readonly headers: grpc.Metadata | undefined) {
    super(`${grpc.status[status.code] ?? status.code}: ${status.details}`);
  }
}

export interface UnaryReply {
  response: Buffer;
  /** containerd's initial metadata (headers). */
  headers: grpc.Metadata;
  trailers: grpc.Metadata;
}

/** What a call carries from the client to containerd besides its message. */
export interface CallOptions {
  metadata: grpc.Metadata;
  deadline: grpc.Deadline;
  signal: AbortSignal;
}

/** A copy of a client's metadata fit to forward. */
export function forwardable(metadata: grpc.Metadata): grpc.Metadata {
  const out = metadata.clone();
  for (const key of Object.keys(out.getMap())) if (HOP_KEYS.has(key) || key.startsWith(':')) out.remove(key);
  return out;
}

/**
 * The proxy's one channel to containerd's CRI socket. grpc-js reconnects a
 * channel by itself; the backoff is kept short so the first call after a
 * containerd restart finds it up again.
 */
export class Upstream {
  readonly client: grpc.Client;
  private readonly connectTimeoutMs: number;

  constructor(readonly socket: string, opts: UpstreamOptions = {}) {
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.min_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.max_receive_message_length': MAX_CRI_MESSAGE,
      'grpc.max_send_message_length': MAX_CRI_MESSAGE,
      'grpc.enable_channelz': 0,
    });
  }

  /** Resolves once the channel is READY, or when the wait ends (deadline, connect timeout, abort): the call goes ahead either way. */
  async ready(deadline: grpc.Deadline, signal: AbortSignal): Promise<void> {
    if (this.client.getChannel().getConnectivityState(true) === grpc.connectivityState.READY) return;
    const until = Math.min(deadlineMs(deadline), Date.now() + this.connectTimeoutMs);
    await new Promise<void>((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done);
      this.client.waitForReady(until, (err) => {
        if (err) log.debug(`cri: containerd at ${this.socket} not ready: ${err.message}`);
        done();
      });
    });
  }

  /** One unary call, forwarded as bytes; rejects with UpstreamStatusError for any non-OK status. */
  async unary(path: string, request: Buffer, opts: CallOptions): Promise<UnaryReply> {
    await this.ready(opts.deadline, opts.signal);
    return new Promise((resolve, reject) => {
      let headers: grpc.Metadata | undefined;
      let response: Buffer | undefined;
      const call = this.client.makeUnaryRequest(path, raw, raw, request, forwardable(opts.metadata), { deadline: opts.deadline },
        (_err, value) => {
          response = value;
        });
      call.on('metadata', (md) => (headers = md));
      call.on('status', (status) => {
        opts.signal.removeEventListener('abort', cancel);
        if (status.code !== grpc.status.OK) reject(new UpstreamStatusError(status, headers));
        else if (!response) reject(new UpstreamStatusError({ code: grpc.status.INTERNAL, details: 'containerd answered OK with no message', metadata: status.metadata }, headers));
        else resolve({ response, headers: headers ?? new grpc.Metadata(), trailers: status.metadata });
      });
      const cancel = () => call.cancel();
      if (opts.signal.aborted) call.cancel();
      else opts.signal.addEventListener('abort', cancel);
    });
  }

  /** A server-streaming call, forwarded as bytes; the caller reads it and cancels it. */
  async serverStream(path: string, request: Buffer, opts: CallOptions): Promise<grpc.ClientReadableStream<Buffer>> {
    await this.ready(opts.deadline, opts.signal);
    return this.client.makeServerStreamRequest(path, raw, raw, request, forwardable(opts.metadata), { deadline: opts.deadline });
  }

  close(): void {
    this.client.close();
  }
}

export function deadlineMs(deadline: grpc.Deadline): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}
