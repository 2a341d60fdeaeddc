import * as grpc from '@grpc/grpc-js';
import { errorMessage, InvalidArgumentError } from '../../common/errors.js';
import { log, logSafe } from '../../common/log.js';
import { statusMessageOf, statusOf } from '../../common/ttrpc/status.js';
import { CRI_METHODS, CRI_METHODS_BY_PATH, methodPath } from './methods.js';
import { type CallOptions, MAX_CRI_MESSAGE, raw, type UnaryReply, Upstream, UpstreamStatusError } from './upstream.js';


/** A unary call as an intercept sees it: the client's metadata, deadline and cancellation, and the way on to containerd. */
export interface InterceptContext extends CallOptions {
  path: string;
  /** Forwards a request (the client's, or one rewritten with wire-fields.ts) to containerd. */
  forward(request: Buffer): Promise<UnaryReply>;
}

/**
 * Handles one unary method instead of forwarding it. It gets the request's
 * bytes and decodes only what it needs; it may forward a rewritten request,
 * answer by itself, or throw (an OvmError maps to its status, an
 * UpstreamStatusError passes containerd's status through).
 */
export type UnaryIntercept = (request: Buffer, ctx: InterceptContext) => Promise<UnaryReply>;

/** Method path -> intercept. Every method not in the map is forwarded unchanged. */
export type Intercepts = ReadonlyMap<string, UnaryIntercept>;

const forwardAll: UnaryIntercept = (request, ctx) => ctx.forward(request);

/** The status a client gets for an intercept's or the proxy's own error. */
function serverError(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof UpstreamStatusError) return err.status;
  // google.rpc.Code: the ttrpc mapping and grpc-js use the same numbers.
  return { code: statusOf(err) as number as grpc.status, details: statusMessageOf(err) };
}

/**
 * A CRI runtime.v1 server that forwards every RuntimeService and
 * ImageService method to containerd's CRI socket as bytes, except the
 * intercepted ones. Metadata, deadlines and cancellation go to containerd;
 * containerd's headers, status, message and trailers come back unchanged.
 */
export class CriProxy {
  private readonly server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_CRI_MESSAGE,
    'grpc.max_send_message_length': MAX_CRI_MESSAGE,
    // channelz's per-call tracking (on by default in grpc-js) serves no one here: no channelz service is registered.
    'grpc.enable_channelz': 0,
  });

  constructor(private readonly upstream: Upstream, private readonly intercepts: Intercepts = new Map()) {
    for (const path of intercepts.keys()) {
      const method = CRI_METHODS_BY_PATH.get(path);
      if (!method) throw new InvalidArgumentError(`intercept for ${path}: not a method of the CRI table`);
      if (method.streaming !== 'unary') throw new InvalidArgumentError(`intercept for ${path}: only unary methods are intercepted`);
    }
    for (const method of CRI_METHODS) {
      const path = methodPath(method);
      if (method.streaming === 'unary') this.server.register(path, this.unaryHandler(path), raw, raw, 'unary');
      else this.server.register(path, this.streamHandler(path), raw, raw, 'serverStream');
    }
  }

  /** Serves on a unix socket (the file must not exist). */
  listen(socket: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Stops taking calls; calls in flight get `graceMs` to end, then are cancelled. */
  async close(graceMs = 5000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private unaryHandler(path: string): grpc.handleUnaryCall<Buffer, Buffer> {
    const handle = this.intercepts.get(path) ?? forwardAll;
    return (call, callback) => {
      const abort = new AbortController();
      // grpc-js (1.10+) emits 'cancelled' after every call's status too: only a call not yet answered is aborted
      // (an abort builds a DOMException with its stack, for each of the kubelet's polls).
      let answered = false;
      call.on('cancelled', () => {
        if (!answered) abort.abort();
      });
      const ctx: InterceptContext = {
        path,
        metadata: call.metadata,
        deadline: call.getDeadline(),
        signal: abort.signal,
        forward: (request) => this.upstream.unary(path, request, ctx),
      };
      handle(call.request, ctx).then(
        (reply) => {
          answered = true;
          call.sendMetadata(reply.headers);
          callback(null, reply.response, reply.trailers);
        },
        (err: unknown) => {
          answered = true;
          if (err instanceof UpstreamStatusError && err.headers) call.sendMetadata(err.headers);
          const status = serverError(err);
          if (!(err instanceof UpstreamStatusError)) log.warn(`cri: ${path} failed in the proxy: ${logSafe(errorMessage(err))}`);
          else log.debug(`cri: ${path}: containerd answered ${status.code}: ${logSafe(status.details ?? '')}`);
          callback(status);
        },
      );
    };
  }

  private streamHandler(path: string): grpc.handleServerStreamingCall<Buffer, Buffer> {
    return (call) => {
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort());
      this.upstream.serverStream(path, call.request, { metadata: call.metadata, deadline: call.getDeadline(), signal: abort.signal }).then(
        (upstream) => pipeStream(upstream, call, abort.signal),
        (err: unknown) => call.emit('error', serverError(err)),
      );
    };
  }
}

/**
 * containerd's stream to the client, message by message, with backpressure
 * (the client's pace holds containerd's stream); the status goes last, after
 * every message read, and a client that goes away cancels containerd's call.
 */
function pipeStream(upstream: grpc.ClientReadableStream<Buffer>, call: grpc.ServerWritableStream<Buffer, Buffer>, signal: AbortSignal): void {
  if (signal.aborted) {
    upstream.cancel();
    return;
  }
  signal.addEventListener('abort', () => upstream.cancel(), { once: true });
  let status: grpc.StatusObject | undefined;
  let ended = false;
  const finish = () => {
    if (!status || !ended || signal.aborted) return;
    if (status.code === grpc.status.OK) call.end(status.metadata);
    else call.emit('error', { code: status.code, details: status.details, metadata: status.metadata });
  };
  upstream.on('metadata', (md) => call.sendMetadata(md));
  upstream.on('data', (message: Buffer) => {
    if (!call.write(message)) {
      upstream.pause();
      call.once('drain', () => upstream.resume());
    }
  });
  upstream.on('end', () => {
    ended = true;
    finish();
  });
  upstream.on('status', (s) => {
    status = s;
    finish();
  });
  // A non-OK end also comes as 'error'; its 'status' carries everything the client gets.
  upstream.on('error', () => undefined);
}
