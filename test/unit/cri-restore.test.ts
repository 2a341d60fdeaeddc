import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../common/proto.js';
import { RESTORE_ANNOTATION, checkRestoreDir } from '../../shim/archive/index.js';
import {
  ContainerdCheckpointImages, CriRestore, appendField, editField, getField, getNestedString, getRepeated, getString, mapEntry, setString,
} from '../../shim/cri/index.js';
import { CriProxyRig, criProxyRig } from './helpers/cri-proxy-rig.js';
import { quietLogs } from './helpers/quiet-logs.js';
import { goodArchiveEntries, tarOf } from './helpers/tar-builder.js';

const raw = (b: Buffer): Buffer => b;
const CREATE = '/runtime.v1.RuntimeService/CreateContainer';
const REMOVE = '/runtime.v1.RuntimeService/RemoveContainer';
const IMAGE_STATUS = '/runtime.v1.ImageService/ImageStatus';
const cri = () => loadProtos('cri');

/** What the fake containerd has and saw. */
interface FakeState {
  /** CRI image references it knows -> their id and tags (ImageStatus). */
  images: Map<string, { id: string; tags: string[] }>;
  /** containerd image names -> target descriptor (images service). */
  ctrdImages: Map<string, { media_type: string; digest: string; size: number; annotations?: Record<string, string> }>;
  /** Content blobs by digest. */
  blobs: Map<string, Buffer>;
  creates: Buffer[];
  removes: string[];
  gets: string[];
}

function newState(): FakeState {
  return { images: new Map(), ctrdImages: new Map(), blobs: new Map(), creates: [], removes: [], gets: [] };
}

/** A fake containerd: its CRI (CreateContainer, RemoveContainer, ImageStatus) and its native images Get and content Read. */
async function fakeContainerd(socket: string, st: FakeState): Promise<grpc.Server> {
  const server = new grpc.Server();
  const ctrd = loadProtos('containerd');
  server.register(CREATE, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    st.creates.push(call.request);
    cb(null, setString(Buffer.alloc(0), 1, `ctr${st.creates.length}`));
  }, raw, raw, 'unary');
  server.register(REMOVE, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    st.removes.push(getString(call.request, 1) ?? '');
    cb(null, Buffer.alloc(0));
  }, raw, raw, 'unary');
  server.register(IMAGE_STATUS, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    const image = st.images.get(getNestedString(call.request, [1, 1]) ?? '');
    const t = cri().lookupType('runtime.v1.ImageStatusResponse');
    cb(null, Buffer.from(t.encode(t.fromObject(image ? { image: { id: image.id, repo_tags: image.tags } } : {})).finish()));
  }, raw, raw, 'unary');
  server.register('/containerd.services.images.v1.Images/Get', (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    const name = getString(call.request, 1) ?? '';
    st.gets.push(`${call.metadata.get('containerd-namespace')[0]}/${name}`);
    const target = st.ctrdImages.get(name);
    if (!target) return cb({ code: grpc.status.NOT_FOUND, details: `image "${name}": not found` });
    const t = ctrd.lookupType('containerd.services.images.v1.GetImageResponse');
    cb(null, Buffer.from(t.encode(t.fromObject({ image: { name, target } })).finish()));
  }, raw, raw, 'unary');
  server.register('/containerd.services.content.v1.Content/Read', (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
    const digest = getString(call.request, 1) ?? '';
    const blob = st.blobs.get(digest);
    if (!blob) {
      call.emit('error', { code: grpc.status.NOT_FOUND, details: `content digest ${digest}: not found` });
      return;
    }
    const t = ctrd.lookupType('containerd.services.content.v1.ReadContentResponse');
    for (let off = 0; off < blob.length; off += 1000) call.write(Buffer.from(t.encode(t.fromObject({ offset: off, data: blob.subarray(off, off + 1000) })).finish()));
    call.end();
  }, raw, raw, 'serverStream');
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return server;
}

/** Puts a blob in the fake content store; its descriptor. */
function blob(st: FakeState, mediaType: string, data: Buffer | object, extra: object = {}): { mediaType: string; digest: string; size: number } {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(JSON.stringify(data));
  const digest = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
  st.blobs.set(digest, bytes);
  return { mediaType, digest, size: bytes.length, ...extra };
}

/**
 * A checkpoint image as checkpointctl build and buildah make one: an index
 * (annotated where `at` says) over one manifest whose one layer is the
 * archive's files.
 */
function checkpointImage(st: FakeState, ref: string, layer: Buffer, o: { at?: 'index' | 'manifest' | 'none'; gzip?: boolean; layers?: number } = {}): void {
  const at = o.at ?? 'index';
  const annotations = { 'org.criu.checkpoint.container.name': 'counter' };
  const config = blob(st, 'application/vnd.oci.image.config.v1+json', { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const layerDesc = blob(st, o.gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar', o.gzip ? zlib.gzipSync(layer) : layer);
  const manifest = blob(st, 'application/vnd.oci.image.manifest.v1+json', {
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: Array(o.layers ?? 1).fill(layerDesc),
    ...(at === 'manifest' ? { annotations } : {}),
  }, { platform: { architecture: 'amd64', os: 'linux' } });
  const index = blob(st, 'application/vnd.oci.image.index.v1+json', {
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [manifest], ...(at === 'index' ? { annotations } : {}),
  });
  const id = `sha256:${crypto.createHash('sha256').update(ref).digest('hex')}`;
  st.images.set(ref, { id, tags: [`docker.io/library/${ref}`] });
  st.ctrdImages.set(`docker.io/library/${ref}`, { media_type: index.mediaType, digest: index.digest, size: index.size });
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
  let rig: CriProxyRig;
  let client: grpc.Client;
  const st = newState();
  const { creates, removes } = st;
  st.images.set('docker.io/library/busybox:latest', { id: 'sha256:b0x', tags: ['docker.io/library/busybox:latest'] });
  quietLogs();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cri-restore-'));
    root = path.join(dir, 'restore');
    rig = await criProxyRig(dir, (socket) => fakeContainerd(socket, st), (upstream) => new CriRestore(upstream, { root }).intercepts());
    client = rig.client;
  });
  after(async () => {
    await rig?.close();
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
    const busybox = st.images.get('docker.io/library/busybox:latest')!;
    st.images.delete('docker.io/library/busybox:latest');
    try {
      const r = await call(client, CREATE, createRequest(archive('cp.tar')));
      assert.equal(r.status.code, grpc.status.NOT_FOUND);
      assert.match(r.status.details, /"sha256:1234", "docker.io\/library\/busybox:latest"/);
      assert.deepEqual(restoreDirs(), []);
    } finally {
      st.images.set('docker.io/library/busybox:latest', busybox);
    }
  });

  it('keeps a map entry helper that encodes key and value', () => {
    assert.equal(getString(mapEntry('k', 'v'), 1), 'k');
    assert.equal(getString(mapEntry('k', 'v'), 2), 'v');
  });
});

describe('CRI restore: CreateContainer from a checkpoint image (fake containerd images and content services)', () => {
  let dir: string;
  let root: string;
  let rig: CriProxyRig;
  let client: grpc.Client;
  const st = newState();
  quietLogs();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cri-ckimage-'));
    root = path.join(dir, 'restore');
    st.images.set('docker.io/library/busybox:latest', { id: 'sha256:b0x', tags: ['docker.io/library/busybox:latest'] });
    const plain = blob(st, 'application/vnd.oci.image.index.v1+json', { schemaVersion: 2, manifests: [] });
    st.ctrdImages.set('docker.io/library/busybox:latest', { media_type: plain.mediaType, digest: plain.digest, size: plain.size });
    const good = tarOf(...goodArchiveEntries());
    checkpointImage(st, 'cp:index', good);
    checkpointImage(st, 'cp:manifest', good, { at: 'manifest', gzip: true });
    checkpointImage(st, 'cp:unmarked', good, { at: 'none' });
    checkpointImage(st, 'cp:evil', tarOf(...goodArchiveEntries(), { name: 'spec.link', type: '2', linkname: '/etc/shadow' }));
    checkpointImage(st, 'cp:layers', good, { layers: 2 });
    rig = await criProxyRig(dir, (socket) => fakeContainerd(socket, st),
      (upstream) => new CriRestore(upstream, { root, checkpointImage: new ContainerdCheckpointImages(upstream) }).intercepts());
    client = rig.client;
  });
  after(async () => {
    await rig?.close();
  });
  beforeEach(() => {
    st.creates.length = 0;
    st.gets.length = 0;
  });

  it('restores from an image annotated on its index (plain layer) or on its manifest (gzip layer)', async () => {
    for (const ref of ['cp:index', 'cp:manifest']) {
      const r = await call(client, CREATE, createRequest(ref));
      assert.equal(r.status.code, grpc.status.OK, `${ref}: ${r.status.details}`);
      const sent = st.creates[st.creates.length - 1];
      assert.equal(getNestedString(sent, [2, 2, 1]), 'docker.io/library/busybox:latest', ref);
      const restoreDir = annotations(sent).get(RESTORE_ANNOTATION)!;
      assert.ok(fs.existsSync(path.join(restoreDir, 'checkpoint', 'pages-1.img')), ref);
    }
    assert.ok(st.gets.every((g) => g.startsWith('k8s.io/')), 'in the CRI namespace');
  });

  it('forwards an ordinary image unchanged, looking at it once', async () => {
    const plain = createRequest('docker.io/library/busybox:latest', { command: ['sh'] });
    const unmarked = createRequest('cp:unmarked', { command: ['sh'] });
    for (const req of [plain, plain, unmarked]) assert.equal((await call(client, CREATE, req)).status.code, grpc.status.OK);
    assert.deepEqual(st.creates, [plain, plain, unmarked]);
    assert.deepEqual(st.gets, ['k8s.io/docker.io/library/busybox:latest', 'k8s.io/docker.io/library/cp:unmarked']);
  });

  it('refuses a hostile checkpoint image, and one of several layers', async () => {
    const evil = await call(client, CREATE, createRequest('cp:evil'));
    assert.equal(evil.status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(evil.status.details, /"spec.link": symlink/);
    const layers = await call(client, CREATE, createRequest('cp:layers'));
    assert.equal(layers.status.code, grpc.status.UNIMPLEMENTED);
    assert.match(layers.status.details, /2 layers/);
    assert.equal(st.creates.length, 0);
  });
});
