import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImageStore } from '../../introspect/backend/index.js';
import { PRODUCT_CLI, cli, missingComponent } from '../helpers/cli.js';

/** The staging directory: never in the guest's sight, never anyone else's. */
describe('ovmigrate serve: the staging directory', () => {
  let root: string;
  let images: string;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovmigrate-staging-'));
    images = path.join(root, 'share');
    fs.mkdirSync(images);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('--mem needs an explicit --staging (the VM\'s shares are unknown)', async () => {
    const r = await cli(['serve', '--mem', path.join(root, 'ram'), '--qmp', path.join(root, 'qmp'), '--channel', path.join(root, 'ch'), '--images', images],
      { entry: PRODUCT_CLI, timeoutMs: 30_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--mem needs --staging DIR/);
    assert.deepEqual(fs.readdirSync(root), ['share'], 'no default staging made');
  });

  it('refuses staging that is DIR, inside it, around it, or leads into it through a symlink', () => {
    fs.mkdirSync(path.join(images, 'sub'));
    fs.symlinkSync(images, path.join(root, 'link'));
    for (const staging of [images, path.join(images, 'staging'), root, path.join(root, 'link', 'x')]) {
      assert.throws(() => ImageStore.open(images, { staging }), { code: 'INVALID_ARGUMENT' }, staging);
    }
    assert.deepEqual(fs.readdirSync(images), ['sub'], 'nothing made in DIR');
  });

  it('refuses a staging path that is a symlink, a file, or writable by others', () => {
    const target = path.join(root, 'target');
    fs.mkdirSync(target, { mode: 0o700 });
    fs.symlinkSync(target, path.join(root, 'symlink'));
    fs.writeFileSync(path.join(root, 'file'), '');
    fs.mkdirSync(path.join(root, 'open'));
    fs.chmodSync(path.join(root, 'open'), 0o777);
    for (const name of ['symlink', 'file', 'open']) {
      assert.throws(() => ImageStore.open(images, { staging: path.join(root, name) }), /staging directory/, name);
    }
  });

  it('makes a new staging directory, or an existing one of its own, mode 0700', () => {
    const fresh = path.join(root, 'fresh');
    ImageStore.open(images, { staging: fresh }).close();
    assert.equal(fs.statSync(fresh).mode & 0o777, 0o700);
    const mine = path.join(root, 'mine');
    fs.mkdirSync(mine, { mode: 0o755 });
    ImageStore.open(images, { staging: mine }).close();
    assert.equal(fs.statSync(mine).mode & 0o777, 0o700);
  });

  it('refuses staging on another file system (renames cannot cross it)', function () {
    if (fs.statSync('/dev/shm').dev === fs.statSync(root).dev) missingComponent(this, `${root} is on /dev/shm's file system: the test needs a second one`);
    const other = fs.mkdtempSync('/dev/shm/ovmigrate-staging-');
    try {
      assert.throws(() => ImageStore.open(images, { staging: path.join(other, 's') }), /not on the file system of --images/);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
