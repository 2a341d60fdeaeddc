import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AlreadyExistsError, BadDataError, FailedPreconditionError, InvalidArgumentError, UnsupportedError } from '../../common/errors.js';
import { checkLocation, configDump, criContainerName, goTime, writeArchive, writeExclusive } from '../../shim/cri/checkpoint-archive.js';
import { encodeCri, goJson } from '../../shim/cri/cri-messages.js';
import { opaqueDirs, overlayUpperDir, writeRootfsDiff } from '../../shim/cri/rootfs-diff.js';
import { TarWriter } from '../../common/tar/index.js';
import { requireRoot } from '../helpers/cli.js';

/** `tar -tv` of an archive, one line per entry: "<type><mode> <size> <name>[ -> target]". */
function listing(file: string): string[] {
  return execFileSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)
    .map((l) => {
      const f = l.split(/\s+/);
      return `${f[0]} ${f[2]} ${f.slice(5).join(' ')}`;
    });
}

async function tarOf(file: string, fill: (tar: TarWriter) => Promise<void>): Promise<void> {
  const fh = await fs.promises.open(file, 'wx', 0o600);
  try {
    const tar = new TarWriter(fh);
    await fill(tar);
    await tar.end();
  } finally {
    await fh.close();
  }
}

describe('CRI checkpoint archive (containerd 2.x layout)', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cri-archive-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("config.dump: checkpointctl's ContainerConfig fields, in Go's order, times as encoding/json writes them", () => {
    const json = configDump({
      id: 'abc', name: criContainerName({ name: 'counter', attempt: 2 }, { name: 'pod', namespace: 'default', uid: 'u-1' }),
      image: 'localhost/ovmigrate/busybox:latest', imageRef: 'sha256:00ff', runtime: 'io.containerd.ovmigrate.v1',
      createdAt: 1_796_183_961_532_234_890n, checkpointedAt: 1_796_184_060_965_000_000n,
    }).toString();
    assert.equal(json, JSON.stringify({
      id: 'abc', name: 'counter_pod_default_u-1_2',
      rootfsImage: 'localhost/ovmigrate/busybox:latest', rootfsImageRef: 'sha256:00ff', rootfsImageName: 'localhost/ovmigrate/busybox:latest',
      runtime: 'io.containerd.ovmigrate.v1',
      createdTime: '2026-12-02T03:59:21.53223489Z', checkpointedTime: '2026-12-02T04:01:00.965Z',
      restoredTime: '0001-01-01T00:00:00Z', restored: false,
    }));
    assert.equal(goTime(1_000_000_000n), '1970-01-01T00:00:01Z');
    assert.equal(goTime(0n), '0001-01-01T00:00:00Z');
  });

  it('status.dump: the CRI ContainerStatus as Go encodes the struct (omitempty, sorted maps, int64 as numbers)', () => {
    const bytes = encodeCri('ContainerStatus', {
      id: 'abc', metadata: { name: 'counter', attempt: 0 }, state: 1, created_at: '1796183961532234890', exit_code: 0,
      image: { image: 'busybox' }, labels: { z: '1', a: '2' }, log_path: '/l/c.log',
    });
    assert.equal(goJson('ContainerStatus', bytes),
      '{"id":"abc","metadata":{"name":"counter"},"state":1,"created_at":1796183961532234890,"image":{"image":"busybox"},"labels":{"a":"2","z":"1"},"log_path":"/l/c.log"}');
  });

  it('tar writer: files, directories, symlinks, hard links, long names (ustar prefix and PAX) as GNU tar reads them', async () => {
    const src = path.join(tmp, 'src');
    fs.writeFileSync(src, 'hello');
    const long = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
    const longer = 'x'.repeat(150);
    const out = path.join(tmp, 'a.tar');
    await tarOf(out, async (tar) => {
      await tar.entry({ name: 'dir', type: 'dir', mode: 0o755 });
      await tar.file({ name: 'dir/f', mode: 0o640, size: 5 }, src);
      await tar.data({ name: long, mode: 0o600 }, Buffer.from('12'));
      await tar.data({ name: longer, mode: 0o600 }, Buffer.from('abc'));
      await tar.entry({ name: 'dir/l', type: 'symlink', mode: 0o777, linkname: `../${'t'.repeat(120)}` });
      await tar.entry({ name: 'dir/h', type: 'hardlink', mode: 0o640, linkname: 'dir/f' });
    });
    assert.equal(fs.statSync(out).size % 512, 0);
    assert.deepEqual(listing(out), [
      'drwxr-xr-x 0 dir/', '-rw-r----- 5 dir/f', `-rw------- 2 ${long}`, `-rw------- 3 ${longer}`,
      `lrwxrwxrwx 0 dir/l -> ../${'t'.repeat(120)}`, 'hrw-r----- 0 dir/h link to dir/f',
    ]);
    const x = path.join(tmp, 'x');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xf', out, '-C', x]);
    assert.equal(fs.readFileSync(path.join(x, longer), 'utf8'), 'abc');
    assert.equal(fs.readFileSync(path.join(x, long), 'utf8'), '12');
  });

  it('tar writer: a file that grew is cut at its size, one that shrank is padded; names escaping the archive are refused', async () => {
    const src = path.join(tmp, 'src');
    fs.writeFileSync(src, '0123456789');
    const out = path.join(tmp, 'b.tar');
    await tarOf(out, async (tar) => {
      await tar.file({ name: 'cut', mode: 0o600, size: 4 }, src);
      await tar.file({ name: 'padded', mode: 0o600, size: 12 }, src);
      for (const name of ['../x', '/abs', 'a/../../b', '']) {
        await assert.rejects(tar.data({ name, mode: 0o600 }, Buffer.alloc(0)), InvalidArgumentError);
      }
    });
    const x = path.join(tmp, 'x');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xf', out, '-C', x]);
    assert.equal(fs.readFileSync(path.join(x, 'cut'), 'utf8'), '0123');
    assert.deepEqual(fs.readFileSync(path.join(x, 'padded')), Buffer.concat([Buffer.from('0123456789'), Buffer.alloc(2)]));
  });

  it('the archive: exactly the parts, in name order, 0600; stats-dump moved from the images to the top', async () => {
    const images = path.join(tmp, 'stage', 'checkpoint');
    fs.mkdirSync(images, { recursive: true });
    for (const n of ['pstree.img', 'inventory.img', 'pages-1.img', 'stats-dump']) fs.writeFileSync(path.join(images, n), n);
    const diff = path.join(tmp, 'stage', 'rootfs-diff.tar');
    await tarOf(diff, (tar) => tar.data({ name: 'tmp/count', mode: 0o644 }, Buffer.from('1\n')));
    const log = path.join(tmp, 'c.log');
    fs.writeFileSync(log, 'line\n');
    const location = path.join(tmp, 'cp.tar');
    await writeExclusive(location, (fh) => writeArchive(new TarWriter(fh), {
      images, rootfsDiff: diff, containerLog: log,
      configDump: Buffer.from('{}'), specDump: Buffer.from('{"ociVersion":"1.0.2"}'), statusDump: Buffer.from('{}'),
    }));
    assert.equal(fs.statSync(location).mode & 0o777, 0o600);
    assert.deepEqual(listing(location).map((l) => l.split(' ').slice(0, 1).concat(l.split(' ').slice(2)).join(' ')), [
      'drwx------ checkpoint/', '-rw------- checkpoint/inventory.img', '-rw------- checkpoint/pages-1.img', '-rw------- checkpoint/pstree.img',
      '-rw------- config.dump', '-rw------- container.log', '-rw------- rootfs-diff.tar', '-rw------- spec.dump', '-rw------- stats-dump', '-rw------- status.dump',
    ]);
    assert.deepEqual(fs.readdirSync(tmp).sort(), ['c.log', 'cp.tar', 'stage'], 'no temporary file left');
  });

  it('images that are not flat regular files are refused, and nothing is left at the location', async () => {
    const images = path.join(tmp, 'checkpoint');
    fs.mkdirSync(path.join(images, 'sub'), { recursive: true });
    const location = path.join(tmp, 'cp.tar');
    await assert.rejects(writeExclusive(location, (fh) => writeArchive(new TarWriter(fh), {
      images, rootfsDiff: path.join(tmp, 'none'), configDump: Buffer.alloc(0), specDump: Buffer.alloc(0), statusDump: Buffer.alloc(0),
    })), BadDataError);
    assert.deepEqual(fs.readdirSync(tmp), ['checkpoint']);
  });

  it('exclusive and atomic: an existing location is refused untouched, a failed write leaves nothing, a racing file wins', async () => {
    const location = path.join(tmp, 'cp.tar');
    fs.writeFileSync(location, 'mine');
    assert.throws(() => checkLocation(location), AlreadyExistsError);
    fs.symlinkSync('/nonexistent', path.join(tmp, 'dangling'));
    assert.throws(() => checkLocation(path.join(tmp, 'dangling')), AlreadyExistsError);
    assert.throws(() => checkLocation('relative.tar'), InvalidArgumentError);
    assert.throws(() => checkLocation(path.join(tmp, 'no-dir', 'cp.tar')), FailedPreconditionError);
    await assert.rejects(writeExclusive(location, async (fh) => {
      await fh.write('new');
    }), AlreadyExistsError);
    assert.equal(fs.readFileSync(location, 'utf8'), 'mine');

    const failing = path.join(tmp, 'failing.tar');
    await assert.rejects(writeExclusive(failing, async (fh) => {
      await fh.write('partial');
      throw new Error('disk full');
    }), /disk full/);
    assert.deepEqual(fs.readdirSync(tmp).sort(), ['cp.tar', 'dangling'], 'neither the location nor a temporary file');
  });

  it('rootfs diff: the overlay upper dir from mountinfo; whiteouts as .wh. entries, opaque dirs as .wh..wh..opq', async function () {
    // Spawns python3 (the opaque-dir listing) and mknod.
    this.timeout(30_000);
    const mountinfo = [
      '25 1 0:22 / /run rw - tmpfs tmpfs rw',
      '90 25 0:50 / /run/containerd/b/rootfs rw,relatime - overlay overlay rw,lowerdir=/l/1:/l/2,upperdir=/var/lib/s/7/fs,workdir=/var/lib/s/7/work',
      '91 25 0:51 / /run/containerd/c/rootfs rw - tmpfs tmpfs rw',
      '92 25 0:52 / /run/containerd/d\\040x/rootfs rw - overlay overlay ro,lowerdir=/l/1:/l/2',
    ].join('\n');
    assert.equal(overlayUpperDir('/run/containerd/b/rootfs', mountinfo), '/var/lib/s/7/fs');
    assert.throws(() => overlayUpperDir('/run/containerd/c/rootfs', mountinfo), UnsupportedError);
    assert.throws(() => overlayUpperDir('/run/containerd/d x/rootfs', mountinfo), UnsupportedError);
    assert.throws(() => overlayUpperDir('/nowhere', mountinfo), /no file system is mounted/);

    requireRoot(this); // whiteouts are character devices: mknod needs root
    const upper = path.join(tmp, 'upper');
    fs.mkdirSync(path.join(upper, 'etc', 'opq'), { recursive: true });
    fs.writeFileSync(path.join(upper, 'etc', 'new'), 'x');
    fs.symlinkSync('new', path.join(upper, 'etc', 'link'));
    execFileSync('mknod', [path.join(upper, 'etc', 'gone'), 'c', '0', '0']);
    const opaque = spawnXattr(path.join(upper, 'etc', 'opq'));
    const out = path.join(tmp, 'diff.tar');
    await tarOf(out, (tar) => writeRootfsDiff(tar, upper));
    const names = listing(out).map((l) => l.split(' ').slice(2).join(' '));
    assert.deepEqual(names, ['etc/', 'etc/.wh.gone', 'etc/link -> new', 'etc/new', 'etc/opq/', ...(opaque ? ['etc/opq/.wh..wh..opq'] : [])]);

    // Files alone at the top (a counter's /count): no directory, so none opaque, and no python to ask.
    const flat = path.join(tmp, 'flat');
    fs.mkdirSync(flat);
    fs.writeFileSync(path.join(flat, 'count'), '1\n');
    execFileSync('mknod', [path.join(flat, 'gone'), 'c', '0', '0']);
    assert.deepEqual([...await opaqueDirs(flat)], []);
    const flatOut = path.join(tmp, 'flat.tar');
    await tarOf(flatOut, (tar) => writeRootfsDiff(tar, flat));
    assert.deepEqual(listing(flatOut).map((l) => l.split(' ').slice(2).join(' ')), ['count', '.wh.gone']);
  });
});

/** Marks a directory opaque as overlayfs does (trusted.* needs root and a file system that keeps it); false where it cannot. */
function spawnXattr(dir: string): boolean {
  try {
    execFileSync('python3', ['-c', 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
