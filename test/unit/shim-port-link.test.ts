import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BACKEND_SERVICE, backendMethods } from '../../common/backend-api.js';
import { FrameDecoder, MessageType, StatusCode, TtrpcClient, TtrpcError, TtrpcServer, encodeFrame } from '../../common/ttrpc/index.js';
import { serveChannel } from '../../introspect/backend/channel.js';
import { PortLink } from '../../shim/channel/port-link.js';
import { Relay } from '../../shim/channel/relay.js';
import type { PortIO } from '../../shim/channel/virtio-port.js';
import { duplexPair } from './helpers/duplex-pair.js';
import { quietLogs } from './helpers/quiet-logs.js';

/**
 * QEMU's side of a virtio-serial port whose chardev is a unix socket in
 * server mode, as the guest's driver answers reads and writes on the port
 * (drivers/char/virtio_console.c): the connection the host makes outlives
 * whatever relay has the port open.
 */
class FakeChannel implements PortIO {
  private conn?: net.Socket;
  private inbound: Buffer[] = [];
  private waiting?: () => void;
  /** Everything the guest wrote, per host connection. */
  readonly written: Buffer[][] = [];

  private constructor(readonly socketPath: string, private readonly server: net.Server) {}

  static async listen(socketPath: string): Promise<FakeChannel> {
    const server = net.createServer();
    const channel = new FakeChannel(socketPath, server);
    server.on('connection', (s) => channel.accept(s));
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return channel;
  }

  private accept(s: net.Socket): void {
    // One client at a time, as QEMU's chardev.
    if (this.conn) return void s.destroy();
    this.conn = s;
    this.written.push([]);
    s.on('data', (d: Buffer) => {
      this.inbound.push(d);
      this.wake();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.conn === s) this.conn = undefined;
      this.wake();
    });
  }

  /** As PortWaiter.whenReadable: `wake` once a read would not answer EAGAIN (bytes in, or no host). */
  whenReadable(wake: () => void): boolean {
    this.waiting = wake;
    if (this.inbound.length || !this.conn) setImmediate(() => this.wake());
    return true;
  }

  private wake(): void {
    const wake = this.waiting;
    this.waiting = undefined;
    wake?.();
  }

  read(buf: Buffer): number | undefined {
    const chunk = this.inbound.shift();
    if (!chunk) return this.conn ? undefined : 0;
    const n = Math.min(chunk.length, buf.length);
    chunk.copy(buf, 0, 0, n);
    if (n < chunk.length) this.inbound.unshift(chunk.subarray(n));
    return n;
  }

  write(data: Buffer): number {
    if (!this.conn || this.conn.destroyed) return 0;
    const n = Math.min(data.length, 32 * 1024);
    const bytes = Buffer.from(data.subarray(0, n));
    this.written[this.written.length - 1].push(bytes);
    this.conn.write(bytes);
    return n;
  }

  /** The host's connection closed, as QEMU sees its chardev client leave. */
  dropHost(): void {
    this.conn?.destroy();
  }

  get hostConnected(): boolean {
    return this.conn !== undefined;
  }

  close(): void {
    this.conn?.destroy();
    this.server.close();
  }
}

describe('guest channel relay start-up: the host sees only frames it serves', function () {
  quietLogs();
  let dir: string;
  let channel: FakeChannel;
  let host: AbortController;
  let hostConnections: number;
  const links: PortLink[] = [];
  const clients: TtrpcClient[] = [];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-port-link-'));
    channel = await FakeChannel.listen(path.join(dir, 'channel.sock'));
    const server = new TtrpcServer();
    const m = backendMethods();
    server.register(BACKEND_SERVICE, {
      Hello: m.hello.implement(async () => ({ version: 'test', max_request_bytes: 1 << 20, max_concurrent_checkpoints: 1 })),
    });
    server.register('test.Echo', { Echo: async (payload) => payload });
    server.register('test.Slow', { Echo: async (payload) => { await sleep(1000); return payload; } });
    host = new AbortController();
    hostConnections = 0;
    void serveChannel(channel.socketPath, server, { signal: host.signal, minDelayMs: 50, onConnect: () => hostConnections++ });
    while (!channel.hostConnected) await sleep(5);
  });

  afterEach(() => {
    for (const link of links.splice(0)) link.stop();
    for (const client of clients.splice(0)) client.close();
    host.abort();
    channel.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function start(relay: Relay, probeTimeoutMs?: number, waiter = false): PortLink {
    const link = new PortLink(channel, relay, { probeTimeoutMs, whenReadable: waiter ? (wake) => channel.whenReadable(wake) : undefined });
    links.push(link);
    link.run().catch((err: unknown) => assert.fail(`the link failed: ${String(err)}`));
    return link;
  }

  async function echo(relay: Relay, text: string, service = 'test.Echo'): Promise<string> {
    const [clientEnd, relayEnd] = duplexPair();
    relay.addClient(relayEnd);
    const client = new TtrpcClient(clientEnd);
    clients.push(client);
    return (await client.call(service, 'Echo', Buffer.from(text), { timeoutMs: 10_000 })).toString();
  }

  function countReads(): { reads: number } {
    const count = { reads: 0 };
    const read = channel.read.bind(channel);
    channel.read = (buf: Buffer) => {
      count.reads++;
      return read(buf);
    };
    return count;
  }

  /** The frames the guest sent on each host connection (throws on bytes that do not frame as ttrpc). */
  const framesSent = (): { type: MessageType; streamId: number }[][] =>
    channel.written.map((chunks) => new FrameDecoder().push(Buffer.concat(chunks)).map((f) => ({ type: f.type, streamId: f.streamId })));

  it('starts on the host connection as it finds it: a Hello probe, then the calls; no reset, no reconnect', async () => {
    const relay = new Relay();
    start(relay);
    assert.equal(await echo(relay, 'first'), 'first');
    assert.equal(hostConnections, 1, 'the host kept its connection');
    assert.deepEqual(framesSent(), [[{ type: MessageType.Request, streamId: 1 }, { type: MessageType.Request, streamId: 3 }]]);
  });

  it('a call the host works on for a second: the polls back off (tens of reads, not the 200 of 5 ms polls), the answer still comes', async () => {
    const relay = new Relay();
    start(relay);
    assert.equal(await echo(relay, 'warm'), 'warm');
    let reads = 0;
    const read = channel.read.bind(channel);
    channel.read = (buf: Buffer) => {
      reads++;
      return read(buf);
    };
    const t0 = Date.now();
    assert.equal(await echo(relay, 'slow', 'test.Slow'), 'slow');
    assert.ok(Date.now() - t0 < 1500, `answered ${Date.now() - t0} ms after the call`);
    assert.ok(reads < 80, `${reads} reads of the port during a call of 1 s`);
  });

  it('an idle link with its host up reads the port about once a second, and a call then goes through at once', async function () {
    this.timeout(10_000);
    const relay = new Relay();
    start(relay);
    assert.equal(await echo(relay, 'warm'), 'warm');
    let reads = 0;
    const read = channel.read.bind(channel);
    channel.read = (buf: Buffer) => {
      reads++;
      return read(buf);
    };
    await sleep(2500);
    assert.ok(reads <= 5, `${reads} reads of the port in 2.5 s of nothing to do`);
    const t0 = Date.now();
    assert.equal(await echo(relay, 'next'), 'next');
    // Not at the next idle poll, a second away.
    assert.ok(Date.now() - t0 < 800, `answered ${Date.now() - t0} ms after the call`);
  });

  it('woken by a readiness waiter: no reads while idle, a handful over a call of a second, the answer at once', async function () {
    this.timeout(10_000);
    const relay = new Relay();
    start(relay, undefined, true);
    assert.equal(await echo(relay, 'warm'), 'warm');
    const idle = countReads();
    await sleep(1500);
    assert.equal(idle.reads, 0, `${idle.reads} reads of the port in 1.5 s of nothing to do`);
    const t0 = Date.now();
    assert.equal(await echo(relay, 'next'), 'next');
    assert.ok(Date.now() - t0 < 800, `answered ${Date.now() - t0} ms after the call`);
    const busy = countReads();
    assert.equal(await echo(relay, 'slow', 'test.Slow'), 'slow');
    assert.ok(busy.reads <= 6, `${busy.reads} reads of the port during a call of 1 s`);
    assert.deepEqual(framesSent().map((c) => c.length), [4], 'one host connection, the probe and three calls');
  });

  it('woken by a readiness waiter: the host leaving mid-call wakes the link, which fails the call UNAVAILABLE at once', async function () {
    this.timeout(10_000);
    const relay = new Relay();
    start(relay, undefined, true);
    assert.equal(await echo(relay, 'warm'), 'warm');
    const call = echo(relay, 'slow', 'test.Slow').then(() => assert.fail('answered'), (err: unknown) => err);
    await sleep(200);
    const t0 = Date.now();
    host.abort();
    channel.dropHost();
    const err = await call;
    assert.ok(err instanceof TtrpcError, String(err));
    assert.equal(err.status, StatusCode.UNAVAILABLE, String(err));
    assert.ok(Date.now() - t0 < 500, `failed ${Date.now() - t0} ms after the host left`);
  });

  it('a relay started after another (its ids reserved) goes on on the same host connection with larger ids', async () => {
    let reserved = 1;
    const first = new Relay({ reserveStreamIds: (below) => (reserved = below) });
    const link = start(first);
    assert.equal(await echo(first, 'a'), 'a');
    link.stop();
    const second = new Relay({ firstStreamId: reserved });
    start(second);
    assert.equal(await echo(second, 'b'), 'b');
    assert.equal(hostConnections, 1);
    const ids = framesSent()[0].map((f) => f.streamId);
    assert.deepEqual(ids, [1, 3, reserved, reserved + 2]);
  });

  it('resets a host connection that saw its ids before (a relay of an earlier boot), then serves', async () => {
    const first = new Relay();
    const link = start(first);
    assert.equal(await echo(first, 'a'), 'a');
    link.stop();
    const second = new Relay();
    start(second);
    assert.equal(await echo(second, 'b'), 'b');
    assert.equal(hostConnections, 2, 'the stale connection was dropped once');
  });

  it('resets a host connection left in the middle of a frame (a relay that died writing), then serves', async () => {
    // What a relay killed between two writes of a large request leaves: a header and part of its payload.
    const partial = encodeFrame(1, MessageType.Request, Buffer.alloc(100_000, 0x41)).subarray(0, 40_000);
    for (let at = 0; at < partial.length;) at += channel.write(partial.subarray(at));
    const relay = new Relay({ firstStreamId: 3 });
    start(relay, 300);
    assert.equal(await echo(relay, 'after'), 'after');
    assert.equal(hostConnections, 2);
  });
});
