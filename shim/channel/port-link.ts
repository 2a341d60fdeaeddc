import { BACKEND_SERVICE } from '../../common/backend-api.js';
import { ExternalError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import {
  FrameDecoder, HEADER_SIZE, MAX_MESSAGE_SIZE, MessageType, StatusCode, decodeResponse, encodeFrame, encodeRequest,
} from '../../common/ttrpc/index.js';
import type { Relay } from './relay.js';
import type { PortIO } from './virtio-port.js';

/** Between polls of the port while no host is there (a call waits for one, held by the relay)... */
const IDLE_POLL_MS = 100;
/**
 * ...while the host is there and nothing waits for it: it sends nothing
 * unasked, and a call going out polls at once, finding a host that left
 * then (a read of 0 fails what was forwarded, UNAVAILABLE). Ten wake-ups a
 * second here were the relay's guest CPU over a whole checkpoint.
 */
const UP_IDLE_POLL_MS = 1000;
/** ...and while something does: an answer waits for the next poll. */
const BUSY_POLL_MS = 5;
/**
 * A call the host works on for seconds (a dump) backs the polls off to this,
 * doubling while nothing comes: 200 wake-ups a second of the relay are guest
 * CPU the checkpoint would cost for nothing.
 */
const MAX_BUSY_POLL_MS = 50;
/** How long the host gets to answer the probe before its connection counts as out of step. */
const DEFAULT_PROBE_TIMEOUT_MS = 5000;
/** Zeros enough to end any frame a host may be in the middle of, and then to be a header it refuses. */
const RESET_BYTES = MAX_MESSAGE_SIZE + 2 * HEADER_SIZE;
const ZEROS = Buffer.alloc(32 * 1024);

export interface PortLinkOptions {
  probeTimeoutMs?: number;
  /**
   * Calls `wake` once, when the port is readable (data, or the host gone);
   * false when it cannot (PortWaiter.whenReadable). While the host is up and
   * nothing is left to write, the link then sleeps until woken instead of
   * polling. Without it, or once it answers false, the link polls.
   */
  whenReadable?: (wake: () => void) => boolean;
}

/**
 * Where the link is with the host's connection (the chardev socket the
 * backend holds, which outlives guest processes, and reboots):
 * - down: no host connected;
 * - probing: a Hello went out on a stream id of the relay's; its answer, and
 *   nothing else, says that the host frames what we send and takes our ids;
 * - resetting: the connection is out of step (it served an earlier relay,
 *   which used the ids we would send or died in the middle of a frame):
 *   zeros go out until the host's server refuses them and drops it;
 * - up: the relay's calls go through.
 */
type State =
  | { kind: 'down' }
  | { kind: 'probing'; id: number; sentAt: number; decoder: FrameDecoder }
  | { kind: 'resetting'; left: number; doneAt?: number }
  | { kind: 'up' };

/**
 * Drives a Relay from a virtio-serial port, opened non-blocking. A port is
 * not a socket: it has no connect or hangup event, and libuv cannot poll it,
 * so it is polled here (see PortIO for what reads and writes answer), or,
 * while the host is up, waited on by a helper (port-waiter.ts). The
 * host only ever gets well-formed ttrpc requests from a starting relay; a
 * reset (bytes no ttrpc server takes) is sent only to a connection that is
 * out of step already, so nothing of the host's that works is broken by it.
 */
export class PortLink {
  private state: State = { kind: 'down' };
  /** As the last read saw it. */
  private connected = false;
  /** Frames not yet (wholly) written; dropped with the connection, so none reaches the next one in part. */
  private out: Buffer[] = [];
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly buf = Buffer.alloc(1 << 16);
  /** The next poll's wait while a call is out (BUSY_POLL_MS up to MAX_BUSY_POLL_MS). */
  private busyPollMs = BUSY_POLL_MS;
  /** Whether the host sent anything since the last poll. */
  private heard = false;
  private failed?: (err: Error) => void;
  private readonly probeTimeoutMs: number;
  private readonly whenReadable?: (wake: () => void) => boolean;
  /** Whether the last poll left the link asleep until the port is readable (no timer). */
  private asleep = false;
  private readonly wake = () => this.poll();

  constructor(private readonly port: PortIO, private readonly relay: Relay, opts: PortLinkOptions = {}) {
    this.probeTimeoutMs = opts.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.whenReadable = opts.whenReadable;
  }

  /** Relays until the port fails. */
  run(): Promise<never> {
    return new Promise((_resolve, reject) => {
      this.failed = reject;
      this.poll();
    });
  }

  /** Stops polling (the port stays open: its owner closes it). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.state.kind === 'up') this.relay.hostDown('the relay stopped');
    this.state = { kind: 'down' };
  }

  get hostUp(): boolean {
    return this.state.kind === 'up';
  }

  private poll(): void {
    // Woken while a timer was set (a write that did not go whole), or the other way round: one poll does for both.
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.asleep = false;
    if (this.stopped) return;
    try {
      this.readAll();
      if (this.connected) this.step();
    } catch (err) {
      return this.failed!(err instanceof Error ? err : new Error(String(err)));
    }
    const waiting = this.state.kind === 'probing' || this.state.kind === 'resetting' || (this.state.kind === 'up' && this.relay.busy);
    const quiet = this.state.kind === 'up' && !this.heard && this.out.length === 0;
    this.busyPollMs = waiting && quiet ? Math.min(this.busyPollMs * 2, MAX_BUSY_POLL_MS) : BUSY_POLL_MS;
    this.heard = false;
    // The host there and nothing to write: only the host's bytes, or its leaving, can move the link on.
    if (this.state.kind === 'up' && this.out.length === 0 && this.whenReadable?.(this.wake)) {
      this.asleep = true;
      return;
    }
    this.schedule(waiting ? this.busyPollMs : this.state.kind === 'up' ? UP_IDLE_POLL_MS : IDLE_POLL_MS);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), ms);
  }

  private readAll(): void {
    for (;;) {
      let n: number | undefined;
      try {
        n = this.port.read(this.buf);
      } catch (err) {
        throw new ExternalError(`reading the port: ${errorMessage(err)}`, { cause: err });
      }
      if (n === undefined) {
        this.connected = true;
        return;
      }
      if (n === 0) return this.dropped();
      this.connected = true;
      this.heard = true;
      this.fromHost(Buffer.from(this.buf.subarray(0, n)));
    }
  }

  /** What the state asks of a connected host: the probe, its deadline, zeros, or frames. */
  private step(): void {
    const s = this.state;
    if (s.kind === 'down') return this.probe();
    if (s.kind === 'probing' && Date.now() - s.sentAt >= this.probeTimeoutMs) {
      return this.reset(`the host did not answer the probe in ${this.probeTimeoutMs} ms (its connection is in the middle of an earlier relay's frame)`);
    }
    if (s.kind === 'resetting') {
      while (s.left > 0) {
        const n = this.write(ZEROS.subarray(0, Math.min(ZEROS.length, s.left)));
        if (n === 0) break;
        s.left -= n;
      }
      if (s.left === 0) {
        s.doneAt ??= Date.now();
        // A host that takes all that and stays is no ttrpc server we know: ask it again, later.
        if (Date.now() - s.doneAt >= this.probeTimeoutMs) this.state = { kind: 'down' };
      }
      return;
    }
    this.flush();
  }

  /** A Hello, as any shim would send it, on the relay's next stream id. */
  private probe(): void {
    const id = this.relay.takeStreamId();
    if (id === undefined) throw new ExternalError('the relay has used up its stream ids: restart it');
    const request = encodeRequest({ service: BACKEND_SERVICE, method: 'Hello', payload: Buffer.alloc(0), timeoutNano: 0n, metadata: new Map() });
    this.out = [encodeFrame(id, MessageType.Request, request)];
    this.state = { kind: 'probing', id, sentAt: Date.now(), decoder: new FrameDecoder() };
    this.flush();
  }

  private fromHost(chunk: Buffer): void {
    const s = this.state;
    if (s.kind === 'up') {
      try {
        this.relay.fromHost(chunk);
      } catch (err) {
        this.reset(`the host's stream does not frame (${errorMessage(err)})`);
      }
      return;
    }
    // Bytes before the probe are answers to an earlier relay; bytes during a reset are the host's last words.
    if (s.kind !== 'probing') return;
    let frames;
    try {
      frames = s.decoder.push(chunk);
    } catch (err) {
      return this.reset(`the host's stream does not frame (${errorMessage(err)})`);
    }
    const answer = frames.find((f) => f.type === MessageType.Response && f.streamId === s.id);
    if (!answer) return;
    // A healthy host answers OK (or UNIMPLEMENTED, when it is not our backend: calls then fail on their own).
    // INVALID_ARGUMENT is what a ttrpc server answers an id it has seen, or a request it cannot read.
    const { status } = decodeResponse(answer.payload);
    if (status.code === StatusCode.INVALID_ARGUMENT) return this.reset(`the host's connection is out of step: ${status.message}`);
    this.state = { kind: 'up' };
    // Frames after the answer in this chunk answer an earlier relay's calls: the relay drops them.
    this.relay.hostUp((frame) => {
      this.out.push(frame);
      this.flush();
      // Asleep, the answer (or the host's leaving) wakes the link; a write that did not go whole needs polls.
      if (this.asleep && this.out.length === 0) return;
      this.busyPollMs = BUSY_POLL_MS;
      this.schedule(BUSY_POLL_MS);
    }, s.decoder);
  }

  private reset(reason: string): void {
    log.warn(`relay: ${reason}; resetting the host's connection`);
    if (this.state.kind === 'up') this.relay.hostDown(reason);
    this.out = [];
    this.state = { kind: 'resetting', left: RESET_BYTES };
  }

  private dropped(): void {
    this.connected = false;
    this.out = [];
    if (this.state.kind === 'up') this.relay.hostDown('the host closed the channel');
    this.state = { kind: 'down' };
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

  private write(data: Buffer): number {
    try {
      return this.port.write(data);
    } catch (err) {
      throw new ExternalError(`writing the port: ${errorMessage(err)}`, { cause: err });
    }
  }
}
