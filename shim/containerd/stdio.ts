import fs from 'node:fs';
import net from 'node:net';
import { log } from '../../common/log.js';
import type { Pipe, ProcessHelper } from '../subreaper/index.js';
import type { Stdio } from './runc.js';

/** The FIFOs containerd gives a process (paths; empty when not attached). */
export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** Opens of stdin FIFOs still waiting for a writer, in thread-pool threads. */
let pendingOpens = 0;

/** Whether a thread still waits in open(): process.exit() would wait for it forever. */
export function fifoOpensPending(): boolean {
  return pendingOpens > 0;
}

/** How long the exit of a process waits for its output to reach containerd (a child it left may hold the pipe). */
const DRAIN_MS = 2000;

/**
 * A non-terminal process's stdio: anonymous pipes to the process (so runc
 * restore can reconnect them after a checkpoint), copied to and from
 * containerd's FIFOs here, as containerd's runc shim does.
 */
export class ProcessIO {
  private stdinSocket?: net.Socket;
  private stdinOpening = false;
  private readonly theirs: number[] = [];
  private readonly outputs: Promise<void>[] = [];

  private constructor(readonly paths: StdioPaths, private readonly stdio: Stdio) {}

  static async open(helper: ProcessHelper, paths: StdioPaths): Promise<ProcessIO> {
    if (paths.terminal) return new ProcessIO(paths, ['ignore', 'ignore', 'ignore']);
    const stdin = paths.stdin ? await helper.pipe() : undefined;
    const stdout = paths.stdout ? await helper.pipe() : undefined;
    const stderr = paths.stderr ? await helper.pipe() : undefined;
    const io = new ProcessIO(paths, [stdin?.read ?? 'ignore', stdout?.write ?? 'ignore', stderr?.write ?? 'ignore']);
    io.theirs.push(...[stdin?.read, stdout?.write, stderr?.write].filter((fd): fd is number => fd !== undefined));
    if (stdin) io.copyIn(stdin);
    if (stdout) io.copyOut(stdout, paths.stdout);
    if (stderr) io.copyOut(stderr, paths.stderr);
    return io;
  }

  /** The fds runc gets as its stdio (the process inherits them). */
  runcStdio(): Stdio {
    return this.stdio;
  }

  /** Once runc has started the process, the process's ends are its own: close ours, so end of file reaches each side. */
  closeTheirs(): void {
    for (const fd of this.theirs.splice(0)) fs.closeSync(fd);
  }

  private copyIn(pipe: Pipe): void {
    this.stdinSocket = new net.Socket({ fd: pipe.write, readable: false, writable: true });
    this.stdinSocket.on('error', (err) => log.debug(`stdin of ${this.paths.stdin}: ${err.message}`));
    // Opening a FIFO for reading waits for its writer (containerd's client): in the thread pool. (A
    // non-blocking reader would read end of file until the writer comes.)
    this.stdinOpening = true;
    pendingOpens++;
    fs.open(this.paths.stdin, 'r', (err, fd) => {
      this.stdinOpening = false;
      pendingOpens--;
      if (err) return log.warn(`opening stdin ${this.paths.stdin}: ${err.message}`);
      if (!this.stdinSocket || this.stdinSocket.destroyed) return fs.close(fd, () => undefined);
      const fifo = new net.Socket({ fd, readable: true, writable: false });
      fifo.on('error', (e) => log.debug(`stdin ${this.paths.stdin}: ${e.message}`));
      fifo.pipe(this.stdinSocket);
    });
  }

  private copyOut(pipe: Pipe, fifoPath: string): void {
    const source = new net.Socket({ fd: pipe.read, readable: true, writable: false });
    // Read-write: the open does not wait for a reader, and a reader that goes away does not break the copy.
    const fifo = new net.Socket({ fd: fs.openSync(fifoPath, fs.constants.O_RDWR), readable: false, writable: true });
    fifo.on('error', (e) => log.debug(`${fifoPath}: ${e.message}`));
    source.on('error', (e) => log.debug(`output pipe for ${fifoPath}: ${e.message}`));
    this.outputs.push(new Promise((resolve) => {
      source.once('close', () => resolve());
      fifo.once('close', () => resolve());
    }));
    source.pipe(fifo);
  }

  /** CloseIO: end of file on the process's stdin. */
  closeStdin(): void {
    this.stdinSocket?.end();
  }

  /** Resolves when the process's output has been copied out (or after a bound). */
  async drained(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.outputs), new Promise((resolve) => { timer = setTimeout(resolve, DRAIN_MS); })]);
    clearTimeout(timer);
  }

  /** Drops every copy (the process is deleted). */
  close(): void {
    this.closeTheirs();
    this.stdinSocket?.destroy();
    this.stdinSocket = undefined;
    // A thread still waiting in open() for a writer that never came would keep the process from exiting: be that writer.
    if (this.stdinOpening) {
      try {
        fs.closeSync(fs.openSync(this.paths.stdin, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
      } catch (err) {
        log.debug(`releasing the stdin FIFO ${this.paths.stdin}: ${(err as Error).message}`);
      }
    }
  }
}
