import net from 'node:net';
import type { Duplex } from 'node:stream';
import { AlreadyExistsError, InvalidArgumentError, errorMessage } from '../errors.js';
import { log } from '../log.js';
import { MAX_MESSAGE_SIZE } from './frame.js';
import { ServerConnection, type ConnectionLimits, type Handler } from './server-connection.js';
import { StatusCode, TtrpcError } from './status.js';

export interface TtrpcServerOptions {
  /** Requests one connection may have in flight; more are answered RESOURCE_EXHAUSTED. */
  maxConcurrentRequests?: number;
  /**
   * Largest frame payload a peer may send (default the protocol's 4 MiB); a
   * larger header closes the connection before any of its payload is read.
   */
  maxMessageSize?: number;
  /** Metadata entries one request may carry, and their encoded bytes in all; more are answered RESOURCE_EXHAUSTED. */
  maxMetadataEntries?: number;
  maxMetadataBytes?: number;
  /** A connection that sent part of a frame and nothing more for this long is closed (0: never). */
  partialFrameTimeoutMs?: number;
}

export const DEFAULT_MAX_CONCURRENT_REQUESTS = 64;
/** containerd sends a namespace and perhaps a trace context; a hundred entries is already far more. */
export const DEFAULT_MAX_METADATA_ENTRIES = 128;
export const DEFAULT_MAX_METADATA_BYTES = 16 << 10;
/** A frame's bytes arrive together on a unix socket or virtio port; a pause this long is a stuck or hostile peer. */
export const DEFAULT_PARTIAL_FRAME_TIMEOUT_MS = 30_000;

/**
 * A ttrpc server for unary methods. Transports: unix sockets (listen) or any
 * duplex byte stream, e.g. a virtio-serial port (serve).
 */
export class TtrpcServer {
  private readonly services = new Map<string, Map<string, Handler>>();
  private readonly listeners = new Set<net.Server>();
  private readonly connections = new Set<ServerConnection>();
  private readonly limits: ConnectionLimits;
  private closed = false;
  private connectionCount = 0;

  constructor(opts: TtrpcServerOptions = {}) {
    this.limits = {
      maxConcurrentRequests: opts.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS,
      maxMessageSize: opts.maxMessageSize ?? MAX_MESSAGE_SIZE,
      maxMetadataEntries: opts.maxMetadataEntries ?? DEFAULT_MAX_METADATA_ENTRIES,
      maxMetadataBytes: opts.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES,
      partialFrameTimeoutMs: opts.partialFrameTimeoutMs ?? DEFAULT_PARTIAL_FRAME_TIMEOUT_MS,
    };
    for (const [name, value] of Object.entries(this.limits)) {
      const least = name === 'maxConcurrentRequests' ? 1 : 0;
      if (!Number.isSafeInteger(value) || value < least) throw new InvalidArgumentError(`${name} must be an integer of at least ${least}, not ${value}`);
    }
    if (this.limits.maxMessageSize > MAX_MESSAGE_SIZE) {
      throw new InvalidArgumentError(`maxMessageSize ${this.limits.maxMessageSize} is more than the protocol's ${MAX_MESSAGE_SIZE}`);
    }
  }

  /** Adds a service's methods, e.g. register('containerd.task.v2.Task', { Create: ..., Start: ... }). */
  register(service: string, methods: Record<string, Handler>): void {
    // Upstream panics on a duplicate service.
    if (this.services.has(service)) throw new AlreadyExistsError(`ttrpc service ${service} is already registered`);
    this.services.set(service, new Map(Object.entries(methods)));
  }

  /** Serves one connection; resolves when it has closed and its handlers have settled. Never rejects. */
  serve(stream: Duplex): Promise<void> {
    if (this.closed) {
      stream.destroy();
      return Promise.resolve();
    }
    const conn = new ServerConnection(stream, {
      lookup: (service, method) => this.lookup(service, method),
      ...this.limits,
      name: `connection ${++this.connectionCount}`,
    });
    this.connections.add(conn);
    return conn.done.then(() => {
      this.connections.delete(conn);
    });
  }

  /** Listens on a unix socket; the path must not exist. Resolves once listening. */
  async listen(socketPath: string): Promise<void> {
    if (this.closed) throw new TtrpcError(StatusCode.UNAVAILABLE, 'ttrpc server is closed');
    const listener = net.createServer((socket) => void this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') reject(new AlreadyExistsError(`ttrpc socket ${socketPath} already exists`, { cause: err }));
        else reject(err);
      });
      listener.listen(socketPath, () => resolve());
    });
    listener.on('error', (err) => log.error(`ttrpc listener ${socketPath}: ${errorMessage(err)}`));
    this.listeners.add(listener);
    log.debug(`ttrpc server listening on ${socketPath}`);
  }

  /** Stops listening and closes every connection now; running handlers see their signal abort. */
  async close(): Promise<void> {
    this.closed = true;
    const listenersClosed = this.closeListeners();
    for (const conn of this.connections) conn.close();
    await listenersClosed;
  }

  /** Stops listening and new requests, and closes each connection once its requests are answered. */
  async shutdown(): Promise<void> {
    this.closed = true;
    const listenersClosed = this.closeListeners();
    const done = [...this.connections].map((conn) => {
      conn.drain();
      return conn.done;
    });
    await Promise.all([listenersClosed, ...done]);
  }

  private lookup(service: string, method: string): Handler | TtrpcError {
    const methods = this.services.get(service);
    // Upstream's messages for the two cases.
    if (!methods) return new TtrpcError(StatusCode.UNIMPLEMENTED, `service ${service}`);
    const handler = methods.get(method);
    if (!handler) return new TtrpcError(StatusCode.UNIMPLEMENTED, `method ${method}`);
    return handler;
  }

  private async closeListeners(): Promise<void> {
    const listeners = [...this.listeners];
    this.listeners.clear();
    // Closing a unix socket listener unlinks its path.
    await Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
  }
}
