import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { log } from '../../common/log.js';

/**
 * Waits for a virtio-serial port to become readable, in a helper: libuv takes
 * a character device for a file and cannot poll it, so without this the relay
 * polls the port on timers, 20 to 200 times a second while a call is out
 * (most of the relay's guest CPU over a checkpoint). python3 (in every guest
 * the shim runs in, for its subreaper helper) holds the port's descriptor as
 * its fd 3 and poll()s it each time it is armed by a byte on its stdin, then
 * answers a byte on its stdout. drivers/char/virtio_console.c port_fops_poll
 * says POLLIN when data waits or no host is connected (a read then answers
 * 0), POLLHUP without a host: both are what the relay reads next. The helper
 * also watches its stdin: it exits when the relay goes, and with it its hold
 * on the port, which opens once. Without the site module (-S).
 */
const SCRIPT = `
import os, select
p = select.poll()
p.register(0, select.POLLIN)
armed = False
while True:
    for fd, ev in p.poll():
        if fd == 0:
            if not os.read(0, 1):
                os._exit(0)
            if not armed:
                armed = True
                p.register(3, select.POLLIN)
        elif armed:
            armed = False
            p.unregister(3)
            os.write(1, b"r")
`;

/** Pipes of a child are sockets: they can stop holding the process alive. */
type Helper = ChildProcessByStdio<Writable, Socket, null>;

export class PortWaiter {
  private child?: Helper;
  private armed = false;
  private wake?: () => void;
  /** Set when the helper could not start or died: the caller polls from then on. */
  private gone = false;

  constructor(private readonly fd: number, private readonly python = 'python3') {}

  /**
   * Calls `wake` once, when the next read of the port would not answer
   * EAGAIN (or when the helper is lost); a call before then only replaces
   * `wake`. False when the port cannot be waited on: the caller polls.
   */
  whenReadable(wake: () => void): boolean {
    if (this.gone) return false;
    this.wake = wake;
    if (this.armed) return true;
    const child = (this.child ??= this.spawn());
    this.armed = true;
    child.stdin.write('a');
    return true;
  }

  /** Ends the helper now (the relay's exit does it too, a moment later): the next relay can open the port. */
  stop(): void {
    this.gone = true;
    this.child?.kill('SIGKILL');
    this.child = undefined;
  }

  private spawn(): Helper {
    const child = spawn(this.python, ['-S', '-c', SCRIPT], { stdio: ['pipe', 'pipe', 'inherit', this.fd] }) as unknown as Helper;
    // The port link's promise keeps the relay up; the helper's pipes need not.
    child.unref();
    child.stdout.unref();
    (child.stdin as Writable & { unref?: () => void }).unref?.();
    const lost = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.gone = true;
      log.warn(`relay: the port's readiness helper ${why}; polling the port instead`);
      this.fire();
    };
    child.on('error', (err) => lost(`failed: ${err.message}`));
    child.stdin.on('error', () => undefined); // the exit or 'error' says what happened
    child.on('exit', (code, signal) => lost(`exited (${signal ?? `code ${code}`})`));
    child.stdout.on('data', () => {
      if (this.child === child) this.fire();
    });
    return child;
  }

  private fire(): void {
    const wake = this.wake;
    this.armed = false;
    this.wake = undefined;
    wake?.();
  }
}
