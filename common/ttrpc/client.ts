import net from 'node:net';
import type { Duplex } from 'node:stream';
import { InvalidArgumentError, errorMessage } from '../errors.js';
import { log } from '../log.js';
import { FrameDecoder, MessageType, encodeFrame, type Frame } from './frame.js';
import { decodeResponse, encodeRequest, toMetadata, type Metadata } from './messages.js';
import { StatusCode, TtrpcError, abortedError } from './status.js';

export interface CallOptions {
  /** Deadline for the call, sent to the server as timeout_nano; the call rejects DEADLINE_EXCEEDED after it. */
  timeoutMs?: number;
  /** Rejects the call (CANCELLED, or DEADLINE_EXCEEDED for a timeout reason); ttrpc cannot tell the server. */
  signal?: AbortSignal;
  /** Keys are lower-cased, as upstream's MD does. */
  metadata?: Record<string, string | string[]> | Metadata;
}

interface PendingCall {
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
  cleanup: () => void;
}

const MAX_STREAM_ID = 0xffff_ffff;
const MAX_INT64 = 2n ** 63n - 1n;
/** setTimeout's limit; longer deadlines are left to the server. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Connects to a unix socket; rejects with the connect error (ENOENT, ECONNREFUSED...). */
export function connectUnix(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** A ttrpc client for unary calls over one connection. */
export class TtrpcClient {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, PendingCall>();
  /** Client-initiated streams are odd: 1, 3, 5, ... */
  private nextStreamId = 1;
  private closedError: TtrpcError | undefined;

  /** Connects to a ttrpc server's unix socket. */
  static async connect(socketPath: string): Promise<TtrpcClient> {
    return new TtrpcClient(await connectUnix(socketPath));
  }

  constructor(private readonly stream: Duplex) {
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.fail(new TtrpcError(StatusCode.UNAVAILABLE, 'ttrpc connection closed by the server')));
    stream.on('error', (err) => {
      this.fail(new TtrpcError(StatusCode.UNAVAILABLE, `ttrpc connection failed: ${errorMessage(err)}`, { cause: err }));
    });
    stream.on('close', () => this.fail(new TtrpcError(StatusCode.UNAVAILABLE, 'ttrpc connection closed')));
  }

  /** True once the connection is gone; calls then reject at once. */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Calls /service/method with the request's protobuf bytes; resolves with the response's. */
  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      if (this.closedError) return reject(this.closedError);
      const { timeoutMs, signal } = opts;
      if (signal?.aborted) return reject(abortedError(signal.reason));
      if (timeoutMs !== undefined && !(timeoutMs >= 0 && Number.isFinite(timeoutMs))) {
        return reject(new InvalidArgumentError(`timeoutMs must be a finite number >= 0, not ${timeoutMs}`));
      }
      // timeout_nano 0 means no deadline on the wire, so a spent deadline never leaves.
      const timeoutNano = timeoutMs === undefined ? 0n : BigInt(Math.round(timeoutMs * 1e6));
      if (timeoutMs !== undefined && timeoutNano <= 0n) {
        return reject(new TtrpcError(StatusCode.DEADLINE_EXCEEDED, `/${service}/${method}: deadline exceeded before sending`));
      }
      if (this.nextStreamId > MAX_STREAM_ID) {
        return reject(new TtrpcError(StatusCode.RESOURCE_EXHAUSTED, 'ttrpc stream ids of this connection are used up'));
      }

      let frame: Buffer;
      try {
        const body = encodeRequest({
          service,
          method,
          payload: Buffer.from(payload.buffer, payload.byteOffset, payload.length),
          timeoutNano: timeoutNano > MAX_INT64 ? MAX_INT64 : timeoutNano,
          metadata: toMetadata(opts.metadata),
        });
        frame = encodeFrame(this.nextStreamId, MessageType.Request, body);
      } catch (err) {
        return reject(err instanceof Error ? err : new Error(String(err)));
      }
      const id = this.nextStreamId;
      this.nextStreamId += 2;

      const expire = (): void => {
        this.settle(id, new TtrpcError(StatusCode.DEADLINE_EXCEEDED, `/${service}/${method}: deadline of ${timeoutMs} ms exceeded`));
      };
      const timer = timeoutMs === undefined || timeoutMs > MAX_TIMER_MS ? undefined : setTimeout(expire, timeoutMs);
      const onAbort = (): void => this.settle(id, abortedError(signal?.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = (): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.pending.set(id, { resolve, reject, cleanup });
      this.stream.write(frame);
    });
  }

  /** Closes the connection; pending calls reject CANCELLED. */
  close(): void {
    this.fail(new TtrpcError(StatusCode.CANCELLED, 'ttrpc client closed'));
  }

  private onData(chunk: Buffer): void {
    if (this.closedError) return;
    // Whatever the server sends, it must not become an uncaught exception in a stream event.
    try {
      for (const frame of this.decoder.push(chunk)) this.onFrame(frame);
    } catch (err) {
      log.error(`ttrpc client: closing connection: ${errorMessage(err)}`);
      this.fail(new TtrpcError(StatusCode.INTERNAL, `ttrpc protocol error: ${errorMessage(err)}`, { cause: err }));
    }
  }

  private onFrame(frame: Frame): void {
    if (frame.type !== MessageType.Response) {
      // We start no streaming calls, and servers start no streams.
      log.error(`ttrpc client: closing connection: server sent a ${MessageType[frame.type]} frame on stream ${frame.streamId}`);
      return this.fail(new TtrpcError(StatusCode.INTERNAL, `ttrpc protocol error: unexpected ${MessageType[frame.type]} frame`));
    }
    if (!this.pending.has(frame.streamId)) {
      // Answers to calls that timed out or were aborted here.
      log.debug(`ttrpc client: dropping response on finished stream ${frame.streamId}`);
      return;
    }
    try {
      const { status, payload } = decodeResponse(frame.payload);
      if (status.code === StatusCode.OK) this.settle(frame.streamId, payload);
      else this.settle(frame.streamId, new TtrpcError(status.code, status.message));
    } catch (err) {
      this.settle(frame.streamId, new TtrpcError(StatusCode.INTERNAL, `ttrpc response does not decode: ${errorMessage(err)}`, { cause: err }));
    }
  }

  private settle(id: number, result: Buffer | Error): void {
    const call = this.pending.get(id);
    if (!call) return;
    this.pending.delete(id);
    call.cleanup();
    if (result instanceof Error) call.reject(result);
    else call.resolve(result);
  }

  /** Ends the connection once; every pending call rejects with the first reason. */
  private fail(err: TtrpcError): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const id of [...this.pending.keys()]) this.settle(id, err);
    this.stream.destroy();
  }
}
