import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { log } from '../../common/log.js';
import { MAX_CRI_MESSAGE, MessageReader, formatTimeout, frameMessage, headersOf, metadataOf, statusOfReset, statusOfTrailers } from './grpc-wire.js';

export { MAX_CRI_MESSAGE } from './grpc-wire.js';

const { NGHTTP2_CANCEL } = http2.constants;

export interface UpstreamOptions {
  /**
   * How long a call waits for containerd to be reachable (within the
   * client's deadline) before it fails UNAVAILABLE, as a direct call would:
   * a containerd restart looks like a slow call.
   */
  connectTimeoutMs?: number;
}

/** A call's end as containerd sent it (or UNAVAILABLE when containerd could not be reached): code, message, trailers. */
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

/** A server-streaming call's messages; leaving the loop early (or cancel()) cancels the call. A non-OK end throws UpstreamStatusError. */
export interface UpstreamStream extends AsyncIterable<Buffer> {
  cancel(): void;
}

export function deadlineMs(deadline: grpc.Deadline): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

const unavailable = (details: string) => new UpstreamStatusError({ code: grpc.status.UNAVAILABLE, details, metadata: new grpc.Metadata() }, undefined);

/**
 * The proxy's one HTTP/2 connection to containerd's CRI socket, shared by
 * every call. A connection that fails or that containerd closes (GOAWAY on
 * restart) is dropped; the next call opens another, retrying for up to the
 * connect timeout within its own deadline.
 */
export class Upstream {
  private session: http2.ClientHttp2Session | undefined;
  private connecting: Promise<http2.ClientHttp2Session> | undefined;
  private closed = false;
  private readonly connectTimeoutMs: number;

  constructor(readonly socket: string, opts: UpstreamOptions = {}) {
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  }

  /** A live session, connecting (with a short backoff) until `deadline`, the connect timeout or `signal` ends the wait. */
  async connect(deadline: grpc.Deadline, signal?: AbortSignal): Promise<http2.ClientHttp2Session> {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const until = Math.min(deadlineMs(deadline), Date.now() + this.connectTimeoutMs);
    let backoff = 100;
    for (;;) {
      if (this.closed) throw unavailable('ovmigrate-cri is stopping');
      try {
        return await (this.connecting ??= this.open().finally(() => (this.connecting = undefined)));
      } catch (err) {
        const wait = Math.min(backoff, until - Date.now());
        if (wait <= 0 || signal?.aborted) throw unavailable(`containerd's CRI socket ${this.socket} is unreachable: ${(err as Error).message}`);
        log.debug(`cri: containerd at ${this.socket} not reachable (${(err as Error).message}); again in ${wait} ms`);
        await new Promise((r) => setTimeout(r, wait));
        backoff = Math.min(backoff * 2, 1000);
      }
    }
  }

  private open(): Promise<http2.ClientHttp2Session> {
    return new Promise((resolve, reject) => {
      const session = http2.connect('http://localhost', { createConnection: () => net.connect(this.socket), settings: { enablePush: false } });
      const drop = () => {
        if (this.session === session) this.session = undefined;
      };
      session.once('connect', () => {
        session.off('error', reject);
        this.session = session;
        session.unref(); // an idle connection never keeps the process up
        resolve(session);
      });
      session.once('error', reject);
      session.on('error', (err) => {
        drop();
        log.debug(`cri: connection to containerd: ${err.message}`);
      });
      session.on('goaway', drop);
      session.on('close', drop);
    });
  }

  /** A new stream to containerd with the request headers as given (pseudo-headers included), at once on a live connection; else undefined. */
  requestNow(headers: http2.OutgoingHttpHeaders): http2.ClientHttp2Stream | undefined {
    const s = this.session;
    if (!s || s.closed || s.destroyed) return undefined;
    try {
      return s.request(headers, { endStream: false });
    } catch {
      // The session went away between the check and the request (GOAWAY just in).
      if (this.session === s) this.session = undefined;
      return undefined;
    }
  }

  /** A new stream to containerd, connecting first when needed. */
  async request(headers: http2.OutgoingHttpHeaders, deadline: grpc.Deadline, signal?: AbortSignal): Promise<http2.ClientHttp2Stream> {
    const now = this.requestNow(headers);
    if (now) return now;
    const session = await this.connect(deadline, signal);
    try {
      return session.request(headers, { endStream: false });
    } catch (err) {
      throw unavailable(`containerd's CRI connection closed: ${(err as Error).message}`);
    }
  }

  private openCall(path: string, opts: CallOptions): Promise<http2.ClientHttp2Stream> {
    const headers: http2.OutgoingHttpHeaders = {
      ...headersOf(opts.metadata),
      ':method': 'POST', ':scheme': 'http', ':path': path, ':authority': 'localhost', 'content-type': 'application/grpc', te: 'trailers',
    };
    const deadline = deadlineMs(opts.deadline);
    if (Number.isFinite(deadline)) headers['grpc-timeout'] = formatTimeout(deadline - Date.now());
    return this.request(headers, opts.deadline, opts.signal);
  }

  /** One unary call of our own (or an intercept's forward); rejects with UpstreamStatusError for any non-OK status. */
  async unary(path: string, request: Buffer, opts: CallOptions): Promise<UnaryReply> {
    const stream = await this.openCall(path, opts);
    stream.end(frameMessage(request));
    let response: Buffer | undefined;
    const iterate = readCall(stream, opts.signal, (m) => {
      if (response) throw new UpstreamStatusError({ code: grpc.status.INTERNAL, details: 'containerd answered a unary call with two messages', metadata: new grpc.Metadata() }, undefined);
      response = m;
    });
    const { headers, trailers } = await iterate;
    if (!response) throw new UpstreamStatusError({ code: grpc.status.INTERNAL, details: 'containerd answered OK with no message', metadata: trailers }, headers);
    return { response, headers, trailers };
  }

  /** A server-streaming call of our own. */
  async serverStream(path: string, request: Buffer, opts: CallOptions): Promise<UpstreamStream> {
    const stream = await this.openCall(path, opts);
    stream.end(frameMessage(request));
    const abort = new AbortController();
    const relay = () => abort.abort();
    opts.signal.addEventListener('abort', relay, { once: true });
    if (opts.signal.aborted) abort.abort();
    return {
      cancel: () => abort.abort(),
      async *[Symbol.asyncIterator]() {
        const queue: Buffer[] = [];
        let wake: (() => void) | undefined;
        let end: { error?: unknown } | undefined;
        readCall(stream, abort.signal, (m) => {
          queue.push(m);
          if (queue.length > 16) stream.pause();
          wake?.();
        }).then(() => (end = {}), (error: unknown) => (end = { error })).finally(() => wake?.());
        try {
          for (;;) {
            if (queue.length) {
              yield queue.shift()!;
              if (queue.length <= 16) stream.resume();
            } else if (end) {
              if (end.error) throw end.error;
              return;
            } else await new Promise<void>((r) => (wake = r));
          }
        } finally {
          opts.signal.removeEventListener('abort', relay);
          abort.abort();
        }
      },
    };
  }

  close(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
  }
}

/**
 * Reads a call to its end: each message to `onMessage`, then resolves with
 * the headers and trailers of an OK status, or rejects with
 * UpstreamStatusError. An abort cancels the stream (RST_STREAM CANCEL).
 */
function readCall(stream: http2.ClientHttp2Stream, signal: AbortSignal, onMessage: (m: Buffer) => void): Promise<{ headers: grpc.Metadata; trailers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    const reader = new MessageReader(MAX_CRI_MESSAGE);
    let headers: grpc.Metadata | undefined;
    let status: grpc.StatusObject | undefined;
    const cancel = () => stream.close(NGHTTP2_CANCEL);
    if (signal.aborted) cancel();
    else signal.addEventListener('abort', cancel, { once: true });
    const fail = (code: grpc.status, details: string) => {
      status ??= { code, details, metadata: new grpc.Metadata() };
      stream.close(NGHTTP2_CANCEL);
    };
    stream.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = statusOfTrailers(h); // trailers-only
      else if (h[':status'] !== 200) fail(grpc.status.UNKNOWN, `containerd answered HTTP ${h[':status']}`);
      else headers = metadataOf(h);
    });
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const m of reader.push(chunk)) onMessage(m);
      } catch (err) {
        if (err instanceof UpstreamStatusError) fail(err.status.code, err.status.details);
        else fail((err as { status?: grpc.status }).status ?? grpc.status.INTERNAL, (err as Error).message);
      }
    });
    stream.on('trailers', (t) => (status ??= statusOfTrailers(t)));
    stream.on('error', () => undefined); // the end is read in 'close'
    stream.on('close', () => {
      signal.removeEventListener('abort', cancel);
      if (!status) {
        const code = signal.aborted ? grpc.status.CANCELLED : stream.rstCode ? statusOfReset(stream.rstCode) : grpc.status.UNAVAILABLE;
        status = { code, details: signal.aborted ? 'cancelled' : `containerd's stream ended without a status (RST_STREAM ${stream.rstCode ?? 'none'})`, metadata: new grpc.Metadata() };
      }
      if (status.code === grpc.status.OK) resolve({ headers: headers ?? new grpc.Metadata(), trailers: status.metadata });
      else reject(new UpstreamStatusError(status, headers));
    });
    stream.resume();
  });
}
