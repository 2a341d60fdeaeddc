import type { Duplex } from 'node:stream';
import { TimeoutError, errorMessage } from '../errors.js';
import { log, logSafe } from '../log.js';
import { FrameDecoder, MessageType, encodeFrame, type Frame } from './frame.js';
import { decodeRequest, encodeResponse, metadataSize, type Metadata, type RequestMessage } from './messages.js';
import { StatusCode, TtrpcError, statusMessageOf, statusName, statusOf } from './status.js';

/** What a handler learns about its call besides the payload. */
export interface CallContext {
  service: string;
  method: string;
  /** The request's metadata, keys lower-cased. */
  metadata: Metadata;
  /** Aborts at the request's deadline (reason: TimeoutError), or when the connection closes or the server closes. */
  signal: AbortSignal;
}

/** A unary method: the request's protobuf bytes in, the response's protobuf bytes out. */
export type Handler = (payload: Buffer, ctx: CallContext) => Promise<Uint8Array>;

/** What one connection allows its peer; TtrpcServerOptions explains each. */
export interface ConnectionLimits {
  maxConcurrentRequests: number;
  maxMessageSize: number;
  maxMetadataEntries: number;
  maxMetadataBytes: number;
  partialFrameTimeoutMs: number;
}

export interface ConnectionOptions extends ConnectionLimits {
  /** Finds the handler for a request, or says why there is none. */
  lookup: (service: string, method: string) => Handler | TtrpcError;
  /** For log lines. */
  name: string;
}

/** setTimeout's limit; longer deadlines (over 24 days) are treated as none. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Serves unary calls on one connection: a request frame in, a response frame out on the same stream id. */
export class ServerConnection {
  private readonly decoder: FrameDecoder;
  /** Armed while part of a frame is buffered. */
  private partialTimer?: NodeJS.Timeout;
  /** Calls whose handler has not settled yet, by stream id. */
  private readonly active = new Map<number, AbortController>();
  private lastStreamId = 0;
  private draining = false;
  private ended = false;
  private resolveDone!: () => void;
  /** Resolves once the connection is closed and every handler has settled. */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  constructor(
    private readonly stream: Duplex,
    private readonly opts: ConnectionOptions,
  ) {
    this.decoder = new FrameDecoder(opts.maxMessageSize);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.close());
    stream.on('error', (err: NodeJS.ErrnoException) => {
      const level = err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'debug' : 'warn';
      log.log(level, `ttrpc ${opts.name}: ${err.message}`);
      this.close();
    });
    stream.on('close', () => this.close());
  }

  /** Stops taking requests; the connection closes once those in flight are answered. */
  drain(): void {
    this.draining = true;
    if (this.active.size === 0) this.close();
  }

  /** Closes now; handlers still running see their signal abort and their answers are dropped. */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.partialTimer);
    const reason = new TtrpcError(StatusCode.CANCELLED, 'ttrpc connection closed');
    for (const controller of this.active.values()) controller.abort(reason);
    this.stream.destroy();
    this.settleIfIdle();
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    // A bad frame closes this connection only; nothing a peer sends may throw out of a stream event.
    try {
      for (const frame of this.decoder.push(chunk)) this.onFrame(frame);
    } catch (err) {
      log.warn(`ttrpc ${this.opts.name}: closing connection: ${errorMessage(err)}`);
      return this.close();
    }
    this.watchPartialFrame();
  }

  /** A peer that stops in the middle of a frame would hold its buffer and this connection for ever. */
  private watchPartialFrame(): void {
    clearTimeout(this.partialTimer);
    this.partialTimer = undefined;
    const ms = this.opts.partialFrameTimeoutMs;
    if (this.ended || ms === 0 || this.decoder.buffered === 0) return;
    this.partialTimer = setTimeout(() => {
      log.warn(`ttrpc ${this.opts.name}: closing connection: ${this.decoder.buffered} bytes of a frame, then nothing for ${ms} ms`);
      this.close();
    }, ms);
    this.partialTimer.unref();
  }

  private onFrame(frame: Frame): void {
    const id = frame.streamId;
    // Upstream's checks and answers, each on the offending stream id.
    if (id % 2 !== 1) {
      return this.respondStatus(id, StatusCode.INVALID_ARGUMENT, 'StreamID must be odd for client initiated streams');
    }
    if (frame.type === MessageType.Data) {
      if (this.active.has(id)) log.warn(`ttrpc ${this.opts.name}: ignoring stream data for unary call on stream ${id}`);
      else this.respondStatus(id, StatusCode.INVALID_ARGUMENT, 'StreamID is no longer active');
      return;
    }
    if (frame.type !== MessageType.Request) {
      log.warn(`ttrpc ${this.opts.name}: closing connection: client sent a ${MessageType[frame.type]} frame on stream ${id}`);
      return this.close();
    }
    if (id <= this.lastStreamId) {
      return this.respondStatus(id, StatusCode.INVALID_ARGUMENT, 'StreamID cannot be re-used and must increment');
    }
    this.lastStreamId = id;

    let req: RequestMessage;
    try {
      // Counted before decoding, so a flood of tiny entries costs no objects.
      const md = metadataSize(frame.payload);
      if (md.entries > this.opts.maxMetadataEntries || md.bytes > this.opts.maxMetadataBytes) {
        const { maxMetadataEntries: entries, maxMetadataBytes: bytes } = this.opts;
        return this.respondStatus(id, StatusCode.RESOURCE_EXHAUSTED, `request metadata of ${md.entries} entries and ${md.bytes} bytes, more than ${entries} or ${bytes}`);
      }
      req = decodeRequest(frame.payload);
    } catch (err) {
      return this.respondStatus(id, StatusCode.INVALID_ARGUMENT, `unmarshal request error: ${errorMessage(err)}`);
    }
    if (this.draining) return this.respondStatus(id, StatusCode.UNAVAILABLE, 'ttrpc server is shutting down');
    if (this.active.size >= this.opts.maxConcurrentRequests) {
      const limit = this.opts.maxConcurrentRequests;
      return this.respondStatus(id, StatusCode.RESOURCE_EXHAUSTED, `more than ${limit} concurrent requests on one connection`);
    }
    const handler = this.opts.lookup(req.service, req.method);
    if (handler instanceof TtrpcError) return this.respondStatus(id, handler.status, handler.detail);
    this.run(id, req, handler).catch((err: unknown) => log.error(`ttrpc ${this.opts.name}: stream ${id}: ${errorMessage(err)}`));
  }

  private async run(id: number, req: RequestMessage, handler: Handler): Promise<void> {
    const controller = new AbortController();
    this.active.set(id, controller);
    const timer = this.deadlineTimer(req, controller);
    const ctx: CallContext = { service: req.service, method: req.method, metadata: req.metadata, signal: controller.signal };
    try {
      const out = await handler(req.payload, ctx);
      this.respond(id, StatusCode.OK, '', out);
    } catch (err) {
      const status = statusOf(err);
      // The peer names the method, and errors quote what it sent: both may be a hostile guest's.
      log.debug(`ttrpc ${this.opts.name}: ${logSafe(`/${req.service}/${req.method}`)} failed: ${statusName(status)}: ${logSafe(errorMessage(err))}`);
      this.respondStatus(id, status, statusMessageOf(err));
    } finally {
      if (timer) clearTimeout(timer);
      this.active.delete(id);
      if (this.draining && this.active.size === 0) this.close();
      this.settleIfIdle();
    }
  }

  /** Aborts the handler's signal when the request's timeout_nano runs out; 0 is no deadline, as upstream. */
  private deadlineTimer(req: RequestMessage, controller: AbortController): NodeJS.Timeout | undefined {
    const ns = req.timeoutNano;
    if (ns === 0n) return undefined;
    const reason = new TimeoutError(`deadline of /${req.service}/${req.method} exceeded`);
    if (ns < 0n) {
      controller.abort(reason);
      return undefined;
    }
    const ms = Number((ns + 999_999n) / 1_000_000n);
    if (ms > MAX_TIMER_MS) return undefined;
    return setTimeout(() => controller.abort(reason), ms);
  }

  private respondStatus(id: number, code: StatusCode, message: string): void {
    this.respond(id, code, message, Buffer.alloc(0));
  }

  private respond(id: number, code: StatusCode, message: string, payload: Uint8Array): void {
    if (this.ended) return;
    let frame: Buffer;
    try {
      const body = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
      frame = encodeFrame(id, MessageType.Response, encodeResponse({ status: { code, message }, payload: body }));
    } catch (err) {
      // Too large to send (upstream: ResourceExhausted), or not bytes at all; the status alone always fits.
      const status = statusOf(err) === StatusCode.RESOURCE_EXHAUSTED ? StatusCode.RESOURCE_EXHAUSTED : StatusCode.INTERNAL;
      log.warn(`ttrpc ${this.opts.name}: response on stream ${id}: ${errorMessage(err)}`);
      const response = encodeResponse({ status: { code: status, message: statusMessageOf(err) }, payload: Buffer.alloc(0) });
      frame = encodeFrame(id, MessageType.Response, response);
    }
    // A client that sends but does not read stops being read until it catches up.
    if (!this.stream.write(frame) && !this.stream.isPaused()) {
      this.stream.pause();
      this.stream.once('drain', () => this.stream.resume());
    }
  }

  private settleIfIdle(): void {
    if (this.ended && this.active.size === 0) this.resolveDone();
  }
}
