import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import {
  FrameDecoder,
  FrameError,
  MessageType,
  StatusCode,
  decodeResponse,
  encodeFrame,
  encodeRequest,
  encodeResponse,
  type Frame,
} from '../../common/ttrpc/index.js';
import { Relay } from '../../shim/channel/relay.js';
import { duplexPair } from './helpers/duplex-pair.js';
import { FUZZ_CASES, Rng, forEachCase } from '../fuzz/harness.js';
import { quietLogs } from './helpers/quiet-logs.js';

const MAX_IN_FLIGHT = 4;

/** One local client of the relay: what it asked and what it was answered. */
class Client {
  readonly answers: Frame[] = [];
  private readonly sent: Buffer[] = [];
  readonly end: Duplex;
  private readonly decoder = new FrameDecoder();
  private nextId = 1;

  constructor(relay: Relay) {
    const [ours, theirs] = duplexPair();
    this.end = ours;
    ours.on('data', (chunk: Buffer) => this.answers.push(...this.decoder.push(chunk)));
    ours.on('error', () => undefined);
    relay.addClient(theirs);
  }

  /** A request, well formed or not, cut at random points. */
  send(rng: Rng): void {
    const id = this.nextId;
    this.nextId += 2;
    const payload = encodeRequest({ service: 's', method: 'm', payload: rng.bytes(rng.int(100)), timeoutNano: 0n, metadata: new Map() });
    let frame = encodeFrame(id, MessageType.Request, payload, rng.int(8));
    if (rng.chance(0.1)) frame = rng.mutate(frame);
    else if (rng.chance(0.05)) frame = encodeFrame(rng.chance(0.5) ? id + 1 : id, rng.pick([2, 3]), payload);
    for (const chunk of rng.split(frame, 4)) {
      if (this.end.destroyed) return;
      this.sent.push(chunk);
      this.end.write(chunk);
    }
  }

  /**
   * Requests the relay took, by stream id: the frames of what was sent, a
   * byte at a time, up to the first that is no request on an odd id or
   * does not frame (the relay drops the client there).
   */
  asked(): Map<number, number> {
    const decoder = new FrameDecoder();
    const asked = new Map<number, number>();
    try {
      for (const byte of Buffer.concat(this.sent)) {
        for (const f of decoder.push(Buffer.from([byte]))) {
          if (f.type !== MessageType.Request || f.streamId % 2 !== 1) return asked;
          asked.set(f.streamId, (asked.get(f.streamId) ?? 0) + 1);
        }
      }
    } catch {
      // Where the relay stopped reading.
    }
    return asked;
  }
}

/** The host side as the relay sees it: the frames it was sent, and hostile answers. */
class Host {
  readonly requests: Frame[] = [];
  private decoder = new FrameDecoder();

  take(frame: Buffer): void {
    this.requests.push(...this.decoder.push(frame));
  }

  /** Bytes answering some of the requests seen, with ids, types, flags and lengths sometimes wrong. */
  answer(rng: Rng): Buffer {
    const parts: Buffer[] = [];
    for (let i = rng.int(4); i > 0; i--) {
      const asked = this.requests.length ? rng.pick(this.requests).streamId : 1;
      const id = rng.chance(0.8) ? asked : rng.pick([asked + 2, asked + 1, 0, rng.next()]);
      const body = rng.chance(0.8) ? encodeResponse({ status: { code: rng.int(17), message: '' }, payload: rng.bytes(rng.int(50)) }) : rng.bytes(rng.int(50));
      const frame = encodeFrame(id, rng.chance(0.9) ? MessageType.Response : rng.pick([1, 3]), body, rng.int(256));
      if (rng.chance(0.05)) frame.writeUInt32BE(rng.chance(0.5) ? 0xffff_ffff : rng.next(), 0);
      if (rng.chance(0.05)) frame.writeUInt8(rng.int(256), 8);
      parts.push(frame);
    }
    if (rng.chance(0.05)) parts.push(rng.bytes(rng.int(40)));
    return Buffer.concat(parts);
  }

  reset(): void {
    this.decoder = new FrameDecoder();
  }
}

describe(`fuzz: relay stream remapping (${FUZZ_CASES} cases)`, () => {
  quietLogs();

  it('answers each client at most once, on ids it asked, with the host seeing ids only grow', async function () {
    this.timeout(Math.max(60_000, FUZZ_CASES * 100));
    await forEachCase(async (rng) => {
      const relay = new Relay({ maxInFlight: MAX_IN_FLIGHT, holdMs: 1 + rng.int(5) });
      const host = new Host();
      const connect = (): void => relay.hostUp((frame) => host.take(frame));
      if (rng.chance(0.7)) connect();
      const clients = Array.from({ length: 1 + rng.int(3) }, () => new Client(relay));
      for (let step = 0; step < 20; step++) {
        const action = rng.int(10);
        if (action < 4) rng.pick(clients).send(rng);
        else if (action < 7 && relay.hostConnected) {
          for (const chunk of rng.split(host.answer(rng), 5)) {
            try {
              relay.fromHost(chunk);
            } catch (err) {
              // The link resets the channel on a stream that does not frame.
              assert.ok(err instanceof FrameError, String(err));
              relay.hostDown('reset');
              host.reset();
              break;
            }
          }
        } else if (action < 8) {
          if (relay.hostConnected) relay.hostDown('gone');
          else {
            host.reset();
            connect();
          }
        } else if (action < 9) rng.pick(clients).end.destroy();
        await tick();
      }
      // Calls still held fail when their hold ends; then each client is done.
      if (!relay.hostConnected) await new Promise((resolve) => setTimeout(resolve, 8));
      for (const c of clients) c.end.destroy();
      await tick();

      const ids = host.requests.map((f) => f.streamId);
      ids.forEach((id, i) => {
        assert.equal(id % 2, 1, `host saw even stream id ${id}`);
        if (i) assert.ok(id > ids[i - 1], `host saw stream id ${id} after ${ids[i - 1]}`);
      });
      for (const f of host.requests) assert.equal(f.type, MessageType.Request);
      for (const c of clients) {
        const asked = c.asked();
        for (const a of c.answers) {
          assert.equal(a.type, MessageType.Response);
          const left = asked.get(a.streamId) ?? 0;
          assert.ok(left > 0, `client answered on stream ${a.streamId} more often than it asked`);
          asked.set(a.streamId, left - 1);
        }
      }
      assert.equal(relay.busy && !relay.hostConnected, false, 'calls left forwarded to a host that is gone');
    });
  });

  it('closes a client whose request is over its cap, and keeps the host connection', async () => {
    const relay = new Relay({ maxMessageSize: 1000 });
    const host = new Host();
    relay.hostUp((frame) => host.take(frame));
    const [big, bigEnd] = duplexPair();
    relay.addClient(bigEnd);
    const closed = new Promise((resolve) => big.once('close', resolve));
    big.write(encodeFrame(1, MessageType.Request, Buffer.alloc(1001)));
    await closed;
    const small = new Client(relay);
    small.send(new Rng(1));
    await tick();
    assert.equal(host.requests.length, 1);
    assert.ok(relay.hostConnected);
    small.end.destroy();
  });

  it('relay failures it makes itself are well-formed responses', async () => {
    await forEachCase(async (rng) => {
      const relay = new Relay({ maxInFlight: 1, holdMs: 1 });
      const client = new Client(relay);
      for (let i = 0; i < 3; i++) client.send(rng);
      await new Promise((resolve) => setTimeout(resolve, 5));
      for (const a of client.answers) {
        const res = decodeResponse(a.payload);
        assert.ok([StatusCode.UNAVAILABLE, StatusCode.RESOURCE_EXHAUSTED].includes(res.status.code), String(res.status.code));
      }
      client.end.destroy();
    }, Math.min(FUZZ_CASES, 50));
  });
});
