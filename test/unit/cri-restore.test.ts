import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../common/proto.js';
import { RESTORE_ANNOTATION, checkRestoreDir } from '../../shim/archive/index.js';
import {
  CriProxy, CriRestore, Upstream, appendField, editField, getField, getNestedString, getRepeated, getString, mapEntry, setString,
} from '../../shim/cri/index.js';
import { quietLogs } from './helpers/quiet-logs.js';
import { goodArchiveEntries, tarOf } from './helpers/tar-builder.js';

const raw = (b: Buffer): Buffer => b;
const CREATE = '/runtime.v1.RuntimeService/CreateContainer';
const REMOVE = '/runtime.v1.RuntimeService/RemoveContainer';
const IMAGE_STATUS = '/runtime.v1.ImageService/ImageStatus';
const cri = () => loadProtos('cri');

/** A fake containerd CRI: images it has, the CreateContainer requests it got. */
async function fakeContainerd(socket: string, images: Set<string>, creates: Buffer[], removes: string[]): Promise<grpc.Server> {
  const server = new grpc.Server();
  server.register(CREATE, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    creates.push(call.request);
    cb(null, setString(Buffer.alloc(0), 1, `ctr${creates.length}`));
  }, raw, raw, 'unary');
  server.register(REMOVE, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    removes.push(getString(call.request, 1) ?? '');
    cb(null, Buffer.alloc(0));
  }, raw, raw, 'unary');
  server.register(IMAGE_STATUS, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    const ref = getNestedString(call.request, [1, 1]) ?? '';
    const t = cri().lookupType('runtime.v1.ImageStatusResponse');
    cb(null, Buffer.from(t.encode(t.fromObject(images.has(ref) ? { image: { id: `sha256:${ref.length}`, repo_tags: [ref] } } : {})).finish()));
  }, raw, raw, 'unary');
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return server;
}

function call(client: grpc.Client, method: string, request: Buffer): Promise<{ status: grpc.StatusObject; response?: Buffer }> {
  return new Promise((resolve) => {
    let response: Buffer | undefined;
    const c = client.makeUnaryRequest(method, raw, raw, request, new grpc.Metadata(), {}, (_e, v) => (response = v));
    c.on('status', (status) => resolve({ status, response }));
  });
}

/** A CreateContainerRequest for `image`, with optional command, mounts (container paths) and annotations. */
function createRequest(image: string, o: { command?: string[]; mounts?: string[]; annotations?: Record<string, string> } = {}): Buffer {
  const t = cri().lookupType('runtime.v1.CreateContainerRequest');
  let msg: Buffer = Buffer.from(t.encode(t.fromObject({
    pod_sandbox_id: 'pod1',
    config: { metadata: { name: 'restored' }, image: { image }, command: o.command ?? [], annotations: o.annotations ?? {} },
  })).finish());
  for (const m of o.mounts ?? []) {
    msg = editField(msg, [2], (c) => appendField(c!, 7, Buffer.concat([setString(Buffer.alloc(0), 1, m), setString(Buffer.alloc(0), 2, `/host${m}`)])));
  }
  return msg;
}

function annotations(request: Buffer): Map<string, string> {
  const config = getField(request, 2, 'message')!;
  return new Map(getRepeated(config, 10).map((e) => [getString(e, 1) ?? '', getString(e, 2) ?? '']));
}

describe('CRI restore: CreateContainer from a checkpoint archive (fake containerd)', () => {
  let dir: string;
  let root: string;
  let server: grpc.Server;
  let upstream: Upstream;
  let proxy: CriProxy;
  let client: grpc.Client;
  const images = new Set(['docker.io/library/busybox:latest']);
  const creates: Buffer[] = [];
  const removes: string[] = [];
  quietLogs();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cri-restore-'));
    root = path.join(dir, 'restore');
    server = await fakeContainerd(path.join(dir, 'containerd.sock'), images, creates, removes);
    upstream = new Upstream(path.join(dir, 'containerd.sock'));
    proxy = new CriProxy(upstream, new CriRestore(upstream, { root }).intercepts());
    await proxy.listen(path.join(dir, 'cri.sock'));
    client = new grpc.Client(`unix://${path.join(dir, 'cri.sock')}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await proxy?.close(100);
    upstream?.close();
    server?.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    creates.length = 0;
    removes.length = 0;
  });

  function archive(name: string, entries = goodArchiveEntries()): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, tarOf(...entries));
    return file;
  }
  const restoreDirs = () => (fs.existsSync(root) ? fs.readdirSync(root) : []);

  it('forwards a request that names no archive byte for byte (a client-set restore annotation dropped)', async () => {
    const plain = createRequest('docker.io/library/busybox:latest', { command: ['sh'] });
    assert.equal((await call(client, CREATE, plain)).status.code, grpc.status.OK);
    assert.deepEqual(creates[0], plain);
    const forged = createRequest('docker.io/library/busybox:latest', { annotations: { [RESTORE_ANNOTATION]: '/var/lib/ovmigrate/restore/x', keep: 'me' } });
    await call(client, CREATE, forged);
    assert.deepEqual([...annotations(creates[1])], [['keep', 'me']]);
  });

  it('unpacks the archive, and asks containerd for the checkpoint image with its command and our annotation', async () => {
    const file = archive('cp.tar');
    const r = await call(client, CREATE, createRequest(file));
    assert.equal(r.status.code, grpc.status.OK, r.status.details);
    assert.equal(getString(r.response!, 1), 'ctr1');
    const sent = creates[0];
    const config = getField(sent, 2, 'message')!;
    // rootfsImageRef (sha256:1234) is not here; the name is.
    assert.equal(getNestedString(sent, [2, 2, 1]), 'docker.io/library/busybox:latest');
    assert.deepEqual(getRepeated(config, 3).map(String), ['sh', '-c', 'counter']);
    assert.equal(getNestedString(sent, [2, 1, 1]), 'restored', 'the rest of the request kept');
    assert.equal(getString(sent, 1), 'pod1');
    const restoreDir = annotations(sent).get(RESTORE_ANNOTATION)!;
    assert.equal(path.dirname(restoreDir), root);
    assert.equal(checkRestoreDir(restoreDir, root), restoreDir, 'the shim would take it');
    assert.ok(fs.existsSync(path.join(restoreDir, 'checkpoint', 'pages-1.img')));
    assert.equal(fs.readFileSync(path.join(restoreDir, 'container-id'), 'utf8'), 'ctr1');

    // A command the request gives stays; RemoveContainer takes the directory away.
    await call(client, CREATE, createRequest(file, { command: ['own'] }));
    assert.deepEqual(getRepeated(getField(creates[1], 2, 'message')!, 3).map(String), ['own']);
    assert.equal(restoreDirs().length, 2);
    assert.equal((await call(client, REMOVE, setString(Buffer.alloc(0), 1, 'ctr1'))).status.code, grpc.status.OK);
    assert.equal(fs.existsSync(restoreDir), false);
    await call(client, REMOVE, setString(Buffer.alloc(0), 1, 'ctr2'));
    assert.deepEqual(restoreDirs(), []);
  });

  it('refuses a hostile archive with INVALID_ARGUMENT naming the entry; nothing reaches containerd, nothing stays', async () => {
    const file = archive('evil.tar', [...goodArchiveEntries(), { name: '../../escape', body: 'x' }]);
    const r = await call(client, CREATE, createRequest(file));
    assert.equal(r.status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(r.status.details, /checkpoint archive entry "\.\.\/\.\.\/escape": "\.\." component/);
    assert.equal(creates.length, 0);
    assert.deepEqual(restoreDirs(), []);
    assert.equal(fs.existsSync(path.join(dir, 'escape')), false);
  });

  it('refuses a checkpointed bind mount the request does not provide, and takes it when provided', async () => {
    const mounts = [{ destination: '/data', type: 'bind', source: '/srv/secret', options: ['rbind', 'rw'] }];
    const file = archive('bind.tar', goodArchiveEntries({ mounts }));
    const r = await call(client, CREATE, createRequest(file));
    assert.equal(r.status.code, grpc.status.FAILED_PRECONDITION);
    assert.match(r.status.details, /bind mounts the new container does not provide: "\/data" \(from "\/srv\/secret"/);
    assert.equal(creates.length, 0);
    assert.equal((await call(client, CREATE, createRequest(file, { mounts: ['/data'] }))).status.code, grpc.status.OK);
    assert.equal(creates.length, 1);
    await call(client, REMOVE, setString(Buffer.alloc(0), 1, 'ctr1'));
  });

  it("answers NOT_FOUND when the checkpoint's image is not in the guest (nothing is pulled)", async () => {
    images.delete('docker.io/library/busybox:latest');
    try {
      const r = await call(client, CREATE, createRequest(archive('cp.tar')));
      assert.equal(r.status.code, grpc.status.NOT_FOUND);
      assert.match(r.status.details, /"sha256:1234", "docker.io\/library\/busybox:latest"/);
      assert.deepEqual(restoreDirs(), []);
    } finally {
      images.add('docker.io/library/busybox:latest');
    }
  });

  it('keeps a map entry helper that encodes key and value', () => {
    assert.equal(getString(mapEntry('k', 'v'), 1), 'k');
    assert.equal(getString(mapEntry('k', 'v'), 2), 'v');
  });
});
