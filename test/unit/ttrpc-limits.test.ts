import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { InvalidArgumentError } from '../../common/errors.js';
import {
  FrameDecoder,
  HEADER_SIZE,
  MAX_MESSAGE_SIZE,
  MessageType,
  StatusCode,
  TtrpcServer,
  decodeResponse,
  encodeFrame,
  encodeRequest,
  metadataSize,
  type Frame,
  type Metadata,
} from '../../common/ttrpc/index.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { duplexPair } from './helpers/duplex-pair.js';
import { FakeClock } from './helpers/fake-clock.js';

const SERVICE = 'ovmigrate.test.v1.Test';

/** A peer speaking raw frames to a server over an in-process stream. */
class Peer {
  readonly frames: Frame[] = [];
  readonly served: Promise<void>;
  readonly end: Duplex;
  closed = false;
  private readonly decoder = new FrameDecoder();
  private waiter?: () => void;

  constructor(server: TtrpcServer) {
    const [ours, theirs] = duplexPair();
    this.end = ours;
    ours.on('data', (chunk: Buffer) => {
      this.frames.push(...this.decoder.push(chunk));
      this.waiter?.();
    });
    ours.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    this.served = server.serve(theirs);
  }

  request(id: number, payload: Buffer, metadata: Metadata = new Map()): void {
    this.end.write(encodeFrame(id, MessageType.Request, encodeRequest({ service: SERVICE, method: 'Echo', payload, timeoutNano: 0n, metadata })));
  }

  async next(): Promise<Frame> {
    while (this.frames.length === 0) {
      if (this.closed) assert.fail('connection closed instead of answering');
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    return this.frames.shift()!;
  }
}

function echoServer(opts: ConstructorParameters<typeof TtrpcServer>[0] = {}): TtrpcServer {
  const server = new TtrpcServer(opts);
  server.register(SERVICE, { Echo: async (payload) => payload });
  return server;
}

describe('ttrpc server limits', () => {
  it('caps frames per server: a header over the cap closes the connection before its payload', async () => {
    const server = echoServer({ maxMessageSize: 1 << 20 });
    const ok = new Peer(server);
    ok.request(1, Buffer.alloc((1 << 20) - 1024, 7));
    assert.equal(decodeResponse((await ok.next()).payload).payload.length, (1 << 20) - 1024);
    const big = new Peer(server);
    const header = Buffer.alloc(HEADER_SIZE);
    header.writeUInt32BE((1 << 20) + 1, 0);
    header.writeUInt32BE(1, 4);
    header.writeUInt8(MessageType.Request, 8);
    big.end.write(header);
    await big.served;
    assert.ok(big.closed);
    await server.close();
  });

  it('defaults to the protocol maximum, and refuses a cap above it or below zero', () => {
    assertOvmError(() => new TtrpcServer({ maxMessageSize: MAX_MESSAGE_SIZE + 1 }), InvalidArgumentError);
    assertOvmError(() => new TtrpcServer({ maxMetadataEntries: -1 }), InvalidArgumentError);
    assertOvmError(() => new TtrpcServer({ partialFrameTimeoutMs: 1.5 }), InvalidArgumentError);
    assertOvmError(() => new TtrpcServer({ maxConcurrentRequests: 0 }), InvalidArgumentError);
  });

  it('answers RESOURCE_EXHAUSTED to too many metadata entries or bytes, and keeps the connection', async () => {
    const server = echoServer({ maxMetadataEntries: 4, maxMetadataBytes: 100 });
    const peer = new Peer(server);
    peer.request(1, Buffer.from('a'), new Map([['k', ['1', '2', '3', '4', '5']]]));
    assert.equal(decodeResponse((await peer.next()).payload).status.code, StatusCode.RESOURCE_EXHAUSTED);
    peer.request(3, Buffer.from('b'), new Map([['k', ['x'.repeat(101)]]]));
    assert.equal(decodeResponse((await peer.next()).payload).status.code, StatusCode.RESOURCE_EXHAUSTED);
    peer.request(5, Buffer.from('c'), new Map([['k', ['1', '2', '3', '4']]]));
    const answer = decodeResponse((await peer.next()).payload);
    assert.deepEqual([answer.status.code, answer.payload.toString()], [StatusCode.OK, 'c']);
    await server.close();
  });

  it('counts metadata from the wire, and counts nothing in bytes that do not parse', () => {
    const md: Metadata = new Map([['containerd-namespace', ['k8s.io']], ['a', ['1', '2']]]);
    const bytes = encodeRequest({ service: SERVICE, method: 'Echo', payload: Buffer.alloc(10), timeoutNano: 5n, metadata: md });
    assert.deepEqual(metadataSize(bytes), { entries: 3, bytes: 2 + 20 + 2 + 6 + (2 + 1 + 2 + 1) * 2 });
    assert.deepEqual(metadataSize(Buffer.from([0x2a, 0x80])), { entries: 0, bytes: 0 });
  });

  it('closes a connection that stops in the middle of a frame', async () => {
    // The server's own timer decides, on a clock the test moves: no bound on the wall clock.
    const clock = new FakeClock().install();
    try {
      const server = echoServer({ partialFrameTimeoutMs: 500 });
      const peer = new Peer(server);
      const frame = encodeFrame(1, MessageType.Request, encodeRequest({ service: SERVICE, method: 'Echo', payload: Buffer.from('x'), timeoutNano: 0n, metadata: new Map() }));
      // Bytes that keep coming, slower than the timeout in all but faster between chunks, keep it open.
      for (let i = 0; i < frame.length - 1; i++) {
        peer.end.write(frame.subarray(i, i + 1));
        await clock.tick(499);
      }
      assert.equal(peer.closed, false);
      peer.end.write(frame.subarray(frame.length - 1));
      assert.equal(decodeResponse((await peer.next()).payload).payload.toString(), 'x');
      // Idle between whole frames is fine.
      await clock.tick(60_000);
      assert.equal(peer.closed, false);
      peer.end.write(frame.subarray(0, 3));
      await clock.tick(499);
      assert.equal(peer.closed, false);
      await clock.tick(1);
      await peer.served;
      assert.ok(peer.closed);
      await server.close();
    } finally {
      clock.uninstall();
    }
  });
});
