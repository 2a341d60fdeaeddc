import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { FailedPreconditionError } from '../../common/errors.js';
import { CriProxyRig, criProxyRig } from './helpers/cri-proxy-rig.js';
import { quietLogs } from './helpers/quiet-logs.js';
import { CRI_METHODS, CriProxy, MAX_CRI_MESSAGE, Upstream, frameMessage, methodPath, setString, getString, type Intercepts } from '../../shim/cri/index.js';

const raw = (b: Buffer): Buffer => b;
const VERSION = '/runtime.v1.RuntimeService/Version';
const STATUS = '/runtime.v1.RuntimeService/ContainerStatus';
const EXEC_SYNC = '/runtime.v1.RuntimeService/ExecSync';
const EVENTS = '/runtime.v1.RuntimeService/GetContainerEvents';
const CHECKPOINT = '/runtime.v1.RuntimeService/CheckpointContainer';
const STOP = '/runtime.v1.RuntimeService/StopContainer';

/** What the fake containerd saw of each call. */
interface Seen {
  request: Buffer;
  metadata: grpc.Metadata;
  deadline: grpc.Deadline;
  cancelled: Promise<void>;
}

/** A fake containerd CRI: raw handlers on a unix socket, recording what reached it. */
async function fakeContainerd(socket: string, seen: Map<string, Seen>): Promise<grpc.Server> {
  const server = new grpc.Server();
  const record = (path: string, call: grpc.ServerUnaryCall<Buffer, Buffer> | grpc.ServerWritableStream<Buffer, Buffer>) => {
    seen.set(path, { request: call.request, metadata: call.metadata, deadline: call.getDeadline(), cancelled: new Promise((r) => call.on('cancelled', () => r())) });
  };
  server.register(VERSION, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    record(VERSION, call);
    const headers = new grpc.Metadata();
    headers.set('x-header', 'h');
    call.sendMetadata(headers);
    const trailers = new grpc.Metadata();
    trailers.set('x-trailer', 't');
    trailers.set('x-bin', Buffer.from([0, 1, 2, 255]));
    cb(null, Buffer.concat([Buffer.from('answer:'), call.request]), trailers);
  }, raw, raw, 'unary');
  server.register(STATUS, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    record(STATUS, call);
    const trailers = new grpc.Metadata();
    trailers.set('x-why', 'missing');
    cb({ code: grpc.status.NOT_FOUND, details: 'an error occurred when try to find container "nope": not found', metadata: trailers });
  }, raw, raw, 'unary');
  server.register(EXEC_SYNC, (call: grpc.ServerUnaryCall<Buffer, Buffer>) => record(EXEC_SYNC, call), raw, raw, 'unary'); // never answers
  server.register(CHECKPOINT, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    record(CHECKPOINT, call);
    cb(null, Buffer.alloc(0));
  }, raw, raw, 'unary');
  server.register(EVENTS, (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
    record(EVENTS, call);
    for (let i = 0; i < 200; i++) call.write(Buffer.from(`event ${i} `.padEnd(4096, '.')));
    if (call.request.toString() === 'then fail') call.emit('error', { code: grpc.status.ABORTED, details: 'stream broke' });
    else if (call.request.toString() === 'and end') {
      const trailers = new grpc.Metadata();
      trailers.set('x-end', 'e');
      call.end(trailers);
    }
    // Otherwise the stream stays open, as containerd's event stream does.
  }, raw, raw, 'serverStream');
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return server;
}

function unary(client: grpc.Client, p: string, request: Buffer, opts: { metadata?: grpc.Metadata; deadline?: grpc.Deadline; started?: (c: grpc.ClientUnaryCall) => void } = {}) {
  return new Promise<{ response?: Buffer; headers?: grpc.Metadata; status: grpc.StatusObject }>((resolve) => {
    let response: Buffer | undefined;
    let headers: grpc.Metadata | undefined;
    const call = client.makeUnaryRequest(p, raw, raw, request, opts.metadata ?? new grpc.Metadata(), { deadline: opts.deadline ?? Infinity }, (_e, v) => (response = v));
    call.on('metadata', (m) => (headers = m));
    call.on('status', (status) => resolve({ response, headers, status }));
    opts.started?.(call);
  });
}

/** One call by hand over HTTP/2, to see the wire: response headers, DATA bytes, trailers. */
function h2Call(socket: string, p: string, body: Buffer) {
  return new Promise<{ headers: http2.IncomingHttpHeaders; data: Buffer; trailers?: http2.IncomingHttpHeaders }>((resolve, reject) => {
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': p, 'content-type': 'application/grpc', te: 'trailers' });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const data: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => data.push(c));
    stream.on('error', reject);
    stream.on('close', () => {
      session.close();
      resolve({ headers, data: Buffer.concat(data), trailers });
    });
    stream.end(body);
  });
}

function readStream(client: grpc.Client, request: string, take?: number) {
  return new Promise<{ messages: Buffer[]; status: grpc.StatusObject; call: grpc.ClientReadableStream<Buffer> }>((resolve) => {
    const messages: Buffer[] = [];
    const call = client.makeServerStreamRequest(EVENTS, raw, raw, Buffer.from(request), new grpc.Metadata(), {});
    call.on('data', (m: Buffer) => {
      messages.push(m);
      if (messages.length === take) call.cancel();
    });
    call.on('error', () => undefined);
    call.on('status', (status) => resolve({ messages, status, call }));
  });
}

describe('CRI proxy: forwarding as bytes (fake containerd)', () => {
  let dir: string;
  let rig: CriProxyRig;
  let client: grpc.Client;
  const seen = new Map<string, Seen>();
  /** What the slow intercept (StopContainer) saw: its deadline, and when its signal fired. */
  const slow: { deadline?: grpc.Deadline; aborted?: Promise<void> } = {};
  quietLogs();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cri-proxy-'));
    const intercepts: Intercepts = new Map([[CHECKPOINT, async (request, ctx) => {
      if (getString(request, 1) === 'refuse') throw new FailedPreconditionError('container refuse: not running');
      return ctx.forward(setString(request, 2, '/rewritten/location.tar'));
    }], [STOP, async (_request, ctx) => {
      slow.deadline = ctx.deadline;
      slow.aborted = new Promise((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
      await slow.aborted;
      throw new Error('aborted');
    }]]);
    rig = await criProxyRig(dir, (socket) => fakeContainerd(socket, seen), () => intercepts);
    client = rig.client;
  });

  after(async () => {
    await rig?.close();
  });

  it('has one row per method of runtime.v1, with its streaming kind', () => {
    const paths = CRI_METHODS.map(methodPath);
    assert.equal(new Set(paths).size, paths.length);
    assert.equal(CRI_METHODS.filter((m) => m.service === 'ImageService').length, 6);
    assert.deepEqual(CRI_METHODS.filter((m) => m.streaming === 'server').map((m) => m.name).sort(), [
      'GetContainerEvents', 'StreamContainerStats', 'StreamContainers', 'StreamImages', 'StreamPodSandboxMetrics', 'StreamPodSandboxStats', 'StreamPodSandboxes',
    ]);
  });

  it('forwards request bytes, metadata and deadline; returns the answer, headers and trailers unchanged', async () => {
    const md = new grpc.Metadata();
    md.set('x-client', 'c');
    md.set('x-client-bin', Buffer.from([9, 8, 7]));
    const deadline = Date.now() + 20_000;
    const request = Buffer.from([0x0a, 0x03, 0x30, 0xff, 0x00]); // not even valid UTF-8: bytes are bytes
    const r = await unary(client, VERSION, request, { metadata: md, deadline });
    assert.equal(r.status.code, grpc.status.OK);
    assert.deepEqual(r.response, Buffer.concat([Buffer.from('answer:'), request]));
    assert.deepEqual(r.headers!.get('x-header'), ['h']);
    assert.deepEqual(r.status.metadata.get('x-trailer'), ['t']);
    assert.deepEqual(r.status.metadata.get('x-bin'), [Buffer.from([0, 1, 2, 255])]);
    const s = seen.get(VERSION)!;
    assert.deepEqual(s.request, request);
    assert.deepEqual(s.metadata.get('x-client'), ['c']);
    assert.deepEqual(s.metadata.get('x-client-bin'), [Buffer.from([9, 8, 7])]);
    const upstreamDeadline = s.deadline instanceof Date ? s.deadline.getTime() : s.deadline;
    assert.ok(Math.abs(upstreamDeadline - deadline) < 1000, `deadline ${upstreamDeadline} vs ${deadline}`);
  });

  it("passes containerd's error code, message and trailers through", async () => {
    const r = await unary(client, STATUS, Buffer.from([0x0a, 0x04, 0x6e, 0x6f, 0x70, 0x65]));
    assert.equal(r.status.code, grpc.status.NOT_FOUND);
    assert.equal(r.status.details, 'an error occurred when try to find container "nope": not found');
    assert.deepEqual(r.status.metadata.get('x-why'), ['missing']);
  });

  it("a client's cancel and a deadline that runs out reach containerd", async () => {
    const cancelled = await unary(client, EXEC_SYNC, Buffer.from('a'), { started: (c) => setTimeout(() => c.cancel(), 200) });
    assert.equal(cancelled.status.code, grpc.status.CANCELLED);
    await seen.get(EXEC_SYNC)!.cancelled;
    seen.delete(EXEC_SYNC);
    const late = await unary(client, EXEC_SYNC, Buffer.from('b'), { deadline: Date.now() + 300 });
    assert.equal(late.status.code, grpc.status.DEADLINE_EXCEEDED);
    await seen.get(EXEC_SYNC)!.cancelled;
  });

  it('streams every message in order, then the status and trailers; an upstream error ends the stream with it', async () => {
    const ok = await readStream(client, 'and end');
    assert.equal(ok.status.code, grpc.status.OK);
    assert.equal(ok.messages.length, 200);
    assert.ok(ok.messages.every((m, i) => m.toString().startsWith(`event ${i} `)));
    assert.deepEqual(ok.status.metadata.get('x-end'), ['e']);
    const failed = await readStream(client, 'then fail');
    assert.equal(failed.messages.length, 200);
    assert.equal(failed.status.code, grpc.status.ABORTED);
    assert.equal(failed.status.details, 'stream broke');
  });

  it("a client that leaves a stream cancels containerd's", async () => {
    const r = await readStream(client, 'stay open', 3);
    assert.equal(r.status.code, grpc.status.CANCELLED);
    await seen.get(EVENTS)!.cancelled;
  });

  it('an intercept rewrites one field and forwards; its own error maps to a status', async () => {
    const request = Buffer.concat([setString(Buffer.alloc(0), 1, 'ctr1'), setString(Buffer.alloc(0), 2, '/client/location.tar'), Buffer.from([0x18, 0x3c])]);
    const r = await unary(client, CHECKPOINT, request);
    assert.equal(r.status.code, grpc.status.OK);
    const got = seen.get(CHECKPOINT)!.request;
    assert.equal(getString(got, 1), 'ctr1');
    assert.equal(getString(got, 2), '/rewritten/location.tar');
    assert.deepEqual(got.subarray(-2), Buffer.from([0x18, 0x3c]), 'the timeout field kept');
    const refused = await unary(client, CHECKPOINT, setString(Buffer.alloc(0), 1, 'refuse'));
    assert.equal(refused.status.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(refused.status.details, 'container refuse: not running');
  });

  it('a method outside the table gets UNIMPLEMENTED', async () => {
    const r = await unary(client, '/runtime.v1.RuntimeService/NotYetInvented', Buffer.alloc(0));
    assert.equal(r.status.code, grpc.status.UNIMPLEMENTED);
  });

  it('refuses an intercept for a streaming or unknown method', () => {
    const noop = async () => { throw new Error('unused'); };
    const upstream = new Upstream(path.join(dir, 'unused.sock'));
    assert.throws(() => new CriProxy(upstream, new Map([[EVENTS, noop]])), /only unary/);
    assert.throws(() => new CriProxy(upstream, new Map([['/runtime.v1.RuntimeService/Nope', noop]])), /not a method/);
    upstream.close();
  });

  it('passes a trailers-only answer through as one: the status in the response headers, no DATA, no trailers', async () => {
    const r = await h2Call(path.join(dir, 'cri.sock'), STATUS, frameMessage(Buffer.from([0x0a, 0x01, 0x78])));
    assert.equal(r.headers['grpc-status'], String(grpc.status.NOT_FOUND));
    assert.equal(decodeURIComponent(String(r.headers['grpc-message'])), 'an error occurred when try to find container "nope": not found');
    assert.equal(r.headers['x-why'], 'missing');
    assert.equal(r.data.length, 0);
    assert.equal(r.trailers, undefined);
  });

  it("an intercepted call gets the client's deadline, and its signal fires when the deadline runs out or the client cancels", async () => {
    const deadline = Date.now() + 400;
    const late = await unary(client, STOP, Buffer.from('x'), { deadline });
    assert.equal(late.status.code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(Math.abs((slow.deadline as number) - deadline) < 200, `deadline ${String(slow.deadline)} vs ${deadline}`);
    await slow.aborted;
    slow.aborted = undefined;
    const cancelled = await unary(client, STOP, Buffer.from('y'), { started: (c) => setTimeout(() => c.cancel(), 200) });
    assert.equal(cancelled.status.code, grpc.status.CANCELLED);
    await slow.aborted;
  });

  it('refuses an intercepted message over MAX_CRI_MESSAGE or compressed, by its prefix, with a status naming why', async () => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(MAX_CRI_MESSAGE + 1, 1);
    const big = await h2Call(path.join(dir, 'cri.sock'), CHECKPOINT, prefix);
    assert.equal(big.headers['grpc-status'], String(grpc.status.RESOURCE_EXHAUSTED));
    assert.match(decodeURIComponent(String(big.headers['grpc-message'])), new RegExp(`${MAX_CRI_MESSAGE + 1} bytes`));
    const zipped = await h2Call(path.join(dir, 'cri.sock'), CHECKPOINT, Buffer.from([1, 0, 0, 0, 1, 0]));
    assert.equal(zipped.headers['grpc-status'], String(grpc.status.UNIMPLEMENTED));
    assert.match(String(zipped.headers['grpc-message']), /compressed/);
  });

  it('frames an intercept\'s answer: one length-prefixed message, then grpc-status 0 in the trailers', async () => {
    const r = await h2Call(path.join(dir, 'cri.sock'), CHECKPOINT, frameMessage(setString(Buffer.alloc(0), 1, 'ctr2')));
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.headers['content-type'], 'application/grpc');
    assert.deepEqual(r.data, Buffer.alloc(5), 'an empty CheckpointContainerResponse, framed');
    assert.equal(r.trailers?.['grpc-status'], '0');
  });

  it('a call that cannot reach containerd gets UNAVAILABLE naming the socket, forwarded or intercepted', async () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cri-down-'));
    const upstream = new Upstream(path.join(other, 'gone.sock'), { connectTimeoutMs: 300 });
    const proxy = new CriProxy(upstream, new Map([[CHECKPOINT, (request, ctx) => ctx.forward(request)]]));
    await proxy.listen(path.join(other, 'cri.sock'));
    const c = new grpc.Client(`unix://${path.join(other, 'cri.sock')}`, grpc.credentials.createInsecure());
    try {
      for (const p of [VERSION, CHECKPOINT]) {
        const r = await unary(c, p, Buffer.from('a'));
        assert.equal(r.status.code, grpc.status.UNAVAILABLE, p);
        assert.match(r.status.details, /gone\.sock is unreachable/, p);
      }
    } finally {
      c.close();
      await proxy.close(100);
      upstream.close();
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('carries messages of several MiB both ways, forwarded and through an intercept, with flow control', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
    const forwarded = await unary(client, VERSION, big);
    assert.equal(forwarded.status.code, grpc.status.OK);
    assert.ok(forwarded.response!.subarray(7).equals(big));
    assert.ok(seen.get(VERSION)!.request.equals(big));
    const viaIntercept = await unary(client, CHECKPOINT, Buffer.concat([setString(Buffer.alloc(0), 1, 'ctr3'), setString(Buffer.alloc(0), 5, big.toString('latin1'))]));
    assert.equal(viaIntercept.status.code, grpc.status.OK);
    assert.ok(seen.get(CHECKPOINT)!.request.length > big.length);
  });
});
