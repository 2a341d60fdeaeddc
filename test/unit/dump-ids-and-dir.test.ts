import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../../common/errors.js';
import { makeEntry } from '../../introspect/criu/index.js';
import { IdAllocator } from '../../introspect/dump/ids.js';
import { ImageDir } from '../../introspect/dump/image-dir.js';
import { requireRoot } from '../helpers/cli.js';

describe('CRIU-compatible ids', () => {
  it('numbers kernel objects per kind, the dumper first, and knows shared ones', () => {
    const ids = new IdAllocator();
    assert.equal(ids.kobjId('vm', 0n).id, 1);
    assert.equal(ids.kobjId('files', 0n).id, 1);
    assert.deepEqual(ids.kobjId('vm', 0x1000n), { id: 2, fresh: true });
    assert.deepEqual(ids.kobjId('files', 0x2000n), { id: 2, fresh: true });
    assert.deepEqual(ids.kobjId('files', 0x2000n), { id: 2, fresh: false });
  });

  it('numbers namespaces with one counter for all kinds', () => {
    const ids = new IdAllocator();
    assert.deepEqual([ids.nsId(4026531836n), ids.nsId(4026531840n), ids.nsId(4026531836n), ids.nsId(4026532200n)], [1, 2, 1, 3]);
  });

  it('gives an fd one id per struct file, and special files one per inode, except directories and devices', () => {
    const ids = new IdAllocator();
    const bin = { mntId: 20, dev: 0x19, ino: 100n, mode: 0o100755 };
    const dir = { mntId: 20, dev: 0x19, ino: 5n, mode: 0o040755 };
    assert.deepEqual(ids.specialId(bin), { id: 1, fresh: true });
    assert.deepEqual(ids.fileId(0xa0n, { ...bin, ino: 7n }), { id: 2, fresh: true });
    assert.deepEqual(ids.fileId(0xa0n, { ...bin, ino: 7n }), { id: 2, fresh: false });
    assert.deepEqual(ids.specialId(bin), { id: 1, fresh: false }, 'the same binary mapped again');
    assert.deepEqual(ids.specialId({ ...bin, ino: 7n }), { id: 2, fresh: false }, 'a file opened as an fd first');
    assert.deepEqual(ids.specialId(dir), { id: 3, fresh: true });
    assert.deepEqual(ids.specialId(dir), { id: 4, fresh: true }, 'criu/file-ids.c treats S_IFDIR as a device: a new id each time');
    assert.equal(ids.cgSetId('/').id, 1);
    assert.deepEqual(ids.cgSetId('/ovm'), { id: 2, fresh: true });
  });
});

describe('image directory', () => {
  let base: string;
  beforeEach(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-imgdir-'));
  });
  afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

  const inventory = () => [makeEntry('inventory_entry', { img_version: 2, fdinfo_per_id: true })];

  it('shows nothing under DIR until commit, then all images at once', () => {
    const target = path.join(base, 'img');
    const dir = ImageDir.create(target);
    dir.image('INVENTORY', inventory());
    dir.file('extra', Buffer.from('x'));
    assert.ok(!fs.existsSync(target));
    assert.equal(dir.size(), fs.statSync(path.join(dir.staging, 'inventory.img')).size + 1);
    dir.commit();
    assert.deepEqual(fs.readdirSync(target).sort(), ['extra', 'inventory.img']);
    assert.deepEqual(fs.readdirSync(base), ['img']);
  });

  it('fills an existing empty directory and keeps its mode', () => {
    const target = path.join(base, 'img');
    fs.mkdirSync(target, { mode: 0o711 });
    const dir = ImageDir.create(target);
    dir.image('INVENTORY', inventory());
    dir.commit();
    assert.equal(fs.statSync(target).mode & 0o777, 0o711);
    assert.deepEqual(fs.readdirSync(target), ['inventory.img']);
  });

  it('leaves DIR as it was on abort', () => {
    const target = path.join(base, 'img');
    fs.mkdirSync(target);
    const dir = ImageDir.create(target);
    dir.image('INVENTORY', inventory());
    dir.abort();
    assert.deepEqual(fs.readdirSync(target), []);
    assert.deepEqual(fs.readdirSync(base), ['img']);
  });

  it('refuses a non-empty directory, a file, and names that leave the directory', () => {
    const full = path.join(base, 'full');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'old.img'), '');
    assert.throws(() => ImageDir.create(full), FailedPreconditionError);
    fs.writeFileSync(path.join(base, 'file'), '');
    assert.throws(() => ImageDir.create(path.join(base, 'file')), InvalidArgumentError);
    const dir = ImageDir.create(path.join(base, 'ok'));
    assert.throws(() => dir.file('../escape', Buffer.alloc(1)), InvalidArgumentError);
    assert.throws(() => dir.file('.hidden', Buffer.alloc(1)), InvalidArgumentError);
    dir.abort();
  });

  it('moves images into a DIR that is a mount point of its own', function () {
    requireRoot(this);
    const target = path.join(base, 'mnt');
    fs.mkdirSync(target);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', target]);
    try {
      const dir = ImageDir.create(target);
      assert.ok(dir.staging.startsWith(target + '/'));
      dir.image('INVENTORY', inventory());
      dir.commit();
      assert.deepEqual(fs.readdirSync(target), ['inventory.img']);
    } finally {
      execFileSync('umount', [target]);
    }
  });
});
