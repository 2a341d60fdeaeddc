import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import { AlreadyExistsError, BadDataError, ExternalError, InvalidArgumentError, NotFoundError, TimeoutError } from '../../common/errors.js';
import {
  Flags,
  FrameDecoder,
  FrameError,
  HEADER_SIZE,
  MAX_MESSAGE_SIZE,
  MessageType,
  StatusCode,
  TtrpcClient,
  TtrpcError,
  TtrpcServer,
  TypedMethod,
  decodeRequest,
  decodeResponse,
  encodeFrame,
  encodeRequest,
  encodeResponse,
  statusOf,
  type CallContext,
  type Frame,
} from '../../common/ttrpc/index.js';

function header(length: number, streamId: number, type: number, flags = 0): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32BE(length, 0);
  h.writeUInt32BE(streamId, 4);
  h.writeUInt8(type, 8);
  h.writeUInt8(flags, 9);
  return h;
}

/** Asserts a promise rejects with a TtrpcError of this status. */
async function rejectsWith(promise: Promise<unknown>, status: StatusCode, message?: RegExp): Promise<TtrpcError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected ${StatusCode[status]}`),
    (err: unknown) => (caught = err),
  );
  assert.ok(caught instanceof TtrpcError, `not a TtrpcError: ${String(caught)}`);
  assert.equal(StatusCode[caught.status], StatusCode[status], caught.message);
  if (message) assert.match(caught.detail, message);
  return caught;
}

describe('ttrpc frames', () => {
  const stream = Buffer.concat([
    encodeFrame(1, MessageType.Request, Buffer.from('first request')),
    encodeFrame(3, MessageType.Request),
    encodeFrame(1, MessageType.Response, Buffer.alloc(300, 0x5a)),
    encodeFrame(5, MessageType.Data, Buffer.alloc(0), Flags.RemoteClosed | Flags.NoData),
  ]);

  it('lays out the 10-byte header as upstream does', () => {
    const frame = encodeFrame(3, MessageType.Request, Buffer.from([0xaa]), Flags.RemoteOpen);
    assert.equal(frame.toString('hex'), '00000001' + '00000003' + '01' + '02' + 'aa');
    assert.equal(encodeFrame(0xffff_ffff, MessageType.Data).toString('hex'), '00000000ffffffff0300');
  });

  it('decodes the same frames however the stream is split', () => {
    const whole = new FrameDecoder().push(stream);
    assert.equal(whole.length, 4);
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      assert.deepEqual(frames, whole, `split at ${cut}`);
    }
    const d = new FrameDecoder();
    const oneByOne = [...stream].flatMap((b) => d.push(Buffer.from([b])));
    assert.deepEqual(oneByOne, whole);
    assert.equal(d.buffered, 0);
  });

  it('keeps stream id, type, flags and payload', () => {
    const [req, empty, res, data] = new FrameDecoder().push(stream);
    assert.deepEqual([req.streamId, req.type, req.flags, req.payload.toString()], [1, MessageType.Request, 0, 'first request']);
    assert.deepEqual([empty.streamId, empty.payload.length], [3, 0]);
    assert.deepEqual([res.type, res.payload.length, res.payload[299]], [MessageType.Response, 300, 0x5a]);
    assert.deepEqual([data.type, data.flags], [MessageType.Data, Flags.RemoteClosed | Flags.NoData]);
  });

  it('takes a frame of exactly the maximum size', () => {
    const [frame] = new FrameDecoder().push(encodeFrame(7, MessageType.Response, Buffer.alloc(MAX_MESSAGE_SIZE, 1)));
    assert.equal(frame.payload.length, MAX_MESSAGE_SIZE);
  });

  it('rejects an oversized length from the header alone, and stays failed', () => {
    for (const length of [MAX_MESSAGE_SIZE + 1, 0xffff_ffff]) {
      const d = new FrameDecoder();
      // Only the header is pushed: the error cannot come from waiting for (or allocating) the payload.
      const oversize = (e: unknown): boolean => e instanceof FrameError && e instanceof BadDataError && e.kind === 'oversize' && e.streamId === 9;
      assert.throws(() => d.push(header(length, 9, MessageType.Request)), oversize);
      assert.equal(d.buffered, 0);
      assert.throws(() => d.push(encodeFrame(11, MessageType.Request)), FrameError);
    }
  });

  it('rejects an unknown message type', () => {
    for (const type of [0, 4, 200]) {
      const d = new FrameDecoder();
      assert.deepEqual(d.push(header(0, 1, type).subarray(0, 9)), []);
      assert.throws(() => d.push(header(0, 1, type).subarray(9)), (e: unknown) => e instanceof FrameError && e.kind === 'type');
    }
  });

  it('refuses to encode a payload over the limit, with upstream status', () => {
    const exhausted = (e: unknown): boolean => e instanceof TtrpcError && e.status === StatusCode.RESOURCE_EXHAUSTED;
    assert.throws(() => encodeFrame(1, MessageType.Request, Buffer.alloc(MAX_MESSAGE_SIZE + 1)), exhausted);
  });
});

describe('ttrpc messages', () => {
  it('round-trips a request, with a 64-bit timeout and repeated metadata', () => {
    const req = {
      service: 'containerd.task.v2.Task',
      method: 'Create',
      payload: Buffer.from([0, 1, 2, 0xff]),
      timeoutNano: 2n ** 62n + 1n,
      metadata: new Map([['containerd-namespace', ['default']], ['x', ['1', '2']]]),
    };
    assert.deepEqual(decodeRequest(encodeRequest(req)), req);
  });

  it('encodes the bytes protoc would for ttrpc.Request', () => {
    const metadata = new Map([['k', ['a', 'b']]]);
    const bytes = encodeRequest({ service: 's', method: 'M', payload: Buffer.from([1, 2]), timeoutNano: 5_000_000_000n, metadata });
    // service=1, method=2, payload=3, timeout_nano=4 (varint of 5e9), two KeyValue entries in field 5.
    assert.equal(bytes.toString('hex'), '0a0173' + '12014d' + '1a020102' + '2080e497d012' + '2a060a016b120161' + '2a060a016b120162');
  });

  it('lower-cases metadata keys it receives, as upstream MD lookups do', () => {
    const metadata = new Map([['Key', ['a']], ['key', ['b']]]);
    const bytes = encodeRequest({ service: 's', method: 'm', payload: Buffer.alloc(0), timeoutNano: 0n, metadata });
    assert.deepEqual(decodeRequest(bytes).metadata, new Map([['key', ['a', 'b']]]));
  });

  it('round-trips a response and its status', () => {
    const res = { status: { code: StatusCode.NOT_FOUND, message: 'no such container' }, payload: Buffer.from('x') };
    assert.deepEqual(decodeResponse(encodeResponse(res)), res);
    // Status is field 1 holding code=1 and message=2.
    assert.equal(encodeResponse({ status: { code: 5, message: 'no' }, payload: Buffer.alloc(0) }).toString('hex'), '0a06080512026e6f');
    // No status at all reads as OK.
    assert.deepEqual(decodeResponse(Buffer.alloc(0)), { status: { code: StatusCode.OK, message: '' }, payload: Buffer.alloc(0) });
  });

  it('rejects bytes that are not a request', () => {
    assert.throws(() => decodeRequest(Buffer.from([0x0a, 0x10, 0x41])), BadDataError);
  });
});

describe('ttrpc status mapping', () => {
  it('maps our error classes to status codes', () => {
    assert.equal(statusOf(new InvalidArgumentError('x')), StatusCode.INVALID_ARGUMENT);
    assert.equal(statusOf(new BadDataError('x')), StatusCode.INVALID_ARGUMENT);
    assert.equal(statusOf(new NotFoundError('x')), StatusCode.NOT_FOUND);
    assert.equal(statusOf(new TimeoutError('x')), StatusCode.DEADLINE_EXCEEDED);
    assert.equal(statusOf(new ExternalError('x')), StatusCode.INTERNAL);
    assert.equal(statusOf(new TtrpcError(StatusCode.ABORTED, 'x')), StatusCode.ABORTED);
    assert.equal(statusOf(Object.assign(new Error('x'), { code: 'ENOENT' })), StatusCode.NOT_FOUND);
    assert.equal(statusOf(new Error('x')), StatusCode.UNKNOWN);
    assert.equal(statusOf('a string'), StatusCode.UNKNOWN);
  });
});

/** A raw connection to a server, for frames our client would never send. */
class RawPeer {
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder();
  private waiter: (() => void) | undefined;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.frames.push(...this.decoder.push(chunk));
      this.waiter?.();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static connect(socketPath: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath, () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }

  async nextFrame(): Promise<Frame> {
    while (this.frames.length === 0) await new Promise<void>((resolve) => (this.waiter = resolve));
    return this.frames.shift()!;
  }
}

/** Handlers that finish only when the test says so. */
class Gates {
  private readonly waiting = new Map<string, () => void>();
  private onArrive: (() => void) | undefined;

  hold(key: string): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.set(key, resolve);
      this.onArrive?.();
    });
  }

  async arrived(count: number): Promise<void> {
    while (this.waiting.size < count) await new Promise<void>((resolve) => (this.onArrive = resolve));
  }

  release(key: string): void {
    const resolve = this.waiting.get(key);
    assert.ok(resolve, `no call waits on ${key}`);
    this.waiting.delete(key);
    resolve();
  }
}

describe('ttrpc client and server over a unix socket', () => {
  const SERVICE = 'ovmigrate.test.v1.Test';
  let dir: string;
  let socketPath: string;
  let server: TtrpcServer;
  let client: TtrpcClient;
  let gates: Gates;
  let aborted: Promise<unknown>;
  let onAbort: (reason: unknown) => void;

  function makeServer(opts?: { maxConcurrentRequests?: number }): TtrpcServer {
    const s = new TtrpcServer(opts);
    s.register(SERVICE, {
      Echo: async (payload) => payload,
      Metadata: async (_payload, ctx) => Buffer.from(JSON.stringify(Object.fromEntries(ctx.metadata))),
      NotFound: async () => {
        throw new NotFoundError('container c1 not found');
      },
      Crash: async () => {
        throw new Error('something broke');
      },
      Hold: async (payload, ctx) => {
        const abort = new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
        await Promise.race([gates.hold(payload.toString()), abort]);
        return payload;
      },
      WaitAbort: (_payload: Buffer, ctx: CallContext) =>
        new Promise<Buffer>((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            onAbort(ctx.signal.reason);
            reject(ctx.signal.reason);
          });
        }),
    });
    return s;
  }

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-ttrpc-'));
    socketPath = path.join(dir, 'ttrpc.sock');
    gates = new Gates();
    aborted = new Promise((resolve) => (onAbort = resolve));
    server = makeServer();
    await server.listen(socketPath);
    client = await TtrpcClient.connect(socketPath);
  });

  afterEach(async () => {
    client.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers a unary call', async () => {
    assert.equal((await client.call(SERVICE, 'Echo', Buffer.from('hello'))).toString(), 'hello');
    assert.equal((await client.call(SERVICE, 'Echo', Buffer.alloc(0))).length, 0);
  });

  it('hands the request metadata to the handler', async () => {
    const reply = await client.call(SERVICE, 'Metadata', Buffer.alloc(0), { metadata: { 'containerd-namespace': 'k8s.io', Multi: ['a', 'b'] } });
    assert.deepEqual(JSON.parse(reply.toString()), { 'containerd-namespace': ['k8s.io'], multi: ['a', 'b'] });
  });

  it('answers UNIMPLEMENTED for an unknown service or method', async () => {
    await rejectsWith(client.call(SERVICE, 'Nope', Buffer.alloc(0)), StatusCode.UNIMPLEMENTED, /method Nope/);
    await rejectsWith(client.call('no.such.Service', 'Echo', Buffer.alloc(0)), StatusCode.UNIMPLEMENTED, /service no\.such\.Service/);
  });

  it('maps a handler error to its status', async () => {
    await rejectsWith(client.call(SERVICE, 'NotFound', Buffer.alloc(0)), StatusCode.NOT_FOUND, /^container c1 not found$/);
    await rejectsWith(client.call(SERVICE, 'Crash', Buffer.alloc(0)), StatusCode.UNKNOWN, /something broke/);
  });

  it('aborts the handler at the deadline and rejects DEADLINE_EXCEEDED', async () => {
    await rejectsWith(client.call(SERVICE, 'WaitAbort', Buffer.alloc(0), { timeoutMs: 50 }), StatusCode.DEADLINE_EXCEEDED);
    assert.ok((await aborted) instanceof TimeoutError);
    // The connection stays usable.
    assert.equal((await client.call(SERVICE, 'Echo', Buffer.from('after'))).toString(), 'after');
  });

  it('sends timeout_nano, and the server itself answers DEADLINE_EXCEEDED', async () => {
    const peer = await RawPeer.connect(socketPath);
    const req = encodeRequest({ service: SERVICE, method: 'WaitAbort', payload: Buffer.alloc(0), timeoutNano: 30_000_000n, metadata: new Map() });
    peer.socket.write(encodeFrame(1, MessageType.Request, req));
    const frame = await peer.nextFrame();
    assert.deepEqual([frame.streamId, frame.type], [1, MessageType.Response]);
    assert.equal(decodeResponse(frame.payload).status.code, StatusCode.DEADLINE_EXCEEDED);
    peer.socket.destroy();
  });

  it('rejects CANCELLED when the caller aborts', async () => {
    const controller = new AbortController();
    const call = client.call(SERVICE, 'Hold', Buffer.from('cancel-me'), { signal: controller.signal });
    await gates.arrived(1);
    controller.abort();
    await rejectsWith(call, StatusCode.CANCELLED);
    gates.release('cancel-me');
    await rejectsWith(client.call(SERVICE, 'Echo', Buffer.alloc(0), { signal: controller.signal }), StatusCode.CANCELLED);
    assert.equal((await client.call(SERVICE, 'Echo', Buffer.from('still'))).toString(), 'still');
  });

  it('answers many concurrent calls as they finish, out of order', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `call-${i}`);
    const finished: string[] = [];
    const calls = keys.map((key) => client.call(SERVICE, 'Hold', Buffer.from(key)).then((reply) => finished.push(reply.toString())));
    await gates.arrived(keys.length);
    for (const key of [...keys].reverse()) {
      const before = finished.length;
      gates.release(key);
      while (finished.length === before) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(calls);
    assert.deepEqual(finished, [...keys].reverse());
  });

  it('bounds the requests in flight on one connection', async () => {
    client.close();
    await server.close();
    server = makeServer({ maxConcurrentRequests: 3 });
    await server.listen(socketPath);
    client = await TtrpcClient.connect(socketPath);
    const held = ['a', 'b', 'c'].map((key) => client.call(SERVICE, 'Hold', Buffer.from(key)));
    await gates.arrived(3);
    await rejectsWith(client.call(SERVICE, 'Echo', Buffer.alloc(0)), StatusCode.RESOURCE_EXHAUSTED);
    for (const key of ['a', 'b', 'c']) gates.release(key);
    await Promise.all(held);
    assert.equal((await client.call(SERVICE, 'Echo', Buffer.from('ok'))).toString(), 'ok');
  });

  it('rejects pending calls when the connection closes mid-call', async () => {
    const pending = [client.call(SERVICE, 'Hold', Buffer.from('x')), client.call(SERVICE, 'Hold', Buffer.from('y'))];
    await gates.arrived(2);
    await server.close();
    for (const call of pending) await rejectsWith(call, StatusCode.UNAVAILABLE);
    assert.ok(client.closed);
    await rejectsWith(client.call(SERVICE, 'Echo', Buffer.alloc(0)), StatusCode.UNAVAILABLE);
  });

  it('rejects pending calls CANCELLED on client close, and aborts the handler', async () => {
    const call = client.call(SERVICE, 'WaitAbort', Buffer.alloc(0));
    const second = await TtrpcClient.connect(socketPath);
    // Wait for the first call to reach the server through a round trip on the same connection.
    await client.call(SERVICE, 'Echo', Buffer.alloc(0));
    client.close();
    await rejectsWith(call, StatusCode.CANCELLED, /client closed/);
    const reason = await aborted;
    assert.ok(reason instanceof TtrpcError && reason.status === StatusCode.CANCELLED);
    assert.equal((await second.call(SERVICE, 'Echo', Buffer.from('other'))).toString(), 'other');
    second.close();
  });

  it('closes a connection that sends garbage, and keeps serving others', async () => {
    for (const garbage of [header(0, 1, 9), header(MAX_MESSAGE_SIZE + 1, 1, MessageType.Request), encodeFrame(1, MessageType.Response)]) {
      const peer = await RawPeer.connect(socketPath);
      peer.socket.write(garbage);
      await peer.closed;
      assert.equal((await client.call(SERVICE, 'Echo', Buffer.from('alive'))).toString(), 'alive');
    }
  });

  it('answers bad stream ids on the same stream, as upstream does', async () => {
    const peer = await RawPeer.connect(socketPath);
    const echo = encodeRequest({ service: SERVICE, method: 'Echo', payload: Buffer.from('e'), timeoutNano: 0n, metadata: new Map() });
    peer.socket.write(encodeFrame(2, MessageType.Request, echo));
    peer.socket.write(encodeFrame(5, MessageType.Request, echo));
    peer.socket.write(encodeFrame(3, MessageType.Request, echo));
    peer.socket.write(encodeFrame(7, MessageType.Request, Buffer.from([0xff])));
    const answers = [await peer.nextFrame(), await peer.nextFrame(), await peer.nextFrame(), await peer.nextFrame()];
    const byStream = new Map(answers.map((f) => [f.streamId, decodeResponse(f.payload)]));
    assert.equal(byStream.get(2)?.status.code, StatusCode.INVALID_ARGUMENT);
    assert.equal(byStream.get(5)?.payload.toString(), 'e');
    assert.equal(byStream.get(3)?.status.code, StatusCode.INVALID_ARGUMENT);
    assert.equal(byStream.get(7)?.status.code, StatusCode.INVALID_ARGUMENT);
    peer.socket.destroy();
  });

  it('shuts down after answering the calls in flight', async () => {
    const held = client.call(SERVICE, 'Hold', Buffer.from('last'));
    await gates.arrived(1);
    let down = false;
    const shutdown = server.shutdown().then(() => (down = true));
    await rejectsWith(client.call(SERVICE, 'Echo', Buffer.alloc(0)), StatusCode.UNAVAILABLE, /shutting down/);
    assert.equal(down, false);
    gates.release('last');
    assert.equal((await held).toString(), 'last');
    await shutdown;
    assert.ok(!fs.existsSync(socketPath));
  });

  it('refuses to listen on a path in use', async () => {
    await assert.rejects(new TtrpcServer().listen(socketPath), AlreadyExistsError);
  });

  it('calls typed methods with protobufjs types and bigint fields', async () => {
    const root = protobuf.parse(`
      syntax = "proto3";
      package ovmigrate.test.v1;
      message PidRequest { string id = 1; uint64 addr = 2; }
      message PidResponse { uint32 pid = 1; uint64 addr = 2; bytes data = 3; }
    `).root;
    const Pid = new TypedMethod<{ id: string; addr: bigint }, { pid: number; addr: bigint; data: Buffer }>(
      'ovmigrate.test.v1.Typed',
      'Pid',
      root.lookupType('PidRequest'),
      root.lookupType('PidResponse'),
    );
    server.register('ovmigrate.test.v1.Typed', {
      Pid: Pid.implement(async (req) => {
        if (!req.id) throw new InvalidArgumentError('id is required');
        return { pid: 42, addr: req.addr + 1n, data: Buffer.from(req.id) };
      }),
    });
    const reply = await Pid.call(client, { id: 'c1', addr: 0xffff_8880_0000_0000n });
    assert.deepEqual(reply, { pid: 42, addr: 0xffff_8880_0000_0001n, data: Buffer.from('c1') });
    await rejectsWith(Pid.call(client, { id: '', addr: 0n }), StatusCode.INVALID_ARGUMENT, /id is required/);
  });
});
