import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ArchiveRefusedError, FailedPreconditionError, InvalidArgumentError } from '../../common/errors.js';
import { RESTORE_ANNOTATION, unpackArchive } from '../../shim/archive/index.js';
import { bundleRestore, prepareBundleRestore } from '../../shim/containerd/bundle-restore.js';
import { goodArchiveEntries, tarOf } from './helpers/tar-builder.js';

describe("shim: a Create that ovmigrate-cri's annotation turns into a restore", () => {
  let work: string;
  let root: string;
  let bundle: string;
  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-bundle-restore-'));
    root = path.join(work, 'restore');
    bundle = path.join(work, 'bundle');
    fs.mkdirSync(root, { mode: 0o700 });
    fs.mkdirSync(path.join(bundle, 'rootfs', 'data'), { recursive: true });
    fs.writeFileSync(path.join(bundle, 'rootfs', 'data', 'count'), '0\n');
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  function writeSpec(annotations: Record<string, string>, mounts: string[] = ['/proc', '/etc/hosts']): void {
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify({ annotations, mounts: mounts.map((destination) => ({ destination })) }));
  }

  async function unpacked(entries = goodArchiveEntries()): Promise<string> {
    const dir = path.join(root, 'r1');
    await unpackArchive(Readable.from([tarOf(...entries)]), dir, 'cp.tar');
    return dir;
  }

  it('creates fresh without the annotation', () => {
    writeSpec({ other: 'x' });
    assert.equal(bundleRestore(bundle, root), undefined);
  });

  it('restores from the images of the directory it names, with the rw changes on the rootfs', async () => {
    const dir = await unpacked();
    writeSpec({ [RESTORE_ANNOTATION]: dir });
    const restore = bundleRestore(bundle, root)!;
    assert.deepEqual(restore, { dir, images: path.join(dir, 'checkpoint') });
    await prepareBundleRestore(restore, bundle);
    assert.equal(fs.readFileSync(path.join(bundle, 'rootfs', 'data', 'count'), 'utf8'), '41\n');
  });

  it('refuses a directory outside the restore root, or one opened to others', async () => {
    const dir = await unpacked();
    writeSpec({ [RESTORE_ANNOTATION]: '/etc' });
    assert.throws(() => bundleRestore(bundle, root), InvalidArgumentError);
    writeSpec({ [RESTORE_ANNOTATION]: `${dir}/../r1` });
    assert.throws(() => bundleRestore(bundle, root), InvalidArgumentError);
    fs.chmodSync(dir, 0o755);
    writeSpec({ [RESTORE_ANNOTATION]: dir });
    assert.throws(() => bundleRestore(bundle, root), FailedPreconditionError);
  });

  it("refuses a checkpointed bind mount the container's config.json does not have", async () => {
    const dir = await unpacked(goodArchiveEntries({ mounts: [{ destination: '/data', type: 'bind', source: '/srv/x', options: ['rbind'] }] }));
    writeSpec({ [RESTORE_ANNOTATION]: dir });
    await assert.rejects(prepareBundleRestore(bundleRestore(bundle, root)!, bundle), (err: unknown) =>
      err instanceof FailedPreconditionError && /"\/data"/.test(err.message) && /config\.json/.test(err.message));
    writeSpec({ [RESTORE_ANNOTATION]: dir }, ['/proc', '/data']);
    await prepareBundleRestore(bundleRestore(bundle, root)!, bundle);
  });

  it('refuses a rootfs diff that writes through a symlink of the rootfs', async () => {
    fs.symlinkSync(work, path.join(bundle, 'rootfs', 'escape'));
    const dir = await unpacked(goodArchiveEntries({ rootfsDiff: tarOf({ name: 'escape/pwned', body: 'x' }) }));
    writeSpec({ [RESTORE_ANNOTATION]: dir });
    await assert.rejects(prepareBundleRestore(bundleRestore(bundle, root)!, bundle), ArchiveRefusedError);
    assert.equal(fs.existsSync(path.join(work, 'pwned')), false);
  });
});
