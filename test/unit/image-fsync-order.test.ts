import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImageStore } from '../../introspect/backend/index.js';
import { ImageDir } from '../../introspect/dump/image-dir.js';

type Step = { op: 'fsync' | 'rename'; path: string; to?: string };

/**
 * Records the fsyncs and renames the code under test makes through the fs
 * module, by path: fds are named by what they were opened on, and
 * /proc/self/fd/N/NAME (how ImageStore names DIR) by N's path.
 */
class FsCalls {
  readonly steps: Step[] = [];
  private readonly fds = new Map<number, string>();
  private readonly saved = { openSync: fs.openSync, fsyncSync: fs.fsyncSync, renameSync: fs.renameSync, closeSync: fs.closeSync };

  constructor() {
    const { openSync, fsyncSync, renameSync, closeSync } = this.saved;
    const f = fs as unknown as Record<string, unknown>;
    f.openSync = (p: fs.PathLike, ...rest: unknown[]) => {
      const fd = (openSync as (...a: unknown[]) => number)(p, ...rest);
      this.fds.set(fd, this.real(String(p)));
      return fd;
    };
    f.fsyncSync = (fd: number) => {
      fsyncSync(fd);
      this.steps.push({ op: 'fsync', path: this.fds.get(fd) ?? `fd ${fd}` });
    };
    f.renameSync = (from: fs.PathLike, to: fs.PathLike) => {
      renameSync(from, to);
      this.steps.push({ op: 'rename', path: this.real(String(from)), to: this.real(String(to)) });
    };
    f.closeSync = (fd: number) => {
      closeSync(fd);
      this.fds.delete(fd);
    };
  }

  restore(): void {
    Object.assign(fs, this.saved);
  }

  /** Index of the first step matching, or -1. */
  at(op: Step['op'], p: string, to?: string): number {
    return this.steps.findIndex((s) => s.op === op && s.path === p && (to === undefined || s.to === to));
  }

  private real(p: string): string {
    const m = /^\/proc\/self\/fd\/(\d+)(\/.*)?$/.exec(p);
    if (m && this.fds.has(Number(m[1]))) return this.fds.get(Number(m[1]))! + (m[2] ?? '');
    return path.resolve(p);
  }
}

/** Nothing is made visible by a rename before it is on disk (a host crash leaves nothing or whole images). */
describe('image files and directories are fsynced before the rename that shows them', () => {
  let root: string;
  let calls: FsCalls | undefined;

  beforeEach(() => {
    root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-fsync-')));
  });
  afterEach(() => {
    calls?.restore();
    calls = undefined;
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('ImageDir.commit: every image file, then the staging directory, then the rename, then its parent', () => {
    const dir = path.join(root, 'images');
    calls = new FsCalls();
    const out = ImageDir.create(dir);
    out.file('inventory.img', Buffer.from('inventory'));
    const fd = out.open('pages-1.img');
    fs.writeSync(fd, Buffer.alloc(4096, 1));
    fs.closeSync(fd);
    const staging = out.staging;
    out.commit();

    const rename = calls.at('rename', staging, dir);
    assert.ok(rename >= 0, `the staging directory renamed to DIR: ${JSON.stringify(calls.steps)}`);
    for (const name of ['inventory.img', 'pages-1.img']) {
      const synced = calls.at('fsync', path.join(staging, name));
      assert.ok(synced >= 0 && synced < rename, `${name} fsynced before the rename: ${JSON.stringify(calls.steps)}`);
    }
    const stagingSynced = calls.at('fsync', staging);
    assert.ok(stagingSynced >= 0 && stagingSynced < rename, 'the directory fsynced before the rename');
    assert.ok(calls.steps.slice(0, rename).filter((s) => s.op === 'fsync').every((s) => s.path.startsWith(staging)), 'what is synced first is what the rename shows');
    assert.ok(calls.at('fsync', root) > rename, 'the rename itself made durable: DIR\'s parent fsynced after it');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['inventory.img', 'pages-1.img']);
  });

  it('a dump published by the backend: images synced, staged, synced again, then shown in DIR and DIR synced', () => {
    const images = path.join(root, 'share');
    const staging = path.join(root, 'staging');
    fs.mkdirSync(images);
    calls = new FsCalls();
    const store = ImageStore.open(images, { staging });
    try {
      const name = 'ab'.repeat(16);
      // What dumpTree does with the backend's staging path (dump.ts): ImageDir.create, images, commit.
      const out = ImageDir.create(store.stagingPath(name));
      out.file('core-1.img', Buffer.from('core'));
      out.commit();
      store.publish(name);

      const shown = calls.at('rename', path.join(staging, name), path.join(images, name));
      assert.ok(shown >= 0, `published by a rename into DIR: ${JSON.stringify(calls.steps)}`);
      const staged = calls.at('rename', out.staging, path.join(staging, name));
      assert.ok(staged >= 0 && staged < shown, 'renamed into staging first');
      for (const p of [path.join(out.staging, 'core-1.img'), out.staging]) {
        const synced = calls.at('fsync', p);
        assert.ok(synced >= 0 && synced < staged, `${path.relative(root, p)} fsynced before any rename: ${JSON.stringify(calls.steps)}`);
      }
      const stagingSynced = calls.steps.findIndex((s, i) => i > staged && s.op === 'fsync' && s.path === staging);
      assert.ok(stagingSynced > staged && stagingSynced < shown, 'the staged rename made durable before the images are shown');
      assert.ok(calls.steps.findIndex((s, i) => i > shown && s.op === 'fsync' && s.path === images) > shown, 'DIR fsynced after the rename into it');
      assert.deepEqual(fs.readdirSync(path.join(images, name)), ['core-1.img']);
    } finally {
      store.close();
    }
  });
});
