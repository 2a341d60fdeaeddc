import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ArchiveRefusedError, FailedPreconditionError, InvalidArgumentError } from '../../common/errors.js';
import {
  checkRestoreDir, CRI_OWN_MOUNTS, DEFAULT_ARCHIVE_LIMITS, readMetadata, requireBindMounts, unpackArchive, type ArchiveLimits,
} from '../../shim/archive/index.js';
import { TarWriter } from '../../common/tar/index.js';
import { configDump, writeArchive, writeExclusive } from '../../shim/cri/index.js';
import { gnuLongEntry, goodArchiveEntries, paxEntry, tarEntry, tarOf, type TarSpec } from './helpers/tar-builder.js';

describe('checkpoint archive: unpacking a hostile archive', () => {
  let work: string;
  let target: string;
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-archive-'));
    target = path.join(work, 'restore', 'r1');
    fs.mkdirSync(path.dirname(target));
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  const unpack = (tar: Buffer, limits?: ArchiveLimits) => unpackArchive(Readable.from([tar]), target, 'cp.tar', limits);

  /** Every file under `dir`, relative. */
  function tree(dir: string): string[] {
    return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
  }

  /** The archive is refused, naming `entry` and a reason matching `why`; the target is gone and nothing was written beside it. */
  async function refused(tar: Buffer, entry: string, why: RegExp, limits?: ArchiveLimits): Promise<void> {
    await assert.rejects(unpack(tar, limits), (err: unknown) => {
      assert.ok(err instanceof ArchiveRefusedError, `not an ArchiveRefusedError: ${String(err)}`);
      assert.equal(err.entry, entry);
      assert.match(err.reason, why);
      assert.equal(err.code, 'ARCHIVE_REFUSED');
      return true;
    });
    assert.equal(fs.existsSync(target), false, 'the target is removed');
    assert.deepEqual(tree(work), ['restore'], 'nothing was written outside the target');
  }

  const good = () => goodArchiveEntries();

  it('unpacks a good archive into a fresh 0700 directory, files 0600, and reads its metadata', async () => {
    const out = await unpack(tarOf(...good()));
    assert.deepEqual(out.files.sort(), ['config.dump', 'container.log', 'rootfs-diff.tar', 'spec.dump', 'stats-dump', 'status.dump']);
    assert.deepEqual(out.images.sort(), ['inventory.img', 'pages-1.img']);
    assert.equal(fs.statSync(target).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(target, 'checkpoint')).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(target, 'checkpoint', 'pages-1.img')).mode & 0o777, 0o600);
    assert.deepEqual(fs.readFileSync(path.join(target, 'checkpoint', 'pages-1.img')), Buffer.alloc(5000, 7));
    const meta = readMetadata(target);
    assert.equal(meta.config.rootfsImageRef, 'sha256:1234');
    assert.equal(meta.config.rootfsImageName, 'docker.io/library/busybox:latest');
    assert.deepEqual(meta.spec.args, ['sh', '-c', 'counter']);
    assert.equal(meta.statusImage, 'docker.io/library/busybox:latest');
  });

  it('reads the same archive however the stream cuts it', async () => {
    const whole = tarOf(...good());
    for (const size of [1, 7, 511, 513, 4096]) {
      const pieces: Buffer[] = [];
      for (let off = 0; off < whole.length; off += size) pieces.push(whole.subarray(off, off + size));
      const out = await unpackArchive(Readable.from(pieces), target, 'cp.tar');
      assert.deepEqual(out.images.sort(), ['inventory.img', 'pages-1.img'], `pieces of ${size}`);
      assert.deepEqual(fs.readFileSync(path.join(target, 'checkpoint', 'pages-1.img')), Buffer.alloc(5000, 7));
      fs.rmSync(target, { recursive: true });
    }
  });

  it('unpacks what GNU tar writes (./ names) and takes pax and GNU long names', async () => {
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'checkpoint'), { recursive: true });
    for (const e of good()) if (e.type !== '5') fs.writeFileSync(path.join(src, e.name), e.body ?? '');
    const long = `pages-${'9'.repeat(150)}.img`;
    fs.writeFileSync(path.join(src, 'checkpoint', long), 'x');
    const gnu = execFileSync('tar', ['--format=gnu', '-C', src, '-cf', '-', '.']);
    const out = await unpack(gnu);
    assert.ok(out.images.includes(long));
    fs.rmSync(target, { recursive: true });
    const pax = execFileSync('tar', ['--format=pax', '-C', src, '-cf', '-', '.']);
    assert.ok((await unpack(pax)).images.includes(long));
  });

  it('refuses entries that escape the target: "..", absolute, through pax and GNU long names', async () => {
    await refused(tarOf(...good(), { name: '../evil', body: 'x' }), '../evil', /"\.\." component/);
    await refused(tarOf({ name: 'checkpoint/../../evil', body: 'x' }, ...good()), 'checkpoint/../../evil', /"\.\."/);
    await refused(tarOf({ name: '/etc/evil', body: 'x' }, ...good()), '/etc/evil', /absolute path/);
    await refused(tarOf(paxEntry({ path: '../../pax-evil' }), { name: 'innocent', body: 'x' }, ...good()), '../../pax-evil', /"\.\."/);
    await refused(tarOf(gnuLongEntry(`${'../'.repeat(40)}gnu-evil`), { name: 'innocent', body: 'x' }, ...good()), `${'../'.repeat(40)}gnu-evil`, /"\.\."/);
    await refused(tarOf({ name: 'evil', prefix: '..', body: 'x' }, ...good()), '../evil', /"\.\."/);
  });

  it('refuses symlinks, hardlinks, devices and FIFOs', async () => {
    await refused(tarOf({ name: 'checkpoint/', type: '5' }, { name: 'checkpoint/pages-1.img', type: '2', linkname: '/etc/shadow' }, ...good().slice(1)), 'checkpoint/pages-1.img', /symlink \(to "\/etc\/shadow"\)/);
    await refused(tarOf(...good(), { name: 'link', type: '2', linkname: 'config.dump' }), 'link', /symlink/);
    await refused(tarOf(...good(), { name: 'hard', type: '1', linkname: 'config.dump' }), 'hard', /hardlink/);
    await refused(tarOf(...good(), { name: 'tty', type: '3' }), 'tty', /character device/);
    await refused(tarOf(...good(), { name: 'sda', type: '4' }), 'sda', /block device/);
    await refused(tarOf(...good(), { name: 'fifo', type: '6' }), 'fifo', /FIFO/);
  });

  it('refuses anything in checkpoint/ that is not a flat regular file, and other directories', async () => {
    await refused(tarOf(...good(), { name: 'checkpoint/sub/', type: '5' }), 'checkpoint/sub/', /directory other than checkpoint/);
    await refused(tarOf(...good(), { name: 'checkpoint/sub/x.img', body: 'x' }), 'checkpoint/sub/x.img', /not a flat regular file in checkpoint/);
    await refused(tarOf(...good(), { name: 'artifacts/', type: '5' }), 'artifacts/', /directory other than checkpoint/);
    await refused(tarOf(...good(), { name: 'volumes/v.tar', body: 'x' }), 'volumes/v.tar', /nested path/);
    await refused(tarOf({ name: 'checkpoint', body: 'x' }, ...good()), 'checkpoint', /must be a directory/);
    await refused(tarOf(...good(), { name: 'checkpoint/.hidden', body: 'x' }), 'checkpoint/.hidden', /characters/);
  });

  it('refuses oversized metadata, too many entries, too many bytes, a duplicate', async () => {
    const big = Buffer.alloc(DEFAULT_ARCHIVE_LIMITS.maxMetadataBytes + 1, 0x20);
    await refused(tarOf({ name: 'spec.dump', body: big }, ...good().filter((e) => e.name !== 'spec.dump')), 'spec.dump', /metadata of 1048577 bytes/);
    await refused(tarOf(...good()), 'cp.tar', /more than 5 entries/, { ...DEFAULT_ARCHIVE_LIMITS, maxEntries: 5 });
    await refused(tarOf(...good()), 'checkpoint/pages-1.img', /over 1000 bytes/, { ...DEFAULT_ARCHIVE_LIMITS, maxTotalBytes: 1000 });
    await refused(tarOf(...good(), { name: 'config.dump', body: '{}' }), 'config.dump', /appears twice/);
    // A pax header that says its entry is huge is bounded before it is read.
    await refused(tarOf(paxEntry({ size: String(2 ** 40) }), { name: 'stats-dump' }, ...good()), 'stats-dump', /over/);
  });

  it('refuses malformed tars: checksum, truncation, unknown types, oversized pax and long names', async () => {
    await refused(tarOf({ name: 'config.dump', body: '{}', badChecksum: true }), 'cp.tar header 1', /checksum/);
    await refused(Buffer.from('root:$y$secret-hash:19000:0:99999:7:::\n'.padEnd(1024)), 'cp.tar header 1', /not a tar archive/);
    const whole = tarOf(...good());
    await refused(whole.subarray(0, 2048 + 100), 'cp.tar', /ends inside/);
    await refused(whole.subarray(0, whole.length - 1024), 'cp.tar', /without its end-of-archive/);
    await refused(tarOf({ name: 'sparse', type: 'S', body: 'x' }), 'sparse', /unsupported entry type "S"/);
    await refused(tarOf(tarEntry({ name: 'PaxHeaders/x', type: 'x', body: Buffer.alloc(70_000, 0x31) }), ...good()), 'PaxHeaders/x', /pax header of 70000 bytes/);
    await refused(tarOf(gnuLongEntry('a'.repeat(5000)), ...good()), '././@LongLink', /GNU long name of 5001 bytes/);
    await refused(tarOf(tarEntry({ name: 'PaxHeaders/x', type: 'x', body: '999 path=x\n' }), ...good()), 'PaxHeaders/x', /malformed pax record/);
  });

  it('refuses an archive without its metadata or CRIU images', async () => {
    await refused(tarOf(...good().filter((e) => e.name !== 'spec.dump')), 'cp.tar', /config.dump and spec.dump are required/);
    await refused(tarOf(...good().filter((e) => !e.name.startsWith('checkpoint'))), 'cp.tar', /no CRIU images/);
  });

  it('refuses metadata that is not the JSON expected', async () => {
    const withFile = (name: string, body: string): TarSpec[] => [...good().filter((e) => e.name !== name), { name, body }];
    const cases: [string, string, RegExp][] = [
      ['spec.dump', 'not json', /not JSON/],
      ['spec.dump', '[1,2]', /not a JSON object/],
      ['spec.dump', '{"mounts": {"a": 1}}', /mounts is not a list/],
      ['spec.dump', '{"mounts": [{"destination": "rel"}]}', /not an absolute path/],
      ['spec.dump', '{"process": {"args": "sh"}}', /process.args is not a list of strings/],
      ['config.dump', '{"id": "x"}', /names no image/],
      ['config.dump', '{"rootfsImageRef": 7}', /rootfsImageRef is not a string/],
      ['status.dump', '{"image": "busybox"}', /image is not an object/],
    ];
    for (const [name, body, why] of cases) {
      await unpack(tarOf(...withFile(name, body)));
      assert.throws(() => readMetadata(target), (err: unknown) => err instanceof ArchiveRefusedError && err.entry === name && why.test(err.reason), `${name}: ${body}`);
      fs.rmSync(target, { recursive: true });
    }
  });

  it('needs a target that does not exist yet', async () => {
    fs.mkdirSync(target);
    await assert.rejects(unpack(tarOf(...good())), /EEXIST/);
  });
});

describe('checkpoint archive: bind mounts come from the new container, never from the archive', () => {
  const spec = (mounts: { destination: string; type: string; source: string; options: string[] }[]) => ({ args: [], cwd: '/', mounts, annotations: {} });
  const checkpointed = spec([
    { destination: '/proc', type: 'proc', source: 'proc', options: [] },
    { destination: '/etc/hosts', type: 'bind', source: '/var/lib/containerd/sandboxes/x/hosts', options: ['rbind'] },
    { destination: '/data/', type: 'none', source: '/srv/secret', options: ['rbind', 'ro'] },
  ]);

  it('refuses a checkpointed bind mount the new container does not provide, naming it', () => {
    assert.throws(() => requireBindMounts(checkpointed, CRI_OWN_MOUNTS, 'the CreateContainer request'), (err: unknown) =>
      err instanceof FailedPreconditionError && /"\/data\/" \(from "\/srv\/secret"/.test(err.message) && !/\/etc\/hosts"/.test(err.message));
  });

  it('accepts it when the new container mounts something there', () => {
    requireBindMounts(checkpointed, [...CRI_OWN_MOUNTS, '/data'], 'the CreateContainer request');
  });
});

describe('checkpoint archive: the restore directory an annotation names', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-restore-root-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  function restoreDir(name: string, mode = 0o700): string {
    const dir = path.join(root, name);
    fs.mkdirSync(path.join(dir, 'checkpoint'), { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, mode);
    return dir;
  }

  it('takes a private directory directly under the root', () => {
    const dir = restoreDir('r1');
    assert.equal(checkRestoreDir(dir, root), dir);
  });

  it('refuses one elsewhere, through "..", through a symlink, open to others, or without images', () => {
    restoreDir('r1');
    const bad = (dir: string, type: Function) => assert.throws(() => checkRestoreDir(dir, root), type as never, dir);
    bad('/tmp/elsewhere', InvalidArgumentError);
    bad(path.join(root, 'r1', 'checkpoint'), InvalidArgumentError);
    bad(`${root}/../${path.basename(root)}/r1`, InvalidArgumentError);
    bad('r1', InvalidArgumentError);
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-outside-'));
    try {
      fs.mkdirSync(path.join(outside, 'checkpoint'));
      fs.chmodSync(outside, 0o700);
      fs.symlinkSync(outside, path.join(root, 'link'));
      bad(path.join(root, 'link'), InvalidArgumentError);
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
    bad(restoreDir('open', 0o755), FailedPreconditionError);
    fs.mkdirSync(path.join(root, 'empty'), { mode: 0o700 });
    bad(path.join(root, 'empty'), FailedPreconditionError);
    bad(path.join(root, 'missing'), FailedPreconditionError);
  });
});

describe('checkpoint archive: what ovmigrate-cri CheckpointContainer writes, read back', () => {
  let tmp: string;
  beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-archive-rt-'))));
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('unpacks and reads the archive writeArchive makes, long image names and all', async () => {
    const images = path.join(tmp, 'stage', 'checkpoint');
    fs.mkdirSync(images, { recursive: true });
    const long = `pages-${'1'.repeat(120)}.img`;
    for (const n of ['inventory.img', 'pstree.img', long, 'stats-dump']) fs.writeFileSync(path.join(images, n), n);
    const diff = path.join(tmp, 'stage', 'rootfs-diff.tar');
    fs.writeFileSync(diff, tarOf({ name: 'count', body: '7\n' }));
    const location = path.join(tmp, 'cp.tar');
    const config = configDump({ id: 'c1', name: 'counter_pod_default_uid_0', image: 'localhost/ovmigrate/busybox:latest', imageRef: 'sha256:abc', runtime: 'io.containerd.ovmigrate.v1', createdAt: 1_700_000_000_000_000_000n, checkpointedAt: 1_700_000_100_000_000_000n });
    const spec = { ociVersion: '1.0.2', process: { args: ['sh', '-c', 'loop'], cwd: '/' }, mounts: [{ destination: '/etc/hosts', type: 'bind', source: '/var/lib/x/hosts', options: ['rbind', 'rprivate', 'rw'] }] };
    await writeExclusive(location, (fh) => writeArchive(new TarWriter(fh), {
      images, rootfsDiff: diff, configDump: config, specDump: Buffer.from(JSON.stringify(spec)), statusDump: Buffer.from(JSON.stringify({ image: { image: 'localhost/ovmigrate/busybox:latest' } })),
    }));
    const target = path.join(tmp, 'restore');
    const out = await unpackArchive(fs.createReadStream(location), target, location);
    assert.deepEqual(out.images.sort(), ['inventory.img', long, 'pstree.img'].sort());
    assert.ok(out.files.includes('stats-dump'));
    const meta = readMetadata(target);
    assert.equal(meta.config.rootfsImageRef, 'sha256:abc');
    assert.equal(meta.config.rootfsImageName, 'localhost/ovmigrate/busybox:latest');
    assert.deepEqual(meta.spec.args, ['sh', '-c', 'loop']);
    requireBindMounts(meta.spec, CRI_OWN_MOUNTS, 'the CRI');
  });
});
