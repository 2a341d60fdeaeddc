import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { OvmError } from '../../common/errors.js';
import { FrameSplitter } from '../../common/frames.js';
import {
  FrameDecoder,
  FrameError,
  HEADER_SIZE,
  MessageType,
  StatusCode,
  TtrpcServer,
  decodeRequest,
  decodeResponse,
  encodeFrame,
  encodeRequest,
  encodeResponse,
  metadataSize,
  type Frame,
} from '../../common/ttrpc/index.js';
import { duplexPair } from './helpers/duplex-pair.js';
import { FUZZ_CASES, Rng, forEachCase } from '../fuzz/harness.js';
import { quietLogs } from './helpers/quiet-logs.js';

const SERVICE = 'ovmigrate.test.v1.Test';
/** A small cap keeps cases fast; the decoder's behaviour at the cap is what matters. */
const MAX = 64 << 10;

/** A plausible request payload: a real encoding with random fields. */
function randomRequest(rng: Rng): Buffer {
  const metadata = new Map<string, string[]>();
  for (let i = rng.int(4); i > 0; i--) metadata.set(`k${rng.int(5)}`, [String(rng.int(100))]);
  return encodeRequest({
    service: rng.chance(0.8) ? SERVICE : `svc${rng.int(3)}`,
    method: rng.pick(['Echo', 'Fail', 'Slow', 'Nope']),
    payload: rng.bytes(rng.int(rng.chance(0.1) ? 8192 : 64)),
    timeoutNano: rng.chance(0.5) ? 0n : BigInt(rng.int(2_000_000)) - 1000n,
    metadata,
  });
}

/** A header with each field possibly replaced by a hostile value. */
function header(rng: Rng, length: number, streamId: number, type: number, flags: number): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32BE(rng.chance(0.1) ? rng.pick([0xffff_ffff, MAX + 1, 0x8000_0000, rng.next()]) : length, 0);
  h.writeUInt32BE(rng.chance(0.1) ? rng.pick([0, 2, 0xffff_ffff, rng.next()]) : streamId, 4);
  h.writeUInt8(rng.chance(0.1) ? rng.int(256) : type, 8);
  h.writeUInt8(rng.chance(0.2) ? rng.int(256) : flags, 9);
  return h;
}

/** A byte stream a hostile peer might send: frames, mutated frames, garbage. */
function hostileStream(rng: Rng, nextId: () => number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 1 + rng.int(6); i > 0; i--) {
    const kind = rng.int(10);
    if (kind < 5) {
      const payload = randomRequest(rng);
      parts.push(header(rng, payload.length, nextId(), MessageType.Request, 0), rng.chance(0.2) ? rng.mutate(payload) : payload);
    } else if (kind < 7) {
      const payload = rng.bytes(rng.int(200));
      parts.push(header(rng, payload.length, nextId(), rng.pick([1, 2, 3]), rng.int(8)), payload);
    } else if (kind < 8) {
      parts.push(rng.mutate(encodeFrame(nextId(), MessageType.Request, randomRequest(rng))));
    } else {
      parts.push(rng.bytes(rng.int(64)));
    }
  }
  return Buffer.concat(parts);
}

/** Decodes `chunks` in order: the frames, and the error that ended them if any. */
function decodeAll(chunks: Buffer[]): { frames: Frame[]; error?: unknown; maxBuffered: number } {
  const decoder = new FrameDecoder(MAX);
  const frames: Frame[] = [];
  let maxBuffered = 0;
  for (const chunk of chunks) {
    try {
      frames.push(...decoder.push(chunk));
    } catch (error) {
      // A failed decoder stays failed, with the same error.
      assert.throws(() => decoder.push(Buffer.alloc(1)), (again: unknown) => again === error);
      assert.equal(decoder.buffered, 0);
      return { frames, error, maxBuffered };
    }
    maxBuffered = Math.max(maxBuffered, decoder.buffered);
  }
  return { frames, maxBuffered };
}

describe(`fuzz: ttrpc decoders (${FUZZ_CASES} cases a test)`, () => {
  quietLogs();

  it('frames split anywhere decode as the whole does, or fail typed, never buffering past one frame', async () => {
    await forEachCase((rng) => {
      let id = 1;
      const stream = hostileStream(rng, () => (id += 2));
      const whole = decodeAll([stream]);
      const split = decodeAll(rng.split(stream, 16));
      if (whole.error !== undefined) assert.ok(whole.error instanceof FrameError, String(whole.error));
      assert.equal(split.error === undefined, whole.error === undefined);
      // A push that fails returns none of the frames before the bad header in its chunk: smaller chunks keep more.
      if (whole.error === undefined) assert.deepEqual(split.frames, whole.frames);
      else assert.deepEqual(split.frames.slice(0, whole.frames.length), whole.frames);
      assert.ok(split.maxBuffered < HEADER_SIZE + MAX, `buffered ${split.maxBuffered}`);
      for (const f of split.frames) assert.ok(f.payload.length <= MAX && f.type in MessageType);
    });
  });

  it('the generic splitter, any header size: whole and split agree, errors stay, buffering stays under a frame', async () => {
    await forEachCase((rng) => {
      const headerSize = 1 + rng.int(12);
      const cap = rng.int(300);
      const length = (h: Buffer): number => {
        const n = h.readUInt8(0) * (headerSize > 1 ? h.readUInt8(1) + 1 : 1);
        if (n > cap) throw new FrameError('oversize', 0, `${n} > ${cap}`);
        return n;
      };
      const stream = rng.bytes(rng.int(2000));
      const run = (chunks: Buffer[]) => {
        const splitter = new FrameSplitter(headerSize, length);
        const frames: string[] = [];
        let max = 0;
        for (const chunk of chunks) {
          try {
            for (const f of splitter.push(chunk)) frames.push(`${f.header.toString('hex')}:${f.payload.toString('hex')}`);
          } catch (err) {
            assert.ok(err instanceof FrameError);
            assert.throws(() => splitter.push(Buffer.alloc(0)), (again: unknown) => again === err);
            return { frames, failed: true, max };
          }
          max = Math.max(max, splitter.buffered);
        }
        return { frames, failed: false, max };
      };
      const whole = run([stream]);
      const split = run(rng.split(stream, 20));
      assert.equal(split.failed, whole.failed);
      assert.deepEqual(split.frames.slice(0, whole.frames.length), whole.frames);
      if (!whole.failed) assert.equal(split.frames.length, whole.frames.length);
      assert.ok(split.max < headerSize + cap);
    });
  });

  it('a huge declared length fails at its header, before any payload is kept', async () => {
    await forEachCase((rng) => {
      const decoder = new FrameDecoder(MAX);
      const h = Buffer.alloc(HEADER_SIZE);
      h.writeUInt32BE(MAX + 1 + rng.int(0xffff_ffff - MAX), 0);
      h.writeUInt32BE(rng.next(), 4);
      h.writeUInt8(rng.pick([1, 2, 3]), 8);
      const chunks = rng.split(Buffer.concat([h, rng.bytes(rng.int(100))]), 6);
      let failed = false;
      let fed = 0;
      for (const chunk of chunks) {
        fed += chunk.length;
        try {
          decoder.push(chunk);
          assert.ok(fed < HEADER_SIZE, 'a whole oversized header was taken');
        } catch (err) {
          assert.ok(err instanceof FrameError && err.kind === 'oversize', String(err));
          failed = true;
          break;
        }
      }
      assert.ok(failed);
    });
  });

  it('garbage and mutated protobuf payloads decode or fail typed; metadata counts no more entries than its bytes hold', async () => {
    await forEachCase((rng) => {
      const valid = rng.chance(0.5)
        ? randomRequest(rng)
        : encodeResponse({ status: { code: rng.int(17), message: 'x'.repeat(rng.int(40)) }, payload: rng.bytes(rng.int(100)) });
      const bytes = rng.chance(0.3) ? rng.bytes(rng.int(300)) : rng.mutate(valid);
      for (const decode of [decodeRequest, decodeResponse]) {
        try {
          const out = decode(bytes);
          assert.ok(Buffer.isBuffer(out.payload));
        } catch (err) {
          assert.ok(err instanceof OvmError, `not typed: ${String(err)}`);
        }
      }
      const md = metadataSize(bytes);
      // An entry is a tag and a length at least: the count's loop took two bytes or more a turn.
      assert.ok(md.entries >= 0 && md.entries * 2 <= bytes.length && md.bytes <= bytes.length * 2 ** 32);
    });
  });

  it('a server connection answers or closes, whatever it is sent, and serves the next one', async function () {
    this.timeout(Math.max(60_000, FUZZ_CASES * 100));
    const server = new TtrpcServer({ maxMessageSize: MAX, maxMetadataEntries: 3, maxMetadataBytes: 200, maxConcurrentRequests: 4 });
    server.register(SERVICE, {
      Echo: async (payload) => payload,
      Fail: async () => {
        throw new Error('handler failed');
      },
      Slow: async (payload, ctx) => {
        await tick();
        if (ctx.signal.aborted) throw ctx.signal.reason;
        return payload;
      },
    });
    await forEachCase(async (rng) => {
      const [client, end] = duplexPair();
      const served = server.serve(end);
      const decoder = new FrameDecoder();
      const answers: Frame[] = [];
      client.on('data', (chunk: Buffer) => answers.push(...decoder.push(chunk)));
      client.on('error', () => undefined);
      let id = -1;
      const stream = hostileStream(rng, () => {
        id += rng.chance(0.9) ? 2 : rng.pick([0, 1, -2]);
        return id >>> 0;
      });
      // The frames the server can see: what a decoder fed a byte at a time yields before it fails.
      const sent = new Set(decodeAll([...stream].map((b) => Buffer.from([b]))).frames.map((f) => f.streamId));
      for (const chunk of rng.split(stream, 12)) {
        if (client.destroyed) break;
        client.write(chunk);
        if (rng.chance(0.3)) await tick();
      }
      for (let i = 0; i < 5; i++) await tick();
      client.end();
      await served;
      for (const a of answers) {
        assert.equal(a.type, MessageType.Response);
        assert.ok(sent.has(a.streamId), `answer on stream ${a.streamId} that was never used`);
        const res = decodeResponse(a.payload);
        assert.ok(res.status.code in StatusCode);
      }
    });
    // After all that, a well-behaved client is served.
    const [client, end] = duplexPair();
    void server.serve(end);
    const decoder = new FrameDecoder();
    const answer = new Promise<Frame>((resolve) => client.on('data', (chunk: Buffer) => decoder.push(chunk).forEach(resolve)));
    client.write(encodeFrame(1, MessageType.Request, encodeRequest({ service: SERVICE, method: 'Echo', payload: Buffer.from('ok'), timeoutNano: 0n, metadata: new Map() })));
    assert.equal(decodeResponse((await answer).payload).payload.toString(), 'ok');
    await server.close();
  });
});
