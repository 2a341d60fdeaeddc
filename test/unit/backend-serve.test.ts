import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_CONFIG_BYTES, backendMethods, type CheckpointRequest } from '../../common/backend-api.js';
import { FailedPreconditionError, NotFoundError, UnsupportedError } from '../../common/errors.js';
import { StatusCode, TtrpcClient, TtrpcError, TtrpcServer } from '../../common/ttrpc/index.js';
import { ContainerSpec } from '../../introspect/dump/container.js';
import { DumpReport } from '../../introspect/dump/dump.js';
import { BackendLimits, BackendService, DumpFn, ImageStore, MAX_REQUEST_BYTES, serveChannel } from '../../introspect/backend/index.js';
import { duplexPair } from './helpers/duplex-pair.js';
import { quietLogs } from './helpers/quiet-logs.js';
import { rejectsWithStatus } from './helpers/ttrpc-assert.js';

function fakeReport(dir: string): DumpReport {
  return {
    dir, root: 100, processes: [{ pid: 100, vpid: 100, threads: [100], comm: 'sleep' }], pagesScanned: 3, pagesWritten: 2, bytesWritten: 9000,
    consistency: 'vm-paused', pauseMs: 1.5, pagesReread: 0, ms: { plan: 1, memdump: 1, total: 3 },
  };
}

/** A dump that writes an inventory where the real one would, after `gate` opens (when given). */
class StubDump {
  calls: { cgroup: string; container: ContainerSpec | undefined }[] = [];
  gate?: Promise<void>;
  error?: Error;
  /** Each call's signal: aborted once the service knows its caller went away. */
  signals: (AbortSignal | undefined)[] = [];
  /** Dumps that have written their images and returned. */
  finished = 0;
  readonly fn: DumpFn = async (cgroup, dir, container, signal) => {
    this.calls.push({ cgroup, container });
    this.signals.push(signal);
    await this.gate;
    if (this.error) throw this.error;
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'inventory.img'), 'images');
    this.finished++;
    return fakeReport(dir);
  };
}

describe('ovmigrate serve: the Backend service', () => {
  quietLogs();
  let root: string;
  let images: string;
  let store: ImageStore;
  let stub: StubDump;
  let client: TtrpcClient;
  const m = backendMethods();

  /** A service over a real ttrpc server and client, joined by an in-process pair. */
  function start(limits?: Partial<BackendLimits>): void {
    stub = new StubDump();
    const service = new BackendService(store, stub.fn, limits);
    const server = new TtrpcServer();
    service.register(server);
    const [a, b] = duplexPair();
    void server.serve(b);
    client = new TtrpcClient(a);
  }
  const checkpoint = (req: Partial<CheckpointRequest> = {}) => m.checkpoint.call(client, { id: 'web', cgroup: '/default/web', config: Buffer.from('{}'), ...req });
  const release = (name: string) => m.release.call(client, { name });
  const listing = () => ({ images: fs.readdirSync(images).sort(), staging: fs.readdirSync(store.staging).sort() });

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovmigrate-serve-'));
    images = path.join(root, 'share');
    fs.mkdirSync(images);
    store = ImageStore.open(images);
    start();
  });
  afterEach(() => {
    client.close();
    store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('stages outside the images directory, in a directory only its owner reads', () => {
    assert.equal(store.staging, path.join(root, '.share.ovmigrate-staging'));
    assert.equal(fs.statSync(store.staging).mode & 0o777, 0o700);
  });

  it('says hello with its limits', async () => {
    const hello = await m.hello.call(client, {});
    assert.match(hello.version, /^\d+\.\d+\.\d+/);
    assert.equal(hello.max_request_bytes, MAX_REQUEST_BYTES);
    assert.equal(hello.max_concurrent_checkpoints, 2);
  });

  it('checkpoints into a new directory of a generated name, then releases it', async () => {
    const reply = await checkpoint();
    assert.match(reply.name, /^[0-9a-f]{32}$/);
    assert.deepEqual(reply.pids, [100]);
    assert.equal(reply.pages_written, 2n);
    assert.equal(reply.bytes_written, 9000n);
    assert.equal(reply.pause_ms, 1.5);
    assert.ok(reply.total_ms >= 0);
    assert.deepEqual(listing(), { images: [reply.name], staging: [] });
    assert.deepEqual(fs.readdirSync(path.join(images, reply.name)), ['inventory.img']);
    assert.deepEqual(stub.calls.map((c) => c.cgroup), ['/default/web']);
    await release(reply.name);
    assert.deepEqual(listing(), { images: [], staging: [] });
    await rejectsWithStatus(release(reply.name), StatusCode.NOT_FOUND, /not issued by this backend, or released already/);
  });

  it('takes the config as the container spec, none for a plain process tree', async () => {
    const config = { mounts: [{ destination: '/data', type: 'bind', source: '/x' }], linux: { maskedPaths: ['/proc/kcore'], namespaces: [{ type: 'network', path: '/run/netns/p' }] } };
    await checkpoint({ config: Buffer.from(JSON.stringify(config)) });
    await checkpoint({ config: Buffer.alloc(0) });
    const [spec, none] = stub.calls.map((c) => c.container);
    assert.deepEqual([...spec!.externalMounts], [['/data', '/data']]);
    assert.deepEqual([...spec!.maskedPaths], ['/proc/kcore']);
    assert.deepEqual([...spec!.joinedNamespaces], [['network', '/run/netns/p']]);
    assert.equal(none, undefined);
  });

  it('refuses bad ids, cgroups and configs with INVALID_ARGUMENT, before dumping', async () => {
    for (const id of ['', 'a/b', '../x', 'x'.repeat(65), 'tab\there', 'nul\0']) await rejectsWithStatus(checkpoint({ id }), StatusCode.INVALID_ARGUMENT, /container id/);
    for (const cgroup of ['', 'default/web', '/default/../..', '/', '/x\0y', '/x\ninfo forged log line', '/' + 'a'.repeat(5000)]) {
      await rejectsWithStatus(checkpoint({ cgroup }), StatusCode.INVALID_ARGUMENT, /cgroup/);
    }
    for (const config of ['[]', 'null', '"x"', 'not json', '{']) {
      await rejectsWithStatus(checkpoint({ config: Buffer.from(config) }), StatusCode.INVALID_ARGUMENT, /config of container web/);
    }
    await rejectsWithStatus(checkpoint({ config: Buffer.alloc(MAX_CONFIG_BYTES + 1, 0x20) }), StatusCode.INVALID_ARGUMENT, /more than the 1048576/);
    await rejectsWithStatus(checkpoint({ config: Buffer.alloc(2 * MAX_CONFIG_BYTES, 0x20) }), StatusCode.INVALID_ARGUMENT, /request of \d+ bytes/);
    // Fields of the wrong shape in a JSON object are ignored, not thrown on.
    await checkpoint({ config: Buffer.from('{"mounts": 7, "linux": {"maskedPaths": [1, null], "devices": "x", "namespaces": [null, {"type": 1}]}}') });
    assert.equal(stub.calls.length, 1);
    assert.equal(listing().staging.length, 0);
  });

  it('refuses names in Release that are not ones it issued', async () => {
    const { name } = await checkpoint();
    for (const bad of ['../x', '../../etc', '/etc', '', '.', name.toUpperCase(), `${name}/..`, `${name}\0`]) {
      await rejectsWithStatus(release(bad), StatusCode.INVALID_ARGUMENT, /not a name this backend gives/);
    }
    await rejectsWithStatus(release('0'.repeat(32)), StatusCode.NOT_FOUND);
    assert.deepEqual(listing().images, [name]);
  });

  it('removes a released directory the guest swapped for a symlink without following it', async () => {
    const outside = path.join(root, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'precious'), 'keep');
    const { name } = await checkpoint();
    fs.rmSync(path.join(images, name), { recursive: true });
    fs.symlinkSync(outside, path.join(images, name));
    await release(name);
    assert.deepEqual(fs.readdirSync(outside), ['precious']);
    assert.deepEqual(listing(), { images: [], staging: [] });
  });

  it('accepts the release of a directory the guest removed itself', async () => {
    const { name } = await checkpoint();
    fs.rmSync(path.join(images, name), { recursive: true });
    await release(name);
  });

  it('runs at most N checkpoints at once and keeps at most M directories unreleased (RESOURCE_EXHAUSTED)', async () => {
    client.close();
    start({ maxConcurrentCheckpoints: 2, maxUnreleased: 3 });
    let open!: () => void;
    stub.gate = new Promise((resolve) => (open = resolve));
    const running = [checkpoint({ id: 'a' }), checkpoint({ id: 'b' })];
    // Both are running once the dump has been called twice: counted, not waited for.
    while (stub.calls.length < 2) await sleep(1);
    await rejectsWithStatus(checkpoint({ id: 'c' }), StatusCode.RESOURCE_EXHAUSTED, /2 checkpoints of this VM are running/);
    open();
    const names = (await Promise.all(running)).map((r) => r.name);
    await checkpoint({ id: 'c' });
    await rejectsWithStatus(checkpoint({ id: 'd' }), StatusCode.RESOURCE_EXHAUSTED, /3 image directories are not released/);
    await release(names[0]);
    await checkpoint({ id: 'd' });
    assert.equal(listing().images.length, 3);
  });

  it('maps dump errors to their status and leaves nothing behind', async () => {
    const cases: [Error, StatusCode][] = [
      [new FailedPreconditionError('cannot dump: pid 100 (sleep) is not frozen'), StatusCode.FAILED_PRECONDITION],
      [new NotFoundError('no process in cgroup /default/web'), StatusCode.NOT_FOUND],
      [new UnsupportedError('cannot dump pid 100: a TCP socket'), StatusCode.UNIMPLEMENTED],
    ];
    for (const [error, status] of cases) {
      stub.error = error;
      await rejectsWithStatus(checkpoint(), status, error.message);
    }
    assert.deepEqual(listing(), { images: [], staging: [] });
  });

  it('discards the images of a caller that went away during the dump', async () => {
    let open!: () => void;
    stub.gate = new Promise((resolve) => (open = resolve));
    const lost = checkpoint().catch((e: unknown) => e);
    while (stub.calls.length === 0) await sleep(1);
    client.close();
    assert.ok((await lost) instanceof TtrpcError);
    // The service has seen the caller go: the dump's signal says so.
    while (!stub.signals[0]?.aborted) await sleep(1);
    open();
    // The dump wrote its images; the service then removes them (awaited, not given a fixed time).
    while (stub.finished === 0) await sleep(1);
    const empty = JSON.stringify({ images: [], staging: [] });
    while (JSON.stringify(listing()) !== empty) await sleep(1);
    assert.deepEqual(listing(), { images: [], staging: [] });
  });

  it('refuses an images directory the guest cannot see, and staging it can', () => {
    const other = path.join(root, 'other');
    fs.mkdirSync(other);
    assert.throws(() => ImageStore.open(other, { shares: [images] }), /not on a directory the guest mounts/);
    fs.mkdirSync(path.join(images, 'sub'));
    assert.throws(() => ImageStore.open(path.join(images, 'sub'), { shares: [images] }), /visible to the guest/);
    ImageStore.open(path.join(images, 'sub'), { shares: [images], staging: path.join(root, 'private') }).close();
  });
});

describe('ovmigrate serve: the channel', () => {
  quietLogs();
  let dir: string;
  let qemu: net.Server;
  const stop = new AbortController();
  after(() => {
    stop.abort();
    qemu?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('connects when the chardev appears, drops a connection that sends garbage, and serves the next one', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovmigrate-channel-'));
    const socket = path.join(dir, 'channel.sock');
    const root = path.join(dir, 'share');
    fs.mkdirSync(root);
    const server = new TtrpcServer();
    new BackendService(ImageStore.open(root), new StubDump().fn).register(server);
    let connects = 0;
    const served = serveChannel(socket, server, { signal: stop.signal, minDelayMs: 20, onConnect: () => connects++ });
    // QEMU is not there yet: the backend keeps trying.
    await sleep(100);
    const conns: net.Socket[] = [];
    qemu = net.createServer((c) => conns.push(c));
    await new Promise<void>((resolve) => qemu.listen(socket, resolve));
    // Until the backend's retry connects (the test's timeout guards a hang), then exactly that many.
    const next = async (n: number): Promise<net.Socket> => {
      while (conns.length < n) await sleep(10);
      assert.equal(conns.length, n);
      return conns[n - 1];
    };

    const first = await next(1);
    assert.equal((await backendMethods().hello.call(new TtrpcClient(first), {})).max_concurrent_checkpoints, 2);
    const closed = new Promise((resolve) => first.on('close', resolve));
    // A length of 0x47415242 bytes: more than any ttrpc frame may have.
    first.write('GARBAGE GARBAGE GARBAGE');
    await closed;

    const second = await next(2);
    assert.equal((await backendMethods().hello.call(new TtrpcClient(second), {})).max_concurrent_checkpoints, 2);
    assert.equal(connects, 2);
    stop.abort();
    await served;
  });
});
