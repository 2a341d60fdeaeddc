import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MAX_ARCHIVE_METADATA_BYTES, backendMethods, type CheckpointRequest } from '../../common/backend-api.js';
import { AlreadyExistsError, BadDataError, InvalidArgumentError } from '../../common/errors.js';
import { StatusCode, TtrpcClient, TtrpcServer } from '../../common/ttrpc/index.js';
import { BackendService, DumpFn, ImageStore } from '../../introspect/backend/index.js';
import type { DumpReport } from '../../introspect/dump/dump.js';
import type { BackendClient } from '../../shim/channel/client.js';
import { checkArchiveOptions, placeArchive, type ArchiveOptions } from '../../shim/containerd/archive-checkpoint.js';
import { CheckpointJob, Checkpointer } from '../../shim/containerd/checkpoint.js';
import type { Runc } from '../../shim/containerd/runc.js';
import { STAGED_ARCHIVE, STAGED_IMAGES, stageMetadata } from '../../shim/cri/host-archive.js';
import { duplexPair } from './helpers/duplex-pair.js';
import { quietLogs } from './helpers/quiet-logs.js';
import { rejectsWithStatus } from './helpers/ttrpc-assert.js';
import { missingComponent } from '../helpers/cli.js';

/** `tar -tv` of an archive: "<mode> <size> <name>" per entry, in archive order. */
function listing(file: string): string[] {
  return execFileSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8' }).trim().split('\n').map((l) => {
    const f = l.split(/\s+/);
    return `${f[0]} ${f[2]} ${f[5]}`;
  });
}

const extract = (file: string, entry: string) => execFileSync('tar', ['-xOf', file, entry]);

/** A dump that writes a few images, stats-dump among them. */
const dumpImages: DumpFn = async (_cgroup, dir) => {
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'inventory.img'), 'inv');
  fs.writeFileSync(path.join(dir, 'pages-1.img'), Buffer.alloc(8192, 7));
  fs.writeFileSync(path.join(dir, 'stats-dump'), 'st');
  return {
    dir, root: 1, processes: [{ pid: 1, vpid: 1, threads: [1], comm: 'sh' }], pagesScanned: 2, pagesWritten: 2, bytesWritten: 8192,
    consistency: 'vm-paused', pauseMs: 1, pagesReread: 0, ms: { plan: 1, memdump: 1, total: 2 },
  } as DumpReport;
};

describe('where the pages go: the host writes the checkpoint archive', () => {
  quietLogs();
  let root: string;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-host-archive-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  describe('the backend (Checkpoint with an archive)', () => {
    let images: string;
    let store: ImageStore;
    let client: TtrpcClient;
    let dumps: number;
    const m = backendMethods();
    const config = Buffer.from('{"ociVersion":"1.2.0"}');
    const archive = { entries: [{ name: 'config.dump', data: Buffer.from('{"id":"c1"}') }, { name: 'status.dump', data: Buffer.from('{}') }, { name: 'rootfs-diff.tar', data: Buffer.alloc(1024) }], spec_from_config: true };
    const checkpoint = (req: Partial<CheckpointRequest> = {}) => m.checkpoint.call(client, { id: 'c1', cgroup: '/k8s/c1', config, archive, ...req });

    beforeEach(() => {
      images = path.join(root, 'share');
      fs.mkdirSync(images);
      store = ImageStore.open(images);
      dumps = 0;
      const service = new BackendService(store, async (...args) => { dumps++; return dumpImages(...args); });
      const server = new TtrpcServer();
      service.register(server);
      const [a, b] = duplexPair();
      void server.serve(b);
      client = new TtrpcClient(a);
    });
    afterEach(() => {
      client.close();
      store.close();
    });

    it('publishes one tar file, 0600, in containerd 2.x\'s layout and order; no image directory is left; release removes it', async () => {
      const reply = await checkpoint();
      assert.match(reply.name, /^[0-9a-f]{32}$/);
      const file = path.join(images, reply.name);
      const st = fs.lstatSync(file);
      assert.ok(st.isFile());
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal(BigInt(st.size), reply.archive_bytes);
      assert.deepEqual(fs.readdirSync(images), [reply.name]);
      assert.deepEqual(fs.readdirSync(store.staging), []);
      assert.deepEqual(listing(file), [
        'drwx------ 0 checkpoint/', '-rw------- 3 checkpoint/inventory.img', '-rw------- 8192 checkpoint/pages-1.img',
        '-rw------- 11 config.dump', '-rw------- 1024 rootfs-diff.tar', `-rw------- ${config.length} spec.dump`,
        '-rw------- 2 stats-dump', '-rw------- 2 status.dump',
      ]);
      assert.deepEqual(extract(file, 'spec.dump'), config);
      assert.deepEqual(extract(file, 'checkpoint/pages-1.img'), Buffer.alloc(8192, 7));
      // The guest's link to it (its archive at location) outlives the release.
      const kept = path.join(images, 'kept.tar');
      fs.linkSync(file, kept);
      await m.release.call(client, { name: reply.name });
      assert.deepEqual(fs.readdirSync(images), ['kept.tar']);
      assert.equal(fs.statSync(kept).size, Number(reply.archive_bytes));
    });

    it('without an archive the answer is an image directory, as before', async () => {
      const reply = await checkpoint({ archive: undefined });
      assert.ok(fs.statSync(path.join(images, reply.name)).isDirectory());
      assert.equal(reply.archive_bytes, 0n);
    });

    it('refuses entry names that are not of the fixed set (paths, spec.dump, twice) and oversized data, before dumping', async () => {
      for (const name of ['../x', '/etc/passwd', 'checkpoint/pages-1.img', 'spec.dump', 'stats-dump', '', 'config.dump/']) {
        await rejectsWithStatus(checkpoint({ archive: { entries: [{ name, data: Buffer.from('x') }] } }), StatusCode.INVALID_ARGUMENT, /archive entry/);
      }
      const twice = { entries: [{ name: 'config.dump', data: Buffer.from('a') }, { name: 'config.dump', data: Buffer.from('b') }] };
      await rejectsWithStatus(checkpoint({ archive: twice }), StatusCode.INVALID_ARGUMENT, /given twice/);
      const big = { entries: [{ name: 'container.log', data: Buffer.alloc(MAX_ARCHIVE_METADATA_BYTES - config.length + 1) }] };
      await rejectsWithStatus(checkpoint({ archive: big }), StatusCode.INVALID_ARGUMENT, /more than the 1048576 bytes/);
      await rejectsWithStatus(checkpoint({ config: Buffer.alloc(0), archive: { entries: [], spec_from_config: true } }), StatusCode.INVALID_ARGUMENT, /no config/);
      assert.equal(dumps, 0);
      assert.deepEqual([fs.readdirSync(images), fs.readdirSync(store.staging)], [[], []]);
    });

    it('a restarted backend removes archives and staged archives left behind', () => {
      const name = 'cd'.repeat(16);
      fs.writeFileSync(path.join(images, name), 'left');
      fs.writeFileSync(path.join(store.staging, `${'ef'.repeat(16)}.tar`), 'left');
      assert.equal(store.removeLeftovers(), 2);
      assert.deepEqual([fs.readdirSync(images), fs.readdirSync(store.staging)], [[], []]);
    });
  });

  describe('the shim (Checkpoint with ArchiveOptions)', () => {
    let share: string;
    let target: string;
    let configFile: string;
    const name = 'ab'.repeat(16);
    const opts: ArchiveOptions = { file: STAGED_ARCHIVE, entries: ['config.dump', 'rootfs-diff.tar', 'status.dump'], spec_from_config: true, images: STAGED_IMAGES };

    beforeEach(() => {
      share = path.join(root, 'share');
      target = path.join(root, 'stage');
      for (const d of [share, target, path.join(root, 'bundle')]) fs.mkdirSync(d);
      fs.writeFileSync(path.join(root, 'bundle', 'config.json'), '{}');
      for (const e of opts.entries) fs.writeFileSync(path.join(target, e), e);
      configFile = path.join(root, 'shim.json');
      fs.writeFileSync(configFile, JSON.stringify({ images: share }));
    });

    function runc(): { runc: Runc; calls: string[] } {
      const calls: string[] = [];
      let state = 'running';
      const r = {
        state: async () => ({ status: state, pid: 1 }),
        pause: async () => { calls.push('pause'); state = 'paused'; return ''; },
        resume: async () => { calls.push('resume'); state = 'running'; return ''; },
        checkpoint: async (_id: string, _b: string, o: { imagePath: string }) => {
          calls.push(`criu ${path.relative(root, o.imagePath)}`);
          fs.mkdirSync(o.imagePath, { recursive: true });
          fs.writeFileSync(path.join(o.imagePath, 'inventory.img'), 'criu');
          return '';
        },
      };
      return { runc: r as unknown as Runc, calls };
    }

    /** A backend writing the archive as a file (or, as an older one, an image directory), recording what it was sent. */
    function backend(kind: 'archive' | 'directory' | 'short') {
      const sent: CheckpointRequest[] = [];
      const released: string[] = [];
      const client = {
        hello: async () => ({ version: 'test', max_request_bytes: 1 << 20, max_concurrent_checkpoints: 2 }),
        checkpoint: async (req: CheckpointRequest) => {
          sent.push(req);
          if (kind === 'directory') {
            fs.mkdirSync(path.join(share, name));
            fs.writeFileSync(path.join(share, name, 'pages-1.img'), 'p');
          } else {
            fs.writeFileSync(path.join(share, name), Buffer.alloc(4096, 1), { mode: 0o600 });
          }
          return { name, pids: [1], pages_written: 1n, bytes_written: 1n, total_ms: 1, pause_ms: 1, archive_bytes: kind === 'directory' ? 0n : kind === 'short' ? 8192n : 4096n };
        },
        release: async (n: string) => { released.push(n); },
        close: () => undefined,
      };
      return { client: client as unknown as BackendClient, sent, released };
    }

    const job = (r: Runc): CheckpointJob => ({ id: 'c1', bundle: path.join(root, 'bundle'), runc: r, cgroup: '/k8s/c1', target, options: { archive: opts } });
    const withBackend = (b: ReturnType<typeof backend>) => new Checkpointer(configFile, { portPresent: () => true, connect: async () => b.client });

    it('sends the staged files and links the host\'s archive into the target: the same file, no byte copied', async () => {
      const { runc: r, calls } = runc();
      const b = backend('archive');
      const report = await withBackend(b).checkpoint(job(r));
      assert.equal(report.archive, 'link');
      assert.deepEqual(b.sent[0].archive?.entries.map((e) => [e.name, Buffer.from(e.data).toString()]), opts.entries.map((e) => [e, e]));
      assert.equal(b.sent[0].archive?.spec_from_config, true);
      assert.equal(fs.statSync(path.join(target, STAGED_ARCHIVE)).ino, fs.statSync(path.join(share, name)).ino);
      assert.deepEqual(calls, ['pause', 'resume']);
      assert.deepEqual(b.released, [name]);
    });

    it('an archive of another size than the backend said: refused, nothing put into the target, thawed, released', async () => {
      const { runc: r, calls } = runc();
      const b = backend('short');
      await assert.rejects(withBackend(b).checkpoint(job(r)), BadDataError);
      assert.deepEqual(fs.readdirSync(target).sort(), [...opts.entries].sort());
      assert.deepEqual(calls, ['pause', 'resume']);
      assert.deepEqual(b.released, [name]);
    });

    it('a backend that answers with an image directory (no archives yet): the images go into the target\'s images directory', async () => {
      const { runc: r } = runc();
      const report = await withBackend(backend('directory')).checkpoint(job(r));
      assert.equal(report.archive, undefined);
      assert.deepEqual(fs.readdirSync(path.join(target, STAGED_IMAGES)), ['pages-1.img']);
      assert.ok(!fs.existsSync(path.join(target, STAGED_ARCHIVE)));
    });

    it('no backend, CRIU in the guest: the images go into the target\'s images directory', async () => {
      const { runc: r, calls } = runc();
      const report = await new Checkpointer(configFile, { portPresent: () => false, connect: async () => assert.fail('no port') }).checkpoint(job(r));
      assert.equal(report.via, 'criu');
      assert.deepEqual(calls, [`criu stage/${STAGED_IMAGES}`]);
    });

    it('options: the file and images directory are one path component, the entries of the fixed set', () => {
      for (const bad of [{ ...opts, file: '../x' }, { ...opts, file: '/tmp/x' }, { ...opts, images: '..' }, { ...opts, entries: ['../../etc/shadow'] }, { ...opts, entries: ['spec.dump'] }, {}]) {
        assert.throws(() => checkArchiveOptions(bad), InvalidArgumentError, JSON.stringify(bad));
      }
      assert.deepEqual(checkArchiveOptions(JSON.parse(JSON.stringify(opts))), opts);
    });

    it('an entry that is a symlink is not followed', async () => {
      fs.rmSync(path.join(target, 'status.dump'));
      fs.symlinkSync('/etc/passwd', path.join(target, 'status.dump'));
      const { runc: r, calls } = runc();
      const b = backend('archive');
      await assert.rejects(withBackend(b).checkpoint(job(r)), /ELOOP/);
      assert.equal(b.sent.length, 0);
      assert.deepEqual(calls, []);
    });
  });

  describe('placing the archive', () => {
    it('copies it across file systems (the kernel copies), exclusively', async function () {
      if (fs.statSync('/dev/shm').dev === fs.statSync(root).dev) missingComponent(this, `${root} is on /dev/shm's file system: the test needs a second one`);
      const from = path.join('/dev/shm', `ovm-host-archive-${process.pid}`);
      fs.writeFileSync(from, Buffer.alloc(100_000, 3));
      try {
        const to = path.join(root, 'a.tar');
        assert.equal(await placeArchive(from, to, 100_000n), 'copy');
        assert.deepEqual(fs.readFileSync(to), Buffer.alloc(100_000, 3));
        await assert.rejects(placeArchive(from, to, 100_000n), AlreadyExistsError);
        assert.deepEqual(fs.readFileSync(to), Buffer.alloc(100_000, 3));
      } finally {
        fs.rmSync(from, { force: true });
      }
    });
  });

  describe('the CRI layer\'s staged files', () => {
    it('stages config.dump, status.dump and a copy of the log; asks for nothing when they exceed one request', async () => {
      const stage = path.join(root, 'stage');
      fs.mkdirSync(stage);
      const rootfsDiff = path.join(stage, 'rootfs-diff.tar');
      fs.writeFileSync(rootfsDiff, Buffer.alloc(1024));
      const log = path.join(root, 'c.log');
      fs.writeFileSync(log, 'line\n');
      const o = await stageMetadata(stage, { configDump: Buffer.from('{}'), statusDump: Buffer.from('{"id":1}'), containerLog: log, rootfsDiff, specBytes: 100 });
      assert.deepEqual(o, { file: STAGED_ARCHIVE, entries: ['config.dump', 'container.log', 'rootfs-diff.tar', 'status.dump'], spec_from_config: true, images: STAGED_IMAGES });
      assert.equal(fs.readFileSync(path.join(stage, 'container.log'), 'utf8'), 'line\n');
      assert.equal(fs.statSync(path.join(stage, 'config.dump')).mode & 0o777, 0o600);
      const other = path.join(root, 'stage2');
      fs.mkdirSync(other);
      fs.writeFileSync(path.join(other, 'rootfs-diff.tar'), Buffer.alloc(MAX_ARCHIVE_METADATA_BYTES));
      assert.equal(await stageMetadata(other, { configDump: Buffer.from('{}'), statusDump: Buffer.from('{}'), rootfsDiff: path.join(other, 'rootfs-diff.tar'), specBytes: 100 }), undefined);
    });
  });
});
