import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { ExternalError, errorMessage } from '../../common/errors.js';

/**
 * The directories overlayfs marks opaque (trusted.overlay.opaque, or
 * user.overlay.opaque with userxattr) under an upper directory. Node cannot
 * read xattrs; python3 is in every guest the shim runs in (its subreaper
 * helper). A python start was most of a checkpoint's guest CPU in
 * ovmigrate-cri under TCG, so one python runs for as long as the process
 * does, started ahead (start()) or at the first ask, and answers each ask in
 * turn: a root (bytes, NUL-ended) in; each opaque directory's relative path,
 * NUL-ended, then an empty record, out. Without the site module (-S), which
 * this needs no part of. One that died is started again at the next ask.
 */
const SCRIPT = `
import os, sys
def opaque(p):
    for key in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(p, key, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False
out = sys.stdout.buffer
buf = b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    buf += chunk
    while b"\\0" in buf:
        root, buf = buf.split(b"\\0", 1)
        for d, subdirs, _ in os.walk(root):
            for s in subdirs:
                p = os.path.join(d, s)
                if opaque(p):
                    out.write(os.path.relpath(p, root) + b"\\0")
        out.write(b"\\0")
        out.flush()
`;

/** Pipes of a child are sockets: they can stop holding the process alive. */
type Helper = ChildProcessByStdio<Writable, Socket, null>;

interface Ask {
  names: string[];
  partial: Buffer;
  resolve(names: Set<string>): void;
  reject(err: Error): void;
}

export class OpaqueDirLister {
  private child?: Helper;
  private ask?: Ask;
  /** Asks go one at a time: answers carry no tag. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly python = 'python3') {}

  /** Starts the helper now, so that the first checkpoint does not pay its start. */
  start(): void {
    if (!this.child) this.child = this.spawn();
  }

  list(upper: string): Promise<Set<string>> {
    const run = this.queue.then(() => this.listNow(upper));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Stops the helper (tests; the process's exit does it otherwise). */
  stop(): void {
    const ask = this.ask;
    this.ask = undefined;
    this.child?.stdin.end();
    this.child = undefined;
    ask?.reject(new Error('the helper was stopped'));
  }

  private listNow(upper: string): Promise<Set<string>> {
    const fail = (err: unknown) => new ExternalError(`listing the opaque directories of ${upper}: ${errorMessage(err)}`, { cause: err });
    if (upper.includes('\0')) return Promise.reject(fail(new Error('the path holds a NUL')));
    this.start();
    const child = this.child!;
    return new Promise<Set<string>>((resolve, reject) => {
      this.ask = { names: [], partial: Buffer.alloc(0), resolve, reject: (err) => reject(fail(err)) };
      // Held open only while an ask waits: an idle helper keeps no process alive.
      child.stdout.ref();
      child.stdin.write(Buffer.concat([Buffer.from(upper), Buffer.from([0])]));
    });
  }

  private spawn(): Helper {
    const child = spawn(this.python, ['-S', '-c', SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'] }) as unknown as Helper;
    child.unref();
    child.stdout.unref();
    (child.stdin as Writable & { unref?: () => void }).unref?.();
    const gone = (err: Error) => {
      // A helper stopped earlier: the ask underway is the new one's.
      if (this.child !== child) return;
      this.child = undefined;
      const ask = this.ask;
      this.ask = undefined;
      ask?.reject(err);
    };
    child.on('error', gone);
    child.stdin.on('error', () => undefined); // the exit or 'error' says what happened
    child.on('exit', (code, signal) => gone(new Error(`python3 exited (${signal ?? `code ${code}`})`)));
    child.stdout.on('data', (chunk: Buffer) => this.onData(child, chunk));
    return child;
  }

  private onData(child: Helper, chunk: Buffer): void {
    const ask = this.ask;
    if (!ask || this.child !== child) return;
    let data = ask.partial.length ? Buffer.concat([ask.partial, chunk]) : chunk;
    for (let nul = data.indexOf(0); nul >= 0; nul = data.indexOf(0)) {
      const record = data.subarray(0, nul);
      data = data.subarray(nul + 1);
      if (record.length === 0) {
        this.ask = undefined;
        child.stdout.unref();
        ask.resolve(new Set(ask.names));
        return;
      }
      ask.names.push(record.toString());
    }
    ask.partial = Buffer.from(data);
  }
}
