import type { Duplex } from 'node:stream';
import { BadDataError, InvalidArgumentError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { FrameDecoder, MessageType, encodeFrame, encodeResponse, StatusCode, type Frame } from '../../common/ttrpc/index.js';

export interface RelayOptions {
  /**
   * Requests forwarded or waiting at once, over all clients: they share one
   * host connection, and the host answers RESOURCE_EXHAUSTED beyond its
   * per-connection limit.
   */
  maxInFlight?: number;
  /** How long a request waits for the host to come (back) before it fails UNAVAILABLE. */
  holdMs?: number;
  /** The first stream id to use on the host side (odd; default 1). */
  firstStreamId?: number;
  /**
   * Told, before ids up to `below` are used, that they will be: a relay
   * started after this one (the host's connection outlives relays) starts
   * there, so the host sees its ids grow on.
   */
  reserveStreamIds?: (below: number) => void;
  /**
   * Largest request a client may send (default the protocol's 4 MiB): a
   * larger one closes that client, where forwarding it would make the
   * host, whose cap is lower, drop the channel every client shares.
   */
  maxMessageSize?: number;
}

/** Stream ids reserved at a time (even, so the next relay's first id is odd too). */
export const STREAM_ID_BLOCK = 4096;

export const DEFAULT_MAX_IN_FLIGHT = 16;
export const DEFAULT_HOLD_MS = 1500;
const MAX_STREAM_ID = 0xffff_ffff;

interface Client {
  stream: Duplex;
  decoder: FrameDecoder;
  name: string;
}

interface Call {
  client: Client;
  /** The stream id the client chose; the host sees one of the relay's. */
  clientId: number;
  frame: Frame;
  /** While the call waits for the host. */
  holdTimer?: NodeJS.Timeout;
}

/**
 * Forwards ttrpc calls of many local clients (one per shim) over the one
 * channel to the host. Each client numbers its streams from 1, so every
 * request gets a stream id of the relay's own on the host side, and the
 * answer goes back to the client under the id it chose. The relay's ids
 * only grow, for as long as the relay lives: ttrpc servers refuse an id
 * that is not larger than the previous one on a connection.
 *
 * The host connection comes and goes (hostUp/hostDown); calls forwarded
 * when it goes fail UNAVAILABLE at once, new ones wait for it a while.
 */
export class Relay {
  private readonly maxInFlight: number;
  private readonly holdMs: number;
  private writeHost?: (frame: Buffer) => void;
  private hostDecoder = new FrameDecoder();
  /** Forwarded calls by the relay's stream id. */
  private readonly forwarded = new Map<number, Call>();
  private held: Call[] = [];
  private nextId: number;
  private reservedBelow: number;
  private readonly reserve?: (below: number) => void;
  private clientCount = 0;
  private readonly maxMessageSize?: number;

  constructor(opts: RelayOptions = {}) {
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.holdMs = opts.holdMs ?? DEFAULT_HOLD_MS;
    this.nextId = opts.firstStreamId ?? 1;
    this.reservedBelow = this.nextId;
    this.reserve = opts.reserveStreamIds;
    this.maxMessageSize = opts.maxMessageSize;
    if (!Number.isInteger(this.nextId) || this.nextId % 2 !== 1 || this.nextId > MAX_STREAM_ID) {
      throw new InvalidArgumentError(`first stream id ${this.nextId} is not an odd uint32`);
    }
  }

  get hostConnected(): boolean {
    return this.writeHost !== undefined;
  }

  /** Calls the host has not answered yet. */
  get busy(): boolean {
    return this.forwarded.size > 0;
  }

  /**
   * The next stream id of the relay's own on the host side (for the link's
   * probe too: a host connection sees them grow), or undefined when used up.
   */
  takeStreamId(): number | undefined {
    if (this.nextId > MAX_STREAM_ID) return undefined;
    if (this.reserve && this.nextId >= this.reservedBelow) {
      this.reservedBelow = this.nextId + STREAM_ID_BLOCK;
      this.reserve(this.reservedBelow);
    }
    const id = this.nextId;
    this.nextId += 2;
    return id;
  }

  /**
   * A host connection in step with this relay; waiting calls go now. Its
   * stream goes on where `decoder` (the link's, which framed the probe's
   * answer) left it, or starts at a frame boundary.
   */
  hostUp(write: (frame: Buffer) => void, decoder = new FrameDecoder()): void {
    this.writeHost = write;
    this.hostDecoder = decoder;
    log.info('relay: host backend connected');
    const held = this.held;
    this.held = [];
    for (const call of held) {
      clearTimeout(call.holdTimer);
      this.forward(call);
    }
  }

  /** The host connection is gone: what it had not answered never will be. */
  hostDown(reason: string): void {
    if (!this.writeHost) return;
    this.writeHost = undefined;
    log.warn(`relay: host backend gone: ${reason}`);
    for (const call of this.forwarded.values()) this.fail(call, StatusCode.UNAVAILABLE, `the host backend went away before answering: ${reason}`);
    this.forwarded.clear();
  }

  /** Bytes from the host. A stream that does not frame throws (FrameError): the caller resets the channel. */
  fromHost(chunk: Buffer): void {
    for (const frame of this.hostDecoder.push(chunk)) {
      const call = this.forwarded.get(frame.streamId);
      if (frame.type !== MessageType.Response || !call) {
        // Answers to calls of clients that left, or that failed when the host went away earlier.
        log.debug(`relay: dropping a ${MessageType[frame.type]} frame of the host on stream ${frame.streamId}`);
        continue;
      }
      this.forwarded.delete(frame.streamId);
      send(call.client, encodeFrame(call.clientId, MessageType.Response, frame.payload, frame.flags));
    }
  }

  /** Serves one local client connection until it closes. */
  addClient(stream: Duplex): void {
    const client: Client = { stream, decoder: new FrameDecoder(this.maxMessageSize), name: `client ${++this.clientCount}` };
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const frame of client.decoder.push(chunk)) this.fromClient(client, frame);
      } catch (err) {
        log.warn(`relay: ${client.name}: closing: ${errorMessage(err)}`);
        stream.destroy();
      }
    });
    stream.on('error', (err) => log.debug(`relay: ${client.name}: ${err.message}`));
    stream.on('close', () => this.forget(client));
  }

  private fromClient(client: Client, frame: Frame): void {
    // The backend's methods are unary: a client sends requests only, on odd ids as ttrpc clients do.
    if (frame.type !== MessageType.Request || frame.streamId % 2 !== 1) {
      throw new BadDataError(`unexpected ${MessageType[frame.type]} frame on stream ${frame.streamId}`);
    }
    const call: Call = { client, clientId: frame.streamId, frame };
    if (this.forwarded.size + this.held.length >= this.maxInFlight) {
      return this.fail(call, StatusCode.RESOURCE_EXHAUSTED, `more than ${this.maxInFlight} calls to the host backend at once`);
    }
    if (this.writeHost) return this.forward(call);
    call.holdTimer = setTimeout(() => {
      this.held = this.held.filter((c) => c !== call);
      this.fail(call, StatusCode.UNAVAILABLE, `no ovmigrate backend answers on the host (channel not connected for ${this.holdMs} ms)`);
    }, this.holdMs);
    this.held.push(call);
  }

  private forward(call: Call): void {
    const id = this.takeStreamId();
    if (id === undefined) return this.fail(call, StatusCode.RESOURCE_EXHAUSTED, 'the relay has used up its stream ids: restart it');
    this.forwarded.set(id, call);
    this.writeHost!(encodeFrame(id, MessageType.Request, call.frame.payload, call.frame.flags));
  }

  private fail(call: Call, code: StatusCode, message: string): void {
    send(call.client, encodeFrame(call.clientId, MessageType.Response, encodeResponse({ status: { code, message }, payload: Buffer.alloc(0) })));
  }

  /** A client left: its calls are dropped; the host's answers to them will find no one. */
  private forget(client: Client): void {
    for (const [id, call] of this.forwarded) if (call.client === client) this.forwarded.delete(id);
    for (const call of this.held) if (call.client === client) clearTimeout(call.holdTimer);
    this.held = this.held.filter((c) => c.client !== client);
  }
}

function send(client: Client, frame: Buffer): void {
  if (!client.stream.destroyed) client.stream.write(frame);
}
