import fs from 'node:fs';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { errorMessage, InvalidArgumentError } from '../../common/errors.js';
import { log, logSafe } from '../../common/log.js';
import { statusMessageOf, statusOf } from '../../common/ttrpc/status.js';
import { GrpcWireError, MAX_CRI_MESSAGE, MessageReader, frameMessage, headersOf, metadataOf, parseTimeout, statusOfReset, trailersOf } from './grpc-wire.js';
import { CRI_METHODS_BY_PATH } from './methods.js';
import { type CallOptions, type UnaryReply, Upstream, UpstreamStatusError } from './upstream.js';

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

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

/** The status a client gets for an intercept's or the proxy's own error. */
function serverError(err: unknown): grpc.StatusObject {
  if (err instanceof UpstreamStatusError) return err.status;
  if (err instanceof GrpcWireError) return { code: err.status, details: err.message, metadata: new grpc.Metadata() };
  // google.rpc.Code: the ttrpc mapping and grpc-js use the same numbers.
  return { code: statusOf(err) as number as grpc.status, details: statusMessageOf(err), metadata: new grpc.Metadata() };
}

const onClientStreamError = (err: Error) => log.debug(`cri: client stream: ${err.message}`);
const ignore = () => undefined;

const GRPC_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };

/** Ends a call that has sent nothing yet with a status alone (a trailers-only response). */
function trailersOnly(stream: http2.ServerHttp2Stream, status: grpc.StatusObject, headers?: grpc.Metadata): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ...GRPC_HEADERS, ...(headers ? headersOf(headers) : {}), ...trailersOf(status.code, status.details, status.metadata) }, { endStream: true });
}

/**
 * A CRI runtime.v1 server that forwards every RuntimeService and
 * ImageService method to containerd's CRI socket at the HTTP/2 level, stream
 * to stream (headers, metadata, grpc-timeout, messages, trailers as they
 * are), except the intercepted unary ones, which it frames itself
 * (grpc-wire.ts). A client's reset cancels containerd's stream and the other
 * way round; each side's flow control holds the other.
 */
export class CriProxy {
  private readonly server = http2.createServer({ settings: { maxHeaderListSize: 64 * 1024 } });
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(private readonly upstream: Upstream, private readonly intercepts: Intercepts = new Map()) {
    for (const path of intercepts.keys()) {
      const method = CRI_METHODS_BY_PATH.get(path);
      if (!method) throw new InvalidArgumentError(`intercept for ${path}: not a method of the CRI table`);
      if (method.streaming !== 'unary') throw new InvalidArgumentError(`intercept for ${path}: only unary methods are intercepted`);
    }
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', (err) => log.debug(`cri: client connection: ${err.message}`));
    });
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  /** Serves on a unix socket (the file must not exist). */
  listen(socket: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(socket, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops taking calls; calls in flight get `graceMs` to end, then are cancelled. */
  async close(graceMs = 5000): Promise<void> {
    const address = this.server.address();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const s of this.sessions) s.destroy();
      }, graceMs);
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      for (const s of this.sessions) s.close();
    });
    if (typeof address === 'string') fs.rmSync(address, { force: true });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', onClientStreamError);
    const path = headers[':path'] ?? '';
    if (!CRI_METHODS_BY_PATH.has(path)) {
      trailersOnly(stream, { code: grpc.status.UNIMPLEMENTED, details: `${path}: not a method of CRI runtime.v1`, metadata: new grpc.Metadata() });
      return;
    }
    const timeout = parseTimeout(headers['grpc-timeout']);
    const deadline = timeout === undefined ? Infinity : Date.now() + timeout;
    const intercept = this.intercepts.get(path);
    if (intercept) this.intercept(stream, headers, path, deadline, intercept);
    else this.forward(stream, headers, deadline);
  }

  /** The call, stream to stream, untouched. */
  private forward(down: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, deadline: number): void {
    const out: http2.OutgoingHttpHeaders = {};
    for (const key of Object.keys(headers)) out[key] = headers[key];
    const up = this.upstream.requestNow(out);
    if (up) {
      relay(down, up);
      return;
    }
    // Only while containerd is being reached does a client's leaving need a signal (an AbortController costs a DOMException a call).
    const abort = new AbortController();
    const leave = () => abort.abort();
    down.once('close', leave);
    this.upstream.request(out, deadline, abort.signal).then((stream) => {
      down.off('close', leave);
      relay(down, stream);
    }, (err: unknown) => trailersOnly(down, serverError(err)));
  }

  /** An intercepted unary call: its one message in, the intercept's answer (or status) out, framed here. */
  private intercept(down: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, path: string, deadline: number, handle: UnaryIntercept): void {
    const abort = new AbortController();
    let answered = false;
    const timer = Number.isFinite(deadline) ? setTimeout(() => {
      abort.abort();
      finish(Promise.reject(new GrpcWireError(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded')));
    }, Math.max(0, deadline - Date.now())) : undefined;
    down.once('close', () => {
      clearTimeout(timer);
      if (!answered) abort.abort();
    });
    const finish = (result: Promise<UnaryReply>) => result.then((reply) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      if (down.destroyed || down.closed) return;
      down.respond({ ...GRPC_HEADERS, ...headersOf(reply.headers) }, { waitForTrailers: true });
      down.once('wantTrailers', () => down.sendTrailers(trailersOf(grpc.status.OK, '', reply.trailers)));
      down.end(frameMessage(reply.response));
    }, (err: unknown) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      const status = serverError(err);
      if (!(err instanceof UpstreamStatusError)) log.warn(`cri: ${path} failed in the proxy: ${logSafe(errorMessage(err))}`);
      else log.debug(`cri: ${path}: containerd answered ${status.code}: ${logSafe(status.details)}`);
      trailersOnly(down, status, err instanceof UpstreamStatusError ? err.headers : undefined);
    });

    const reader = new MessageReader(MAX_CRI_MESSAGE);
    const messages: Buffer[] = [];
    down.on('data', (chunk: Buffer) => {
      if (answered) return;
      try {
        messages.push(...reader.push(chunk));
      } catch (err) {
        abort.abort();
        finish(Promise.reject(err));
      }
    });
    down.once('end', () => {
      if (answered) return;
      if (messages.length !== 1 || !reader.idle) {
        finish(Promise.reject(new GrpcWireError(grpc.status.INTERNAL, `a unary call with ${messages.length} whole messages${reader.idle ? '' : ' and a cut one'}`)));
        return;
      }
      const ctx: InterceptContext = {
        path,
        metadata: metadataOf(headers),
        deadline,
        signal: abort.signal,
        forward: (request) => this.upstream.unary(path, request, ctx),
      };
      finish(handle(messages[0], ctx));
    });
  }
}

/**
 * One forwarded call, the client's stream to containerd's and back, as
 * they are: request headers and data, response headers, data and trailers
 * (or a trailers-only response). pump() holds either side to the other's
 * pace. A client that leaves resets containerd's stream; containerd's reset
 * (or its connection lost) ends the client's call with a status.
 */
function relay(down: http2.ServerHttp2Stream, up: http2.ClientHttp2Stream): void {
  const session = up.session;
  if (down.destroyed || down.closed) {
    up.close(NGHTTP2_CANCEL);
    return;
  }
  let trailers: http2.OutgoingHttpHeaders | undefined;
  pump(down, up);
  down.once('close', () => {
    if (!up.closed) up.close(NGHTTP2_CANCEL);
  });
  up.on('error', ignore); // the end is read in 'close'
  up.once('response', (h) => {
    if (down.destroyed) return;
    const response: http2.OutgoingHttpHeaders = {};
    for (const key of Object.keys(h)) response[key] = h[key];
    if (h['grpc-status'] !== undefined) {
      down.respond(response, { endStream: true }); // trailers-only
      return;
    }
    down.respond(response, { waitForTrailers: true });
    down.once('wantTrailers', () => down.sendTrailers(trailers ?? trailersOf(grpc.status.INTERNAL, 'containerd ended the call without a status')));
    pump(up, down);
  });
  up.once('trailers', (t) => {
    trailers = {};
    for (const key of Object.keys(t)) trailers[key] = t[key];
  });
  up.once('close', () => {
    if (down.destroyed || down.closed || trailers || up.rstCode === NGHTTP2_NO_ERROR) return;
    const lost = !session || session.closed || session.destroyed;
    const code = lost ? grpc.status.UNAVAILABLE : statusOfReset(up.rstCode ?? 0);
    const details = lost ? "the connection to containerd's CRI socket closed during the call" : `containerd reset the call (RST_STREAM ${up.rstCode})`;
    if (!down.headersSent) trailersOnly(down, { code, details, metadata: new grpc.Metadata() });
    else {
      trailers = trailersOf(code, details);
      down.end();
    }
  });
}

/** from's data into to, end included, `from` paused while `to` is full (pipe() without its per-stream listeners and bookkeeping). */
function pump(from: http2.Http2Stream, to: http2.Http2Stream): void {
  const resume = () => from.resume();
  from.on('data', (chunk: Buffer) => {
    if (!to.destroyed && !to.write(chunk)) {
      from.pause();
      to.once('drain', resume);
    }
  });
  from.once('end', () => {
    if (!to.destroyed) to.end();
  });
}
