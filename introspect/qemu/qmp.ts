import net from 'node:net';
import { BadDataError, ExternalError, TimeoutError } from '../../common/errors.js';

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** Largest QMP reply line we buffer; `info mtree` of a big machine stays far below. */
const MAX_LINE = 16 << 20;
/** A QEMU that does not answer a command in this long is hung, or not QEMU. */
export const QMP_TIMEOUT_MS = 10_000;

/**
 * A QEMU Machine Protocol client over a unix socket: JSON objects, one per
 * line; replies carry the request's `id`, events carry `event`.
 */
export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private greeting?: Pending;
  private closedError?: Error;

  private constructor(private readonly socket: net.Socket, private readonly path: string) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.failAll(new ExternalError(`QMP ${path}: ${err.message}`, { cause: err })));
    socket.on('close', () => this.failAll(new ExternalError(`QMP ${path}: connection closed`)));
  }

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const socket = net.createConnection(path);
    const client = new QmpClient(socket, path);
    const timer = setTimeout(() => socket.destroy(new TimeoutError(`QMP ${path}: no greeting within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise((resolve, reject) => { client.greeting = { resolve, reject }; });
      await client.execute('qmp_capabilities');
      return client;
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs one QMP command and returns its `return` value; no answer within `timeoutMs` is a TimeoutError. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = QMP_TIMEOUT_MS): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(`QMP ${this.path}: no answer to ${command} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => clearTimeout(timer);
      this.pending.set(id, {
        resolve: (v) => { done(); resolve(v as T); },
        reject: (err) => { done(); reject(err); },
      });
      this.socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    });
  }

  /** Runs a human monitor command (e.g. `info mtree -f`) and returns its text. */
  hmp(commandLine: string): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine });
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > MAX_LINE) {
      this.socket.destroy(new BadDataError(`QMP ${this.path}: reply line longer than ${MAX_LINE} bytes`));
      return;
    }
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: { QMP?: unknown; id?: string; return?: unknown; error?: { class: string; desc: string }; event?: string };
    try {
      msg = JSON.parse(line);
    } catch (err) {
      this.socket.destroy(new BadDataError(`QMP ${this.path}: not JSON: ${line.slice(0, 80)}`, { cause: err }));
      return;
    }
    if (msg.QMP && this.greeting) {
      this.greeting.resolve(msg.QMP);
      this.greeting = undefined;
      return;
    }
    if (msg.event || msg.id === undefined) return;
    const waiter = this.pending.get(msg.id);
    if (!waiter) return;
    this.pending.delete(msg.id);
    if (msg.error) waiter.reject(new ExternalError(`QMP ${this.path}: ${msg.error.class}: ${msg.error.desc}`));
    else waiter.resolve(msg.return);
  }

  private failAll(err: Error): void {
    this.closedError ??= err;
    this.greeting?.reject(err);
    this.greeting = undefined;
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }
}
