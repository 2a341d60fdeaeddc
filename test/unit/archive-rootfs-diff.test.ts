import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { ArchiveRefusedError } from '../../common/errors.js';
import { applyRootfsDiff, DEFAULT_DIFF_LIMITS } from '../../shim/archive/index.js';
import { tarOf, type TarSpec } from './helpers/tar-builder.js';

describe('checkpoint archive: applying rootfs-diff.tar onto the new rootfs', () => {
  let work: string;
  let rootfs: string;
  let outside: string;
  let diff: string;
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-diff-'));
    rootfs = path.join(work, 'rootfs');
    outside = path.join(work, 'outside');
    diff = path.join(work, 'rootfs-diff.tar');
    fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'etc', 'keep'), 'lower');
    fs.mkdirSync(path.join(rootfs, 'var', 'cache'), { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'var', 'cache', 'old'), 'lower');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'target'), 'outside');
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  const apply = (entries: TarSpec[], gzip = false) => {
    const tar = tarOf(...entries);
    fs.writeFileSync(diff, gzip ? zlib.gzipSync(tar) : tar);
    return applyRootfsDiff(diff, rootfs);
  };
  const read = (p: string) => fs.readFileSync(path.join(rootfs, p), 'utf8');
  const outsideUntouched = () => {
    assert.deepEqual(fs.readdirSync(outside), ['target']);
    assert.equal(fs.readFileSync(path.join(outside, 'target'), 'utf8'), 'outside');
  };

  async function refused(entries: TarSpec[], entry: string, why: RegExp): Promise<void> {
    await assert.rejects(apply(entries), (err: unknown) => {
      assert.ok(err instanceof ArchiveRefusedError, String(err));
      assert.equal(err.entry, `rootfs-diff.tar: ${entry}`);
      assert.match(err.reason, why);
      return true;
    });
    outsideUntouched();
  }

  it('applies files, directories, symlinks and hardlinks with their modes and owners, gzip or not', async () => {
    for (const gzip of [false, true]) {
      const result = await apply([
        { name: 'data/', type: '5', mode: 0o750 },
        { name: 'data/count', body: '41\n', mode: 0o640, uid: 1000, gid: 1000 },
        { name: 'data/link', type: '2', linkname: '/etc/keep' },
        { name: 'data/hard', type: '1', linkname: 'data/count' },
        { name: 'new/deep/file', body: 'implicit parents' },
      ], gzip);
      assert.equal(result.entries, 5);
      assert.equal(read('data/count'), '41\n');
      const st = fs.statSync(path.join(rootfs, 'data/count'));
      assert.equal(st.mode & 0o7777, 0o640);
      assert.equal(st.uid, 1000);
      assert.equal(st.nlink, 2);
      assert.equal(fs.statSync(path.join(rootfs, 'data')).mode & 0o7777, 0o750);
      assert.equal(fs.readlinkSync(path.join(rootfs, 'data/link')), '/etc/keep');
      assert.equal(read('new/deep/file'), 'implicit parents');
    }
  });

  it('honours whiteouts: .wh.NAME removes NAME, an opaque directory keeps only what the diff puts there', async () => {
    await apply([
      { name: 'etc/.wh.keep', body: '' },
      { name: 'var/cache/new', body: 'upper' },
      { name: 'var/cache/.wh..wh..opq', body: '' },
    ]);
    assert.equal(fs.existsSync(path.join(rootfs, 'etc/keep')), false);
    assert.deepEqual(fs.readdirSync(path.join(rootfs, 'var/cache')), ['new']);
  });

  it('refuses to write through a symlink already in the rootfs (GNU tar would follow it)', async () => {
    fs.symlinkSync(outside, path.join(rootfs, 'escape'));
    await refused([{ name: 'escape/pwned', body: 'x' }], 'escape/pwned', /goes through escape, a symlink in the rootfs/);
    fs.symlinkSync('../../outside', path.join(rootfs, 'etc', 'rel'));
    await refused([{ name: 'etc/rel/pwned', body: 'x' }], 'etc/rel/pwned', /symlink/);
    await refused([{ name: 'escape/.wh.target', body: '' }], 'escape/.wh.target', /symlink/);
    await refused([{ name: 'escape/.wh..wh..opq', body: '' }], 'escape/.wh..wh..opq', /symlink/);
  });

  it('refuses to write through a symlink the diff itself made before', async () => {
    await refused([
      { name: 'evil', type: '2', linkname: outside },
      { name: 'evil/pwned', body: 'x' },
    ], 'evil/pwned', /goes through evil, a symlink/);
  });

  it('replaces a symlink at the final component instead of writing through it', async () => {
    fs.symlinkSync(path.join(outside, 'target'), path.join(rootfs, 'file'));
    fs.symlinkSync(outside, path.join(rootfs, 'dir'));
    await apply([
      { name: 'file', body: 'inside' },
      { name: 'dir/', type: '5', mode: 0o755 },
      { name: 'dir/x', body: 'inside too' },
    ]);
    assert.equal(read('file'), 'inside');
    assert.equal(fs.lstatSync(path.join(rootfs, 'dir')).isDirectory(), true);
    assert.equal(read('dir/x'), 'inside too');
    outsideUntouched();
  });

  it('refuses entries and hardlinks that leave the rootfs', async () => {
    await refused([{ name: '../outside/pwned', body: 'x' }], '../outside/pwned', /"\.\."/);
    await refused([{ name: '/etc/pwned', body: 'x' }], '/etc/pwned', /absolute/);
    await refused([{ name: 'h', type: '1', linkname: '../outside/target' }], 'h', /"\.\."/);
    await refused([{ name: 'h', type: '1', linkname: '/etc/keep' }], 'h', /absolute/);
    fs.symlinkSync(outside, path.join(rootfs, 'escape'));
    await refused([{ name: 'h', type: '1', linkname: 'escape/target' }], 'h', /symlink/);
    fs.symlinkSync(path.join(outside, 'target'), path.join(rootfs, 'sym'));
    await refused([{ name: 'h', type: '1', linkname: 'sym' }], 'h', /not a regular file/);
    await refused([{ name: 'h', type: '1', linkname: 'nope' }], 'h', /not a regular file/);
  });

  it('refuses devices and FIFOs, and a diff over its limits', async () => {
    await refused([{ name: 'dev/null', type: '3' }], 'dev/null', /char device/);
    await refused([{ name: 'dev/sda', type: '4' }], 'dev/sda', /block device/);
    await refused([{ name: 'fifo', type: '6' }], 'fifo', /FIFO/);
    fs.writeFileSync(diff, tarOf({ name: 'big', body: Buffer.alloc(2000) }));
    await assert.rejects(applyRootfsDiff(diff, rootfs, { ...DEFAULT_DIFF_LIMITS, maxBytes: 1000 }), (err: unknown) =>
      err instanceof ArchiveRefusedError && /over 1000 bytes/.test(err.reason));
    fs.writeFileSync(diff, zlib.gzipSync(Buffer.from('not a tar at all, but gzip')).subarray(0, 20));
    await assert.rejects(applyRootfsDiff(diff, rootfs), ArchiveRefusedError);
  });
});
