import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backendMethods } from '../../common/backend-api.js';
import { StatusCode, TtrpcClient, TtrpcServer } from '../../common/ttrpc/index.js';
import { BackendLimits, BackendService, DumpFn, ImageStore } from '../../introspect/backend/index.js';
import { duplexPair } from './helpers/duplex-pair.js';
import { quietLogs } from './helpers/quiet-logs.js';
import { rejectsWithStatus } from './helpers/ttrpc-assert.js';

const dump: DumpFn = async (_cgroup, dir) => {
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'inventory.img'), 'images');
  return {
    dir, root: 100, processes: [{ pid: 100, vpid: 100, threads: [100], comm: 'sleep' }], pagesScanned: 0, pagesWritten: 0, bytesWritten: 0,
    consistency: 'vm-paused', pauseMs: 0, pagesReread: 0, ms: { plan: 0, memdump: 0, total: 0 },
  };
};

/** Image-directory slots: names issued and never released must not lock a VM out of checkpoints. */
describe('ovmigrate serve: image directories nobody releases', () => {
  quietLogs();
  let root: string;
  let images: string;
  let staging: string;
  let store: ImageStore;
  let client: TtrpcClient;
  let clock = 0;
  const m = backendMethods();

  function start(limits: Partial<BackendLimits>): void {
    const server = new TtrpcServer();
    new BackendService(store, dump, limits, () => clock).register(server);
    const [a, b] = duplexPair();
    void server.serve(b);
    client = new TtrpcClient(a);
  }
  const checkpoint = () => m.checkpoint.call(client, { id: 'web', cgroup: '/default/web', config: Buffer.from('{}') });
  const full = () => rejectsWithStatus(checkpoint(), StatusCode.RESOURCE_EXHAUSTED, /image directories are not released/);

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovmigrate-slots-'));
    images = path.join(root, 'share');
    staging = path.join(root, 'staging');
    fs.mkdirSync(images);
    store = ImageStore.open(images, { staging });
    clock = 1_000_000;
  });
  afterEach(() => {
    client?.close();
    store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('frees the slot of a directory the guest deleted without releasing it', async () => {
    start({ maxUnreleased: 2 });
    const first = await checkpoint();
    await checkpoint();
    await full();
    fs.rmSync(path.join(images, first.name), { recursive: true });
    await checkpoint();
    await full();
    // Its name is spent: a late release is told so.
    await rejectsWithStatus(m.release.call(client, { name: first.name }), StatusCode.NOT_FOUND);
  });

  it('takes back and removes a directory not released within the time limit (its shim went away)', async () => {
    start({ maxUnreleased: 2, unreleasedTtlMs: 60_000 });
    const old = await checkpoint();
    clock += 30_000;
    const young = await checkpoint();
    await full();
    clock += 30_000;
    const next = await checkpoint();
    assert.deepEqual(fs.readdirSync(images).sort(), [young.name, next.name].sort());
    assert.deepEqual(fs.readdirSync(staging), []);
    await rejectsWithStatus(m.release.call(client, { name: old.name }), StatusCode.NOT_FOUND);
    await m.release.call(client, { name: young.name });
  });

  it('expires on its own too (reclaim), removing without following what the guest swapped in', async () => {
    const outside = path.join(root, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'keep'), 'host');
    const server = new TtrpcServer();
    const service = new BackendService(store, dump, { unreleasedTtlMs: 1000 }, () => clock);
    service.register(server);
    const [a, b] = duplexPair();
    void server.serve(b);
    client = new TtrpcClient(a);
    const { name } = await checkpoint();
    fs.symlinkSync(outside, path.join(images, name, 'sub'));
    clock += 1000;
    service.reclaim();
    assert.deepEqual(fs.readdirSync(images), []);
    assert.deepEqual(fs.readdirSync(outside), ['keep']);
    assert.deepEqual(fs.readdirSync(path.join(staging, `.released-${name}`)), ['sub']);
  });

  it('a new backend removes what an earlier one left in DIR and in staging, and nothing else', () => {
    const hex = (c: string) => c.repeat(32);
    for (const n of [hex('a'), hex('b')]) {
      fs.mkdirSync(path.join(images, n));
      fs.writeFileSync(path.join(images, n, 'pages-1.img'), 'x');
    }
    for (const n of [hex('c'), `.released-${hex('d')}`, `.${hex('e')}.ovmigrate-0123abcd`]) {
      fs.mkdirSync(path.join(staging, n));
      fs.writeFileSync(path.join(staging, n, 'core-1.img'), 'x');
    }
    fs.mkdirSync(path.join(images, 'mine'));
    fs.writeFileSync(path.join(images, 'notes.txt'), 'guest');
    fs.writeFileSync(path.join(staging, 'operator-file'), 'keep');
    assert.equal(store.removeLeftovers(), 5);
    assert.deepEqual(fs.readdirSync(images).sort(), ['mine', 'notes.txt']);
    assert.deepEqual(fs.readdirSync(staging), ['operator-file']);
    assert.equal(store.removeLeftovers(), 0);
  });
});
