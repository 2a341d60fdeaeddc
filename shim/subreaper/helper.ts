import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ExternalError, FailedPreconditionError } from '../../common/errors.js';
import { log } from '../../common/log.js';

/** The helper the shim runs under (see subreaper.py for why it exists); compiled code is in dist/shim/subreaper. */
export const HELPER_SCRIPT = path.resolve(__dirname, '..', '..', '..', 'shim', 'subreaper', 'subreaper.py');

/** Both ends of an anonymous pipe, as fds of this process. */
export interface Pipe {
  read: number;
  write: number;
}

/**
 * Talks to subreaper.py over the fds it gave us (3: its answers and
 * events, 4: our requests): exits of orphaned container processes, pipes,
 * terminals.
 */
export class ProcessHelper extends EventEmitter<{ exit: [pid: number, status: number] }> {
  private readonly pipeWaiters: ((fds: [number, number]) => void)[] = [];
  private readonly consoleWaiters = new Map<string, { listening: () => void; resolve: () => void; reject: (err: Error) => void }>();
  private buffered = '';

  private readonly requests: Writable;

  /**
   * The helper with pid `helperPid` (its fds are opened through /proc), its
   * answers and events read from `events`, requests written to `requests`.
   * `onGone` runs when `events` ends: the helper has exited.
   */
  constructor(private readonly helperPid: number, events: Readable, requests: Writable, onGone: () => void) {
    super();
    this.requests = requests;
    events.setEncoding('utf8');
    events.on('data', (chunk: string) => this.onData(chunk));
    events.on('end', onGone);
  }

  /** The helper of this process, when the shim runs under subreaper.py (its fds 3 and 4). */
  static attach(): ProcessHelper {
    const parent = process.ppid;
    const cmdline = fs.readFileSync(`/proc/${parent}/cmdline`, 'utf8');
    if (!cmdline.includes('subreaper.py') || !fs.existsSync('/proc/self/fd/3') || !fs.existsSync('/proc/self/fd/4')) {
      throw new FailedPreconditionError('the shim must run under shim/subreaper/subreaper.py (start it with the start command)');
    }
    const events = new net.Socket({ fd: 3, readable: true, writable: false });
    const requests = new net.Socket({ fd: 4, readable: false, writable: true });
    // Without the helper nobody reaps container processes: stop rather than run on blind.
    return new ProcessHelper(parent, events, requests, () => {
      log.error('the process helper is gone; exiting');
      process.exit(1);
    });
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const words = this.buffered.slice(0, nl).split(' ');
      this.buffered = this.buffered.slice(nl + 1);
      if (words[0] === 'exit') this.emit('exit', Number(words[1]), Number(words[2]));
      else if (words[0] === 'pipe') this.pipeWaiters.shift()?.([Number(words[1]), Number(words[2])]);
      else if (words[0] === 'console') {
        const waiter = this.consoleWaiters.get(words[1]);
        if (words[2] === 'listening') {
          waiter?.listening();
          continue;
        }
        this.consoleWaiters.delete(words[1]);
        if (words[2] === 'ok') waiter?.resolve();
        else waiter?.reject(new ExternalError(`terminal of ${words[1]}: ${words.slice(3).join(' ')}`));
      } else log.warn(`process helper said: ${words.join(' ')}`);
    }
  }

  private send(line: string): void {
    this.requests.write(line + '\n');
  }

  /** An anonymous pipe: made by the helper, opened here through /proc, closed there. */
  async pipe(): Promise<Pipe> {
    const [r, w] = await new Promise<[number, number]>((resolve) => {
      this.pipeWaiters.push(resolve);
      this.send('pipe');
    });
    try {
      // Opening a pipe through /proc gives an end of that same pipe; the write end first, so the read open finds a writer.
      const write = fs.openSync(`/proc/${this.helperPid}/fd/${w}`, fs.constants.O_WRONLY);
      const read = fs.openSync(`/proc/${this.helperPid}/fd/${r}`, fs.constants.O_RDONLY);
      return { read, write };
    } finally {
      this.send(`close ${r} ${w}`);
    }
  }

  /**
   * Listens on `socket` for runc's --console-socket and copies between the
   * terminal and containerd's FIFOs. Resolves once the socket listens,
   * with a promise that settles when runc has handed over the terminal.
   */
  async console(key: string, socket: string, stdin: string, stdout: string): Promise<{ ready: Promise<void> }> {
    let listening!: () => void;
    const listen = new Promise<void>((resolve) => { listening = resolve; });
    const ready = new Promise<void>((resolve, reject) => {
      this.consoleWaiters.set(key, { listening, resolve, reject });
      this.send(`console ${key} ${socket} ${stdin || '-'} ${stdout || '-'}`);
    });
    await Promise.race([listen, ready]);
    return { ready };
  }

  resize(key: string, cols: number, rows: number): void {
    this.send(`resize ${key} ${cols} ${rows}`);
  }
}
