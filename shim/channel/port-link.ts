import fs from 'node:fs';
import { ExternalError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { MessageType, encodeFrame } from '../../common/ttrpc/index.js';
import type { Relay } from './relay.js';

/** Between polls of the port while no call waits for an answer... */
const IDLE_POLL_MS = 100;
/** ...and while one does: its answer waits for the next poll. */
const BUSY_POLL_MS = 5;
/** The host keeps the channel after the reset: it was not ours to reset, or its drop came and went between polls. */
const RESET_GRACE_MS = 1000;

/**
 * A frame header every ttrpc decoder refuses (length, stream and message
 * type 0): the host's server drops the connection and connects again, with
 * a fresh decoder and stream ids counted from zero. A relay sends it when it
 * starts, since the host may still hold the connection of a relay before it
 * (one that died, or a guest that rebooted), which used stream ids this one
 * would repeat. All zeros, so a part of it sent twice does no harm.
 */
const RESET = encodeFrame(0, 0 as MessageType);

/**
 * Drives a Relay from a virtio-serial port, opened non-blocking. A port is
 * not a socket: it has no connect or hangup event, and libuv cannot poll it,
 * so it is polled here. A read returns 0 while no host is connected and
 * EAGAIN while one is and has sent nothing (drivers/char/virtio_console.c
 * port_fops_read); a write returns EAGAIN while no host is connected or the
 * queue is full (will_write_block). Blocking reads in libuv's thread pool
 * would tell less, and would keep the process from exiting.
 */
export class PortLink {
  /** As the last read saw it. */
  private connected = false;
  private resetAt?: number;
  private sawDropAfterReset = false;
  private up = false;
  /** Frames not yet (wholly) written; dropped with the connection, so none reaches the next one in part. */
  private out: Buffer[] = [];
  private timer?: NodeJS.Timeout;
  private readonly buf = Buffer.alloc(1 << 16);
  private failed?: (err: Error) => void;

  constructor(private readonly fd: number, private readonly relay: Relay) {}

  /** Relays until the port fails. */
  run(): Promise<never> {
    return new Promise((_resolve, reject) => {
      this.failed = reject;
      this.poll();
    });
  }

  private poll(): void {
    this.timer = undefined;
    try {
      this.readAll();
      if (this.connected) this.flush();
      if (this.connected && !this.up) this.handshake();
    } catch (err) {
      return this.failed!(err instanceof Error ? err : new Error(String(err)));
    }
    this.schedule(this.up && this.relay.busy ? BUSY_POLL_MS : IDLE_POLL_MS);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), ms);
  }

  private readAll(): void {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          this.connected = true;
          return;
        }
        throw new ExternalError(`reading the port: ${errorMessage(err)}`, { cause: err });
      }
      if (n === 0) return this.dropped();
      this.connected = true;
      // Bytes before the relay counts the host as up answer nothing of this relay's.
      if (this.up) this.fromHost(Buffer.from(this.buf.subarray(0, n)));
    }
  }

  /** Resets the host's connection once, and counts the host as up when it has connected again. */
  private handshake(): void {
    if (this.resetAt === undefined) {
      if (this.write(RESET) === RESET.length) this.resetAt = Date.now();
      return;
    }
    if (this.sawDropAfterReset || Date.now() - this.resetAt >= RESET_GRACE_MS) {
      this.up = true;
      this.relay.hostUp((frame) => {
        this.out.push(frame);
        this.flush();
        this.schedule(BUSY_POLL_MS);
      });
    }
  }

  private dropped(): void {
    if (this.resetAt !== undefined) this.sawDropAfterReset = true;
    this.connected = false;
    this.out = [];
    if (!this.up) return;
    this.up = false;
    this.relay.hostDown('the host closed the channel');
  }

  private flush(): void {
    while (this.out.length) {
      const n = this.write(this.out[0]);
      if (n < this.out[0].length) {
        this.out[0] = this.out[0].subarray(n);
        return;
      }
      this.out.shift();
    }
  }

  /** Bytes written, 0 when the port takes none now (the driver writes at most 32 KiB a call). */
  private write(data: Buffer): number {
    try {
      return fs.writeSync(this.fd, data);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
      throw new ExternalError(`writing the port: ${errorMessage(err)}`, { cause: err });
    }
  }

  private fromHost(chunk: Buffer): void {
    try {
      this.relay.fromHost(chunk);
    } catch (err) {
      // Where the next frame starts is unknown: have the host start over.
      log.error(`relay: the host's stream does not frame (${errorMessage(err)}); resetting the channel`);
      this.up = false;
      this.relay.hostDown('its stream did not frame');
      this.out = [];
      this.resetAt = undefined;
      this.sawDropAfterReset = false;
    }
  }
}
