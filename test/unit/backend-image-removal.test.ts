import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backendMethods } from '../../common/backend-api.js';
import { TtrpcClient, TtrpcServer } from '../../common/ttrpc/index.js';
import { BackendService, DumpFn, ImageStore } from '../../introspect/backend/index.js';
import { ImageDir, removeImageDir } from '../../introspect/dump/image-dir.js';
import { duplexPair } from './helpers/duplex-pair.js';
import { quietLogs } from './helpers/quiet-logs.js';

const FILES = 2000;

/** A dump that writes a flat set of images, as the real one does. */
const flatDump: DumpFn = async (_cgroup, dir) => {
  fs.mkdirSync(dir);
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, `a${i}.img`), 'image');
  return {
    dir, root: 100, processes: [{ pid: 100, vpid: 100, threads: [100], comm: 'sleep' }], pagesScanned: 0, pagesWritten: 0, bytesWritten: 0,
    consistency: 'vm-paused', pauseMs: 0, pagesReread: 0, ms: { plan: 0, memdump: 0, total: 0 },
  };
};

/**
 * A hostile guest that holds an image directory open (its shell's working
 * directory: over virtiofs a guest process can), puts a subdirectory of
 * many files in it, and as soon as anything starts deleting inside that
 * subdirectory swaps it for a symlink to `outside`, a host directory with
 * files of the same names. A remover that walks by path goes on deleting
 * through the symlink, in `outside`.
 */
function hostileGuest(dir: string, outside: string): { child: ChildProcess; ready: Promise<void>; output: () => string } {
  let out = '';
  const sentinels = Array.from({ length: 16 }, (_, i) => `[ -e sub/n${i * 125} ]`).join(' && ');
  const child = spawn('sh', ['-c', `
    mkdir sub && cd sub && seq 0 ${FILES - 1} | sed 's/^/n/' | xargs touch && cd ..
    echo ready
    while ${sentinels}; do :; done
    mv -T sub sub.moved && ln -s '${outside}' sub && echo swapped
    sleep 100`], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', () => out.includes('ready') && resolve());
    child.on('exit', () => reject(new Error(`the guest's shell exited: ${out}`)));
  });
  return { child, ready, output: () => out };
}

function filledDir(dir: string): string[] {
  fs.mkdirSync(dir);
  const names = Array.from({ length: FILES }, (_, i) => `n${i}`);
  for (const n of names) fs.writeFileSync(path.join(dir, n), 'host file');
  return names;
}

describe('ovmigrate serve: removing image directories a guest holds open', function () {
  this.timeout(30_000);
  quietLogs();
  let root: string;
  let images: string;
  let outside: string;
  let store: ImageStore;
  let guest: ChildProcess | undefined;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovmigrate-removal-'));
    images = path.join(root, 'share');
    fs.mkdirSync(images);
    outside = path.join(root, 'host-data');
    filledDir(outside);
    store = ImageStore.open(images, { staging: path.join(root, 'staging') });
  });
  afterEach(() => {
    guest?.kill('SIGKILL');
    guest = undefined;
    store.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('Release deletes no host file through a subdirectory swapped for a symlink mid-removal', async () => {
    const server = new TtrpcServer();
    new BackendService(store, flatDump).register(server);
    const [a, b] = duplexPair();
    void server.serve(b);
    const client = new TtrpcClient(a);
    try {
      const { name } = await backendMethods().checkpoint.call(client, { id: 'web', cgroup: '/default/web', config: Buffer.from('{}') });
      const attack = hostileGuest(path.join(images, name), outside);
      guest = attack.child;
      await attack.ready;
      const released = await backendMethods().release.call(client, { name }).catch((e: unknown) => e);
      const kept = fs.readdirSync(outside).length;
      assert.equal(kept, FILES, `${FILES - kept} host files deleted through the guest's symlink (guest: ${attack.output().trim()})`);
      assert.deepEqual(released, {});
      assert.deepEqual(fs.readdirSync(images), []);
      // The images went; what the guest made that is no regular file was left alone, out of its sight.
      const left = path.join(store.staging, `.released-${name}`);
      assert.deepEqual(fs.readdirSync(left).sort(), ['sub']);
      assert.equal(fs.readdirSync(path.join(left, 'sub')).length, FILES);
      assert.deepEqual(fs.readdirSync(images), []);
    } finally {
      client.close();
    }
  });

  it('removes only regular files, through the descriptor, and leaves symlinks and directories alone', () => {
    const dir = path.join(root, 'staging', 'x');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'core-1.img'), 'img');
    fs.symlinkSync(path.join(outside, 'n1'), path.join(dir, 'n1'));
    fs.symlinkSync(outside, path.join(dir, 'link'));
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'n2'), 'guest');
    const r = removeImageDir(dir);
    assert.equal(r.removed, 1);
    assert.equal(r.gone, false);
    assert.deepEqual(r.left.sort(), ['link', 'n1', 'sub']);
    assert.equal(r.leftCount, 3);
    assert.equal(fs.readdirSync(outside).length, FILES);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'sub')), ['n2']);
  });

  it('unlinks a symlink standing for the directory, not what it points to', () => {
    const dir = path.join(root, 'staging', 'y');
    fs.symlinkSync(outside, dir);
    assert.equal(removeImageDir(dir).gone, true);
    assert.equal(fs.lstatSync(dir, { throwIfNoEntry: false }), undefined);
    assert.equal(fs.readdirSync(outside).length, FILES);
    assert.equal(removeImageDir(dir).gone, true, 'absent is removed');
  });

  it('discards a staged dump without following what was put in it', () => {
    const name = 'c'.repeat(32);
    const staged = store.stagingPath(name);
    fs.mkdirSync(staged);
    fs.writeFileSync(path.join(staged, 'pages-1.img'), 'pages');
    fs.symlinkSync(outside, path.join(staged, 'sub'));
    store.discard(name);
    assert.deepEqual(fs.readdirSync(staged), ['sub']);
    assert.equal(fs.readdirSync(outside).length, FILES);
  });

  it('writes images exclusively and never through a symlink', () => {
    const out = ImageDir.create(path.join(root, 'staging', 'dump'));
    const victim = path.join(outside, 'n0');
    fs.symlinkSync(victim, path.join(out.staging, 'core-1.img'));
    assert.throws(() => out.file('core-1.img', Buffer.from('image')), { code: 'EEXIST' });
    assert.throws(() => out.open('core-1.img'), { code: 'EEXIST' });
    assert.equal(fs.readFileSync(victim, 'utf8'), 'host file');
    out.file('inventory.img', Buffer.from('x'));
    assert.throws(() => out.file('inventory.img', Buffer.from('y')), { code: 'EEXIST' });
    assert.equal(fs.statSync(path.join(out.staging, 'inventory.img')).mode & 0o777, 0o600);
    out.abort();
    assert.equal(fs.existsSync(out.staging), true, 'the symlink put there is left, and so its directory');
    assert.equal(fs.readFileSync(victim, 'utf8'), 'host file');
  });
});
