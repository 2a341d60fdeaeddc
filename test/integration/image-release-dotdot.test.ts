import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImageStore } from '../../introspect/backend/index.js';
import { requirePrograms, requireRoot } from '../helpers/cli.js';

/**
 * What virtiofsd does for a guest's FUSE_LOOKUP of ".." (allowed, for NFS
 * export): openat(fd of the inode, "..") under its sandbox root. The
 * holder prints `held`, then on each line of stdin climbs from its handle
 * as far as it can and prints one JSON line: the names seen at each level,
 * or the error that stopped it.
 */
const HOLDER = `
import json, os, sys
os.chroot(sys.argv[1]); os.chdir('/')
fd = os.open(sys.argv[2], os.O_PATH | os.O_DIRECTORY)
print('held', flush=True)
for _ in sys.stdin:
    levels, cur = [], fd
    for _ in range(8):
        try:
            cur = os.open('..', os.O_PATH | os.O_DIRECTORY, dir_fd=cur)
            d = os.open('.', os.O_RDONLY | os.O_DIRECTORY, dir_fd=cur)
            levels.append(sorted(os.listdir(d))); os.close(d)
        except OSError as e:
            levels.append(e.strerror); break
    print(json.dumps(levels), flush=True)
`;

/**
 * Release renames an image directory out of the share into staging; a
 * guest may still hold it (its inode, in virtiofsd). A ".." lookup from that
 * handle must not reach staging or anything above it. virtiofsd's namespace
 * sandbox (its default) makes the shared directory a bind mount: the kernel
 * refuses ".." out of a mount's root subtree (fs/namei.c, path_connected),
 * so the handle leads nowhere once the directory has left the share.
 * (Under `--sandbox chroot` nothing stops the climb: chroot does not bound a
 * descriptor already outside it. Run virtiofsd with its namespace sandbox.)
 */
describe('a released image directory a guest still holds: ".." from its handle stays in the share', function () {
  let root: string;
  let holder: ChildProcess | undefined;

  before(function () {
    requirePrograms(this, ['python3', 'unshare', 'mount']);
    requireRoot(this);
  });
  beforeEach(() => {
    root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-dotdot-')));
  });
  afterEach(() => {
    holder?.kill('SIGKILL');
    holder = undefined;
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('under a namespace sandbox (the share a bind mount), the climb ends at the released directory', async () => {
    const share = path.join(root, 'share');
    const images = path.join(share, 'images');
    const mnt = path.join(root, 'sandbox');
    for (const d of [images, mnt]) fs.mkdirSync(d, { recursive: true });
    const store = ImageStore.open(images, { staging: path.join(root, 'staging'), shares: [share] });
    const name = 'cd'.repeat(16);
    try {
      fs.mkdirSync(path.join(images, name));
      fs.writeFileSync(path.join(images, name, 'core-1.img'), 'image');
      // The guest's own subdirectory keeps the released directory from being removed: it stays, held, in staging.
      fs.mkdirSync(path.join(images, name, 'sub'));
      holder = spawn('unshare', ['-m', 'sh', '-c', 'mount --bind "$1" "$2" && exec python3 -c "$3" "$2" "$4"', 'sh', share, mnt, HOLDER, `/images/${name}`],
        { stdio: ['pipe', 'pipe', 'pipe'] });
      const lines: string[] = [];
      let err = '';
      holder.stdout!.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n').filter(Boolean)));
      holder.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      const next = async (n: number) => {
        for (let i = 0; i < 200 && lines.length < n; i++) await new Promise((resolve) => setTimeout(resolve, 50));
        assert.ok(lines.length >= n, `the holder answered: ${lines.join('\n')}\n${err}`);
        return lines[n - 1];
      };
      assert.equal(await next(1), 'held');

      // Inside the share, ".." works, and stops at the sandbox's root: the share.
      holder.stdin!.write('climb\n');
      const inside = JSON.parse(await next(2)) as (string[] | string)[];
      assert.deepEqual(inside[0], [name], 'its parent is DIR');
      assert.deepEqual(inside[1], ['images'], 'then the share, the sandbox\'s root, and no further');

      store.remove(name);
      assert.deepEqual(fs.readdirSync(path.join(root, 'staging', `.released-${name}`)), ['sub'], 'released into staging, held');
      holder.stdin!.write('climb\n');
      const released = JSON.parse(await next(3)) as (string[] | string)[];
      assert.equal(released.length, 1, `nothing above the released directory is reachable: ${JSON.stringify(released)}`);
      assert.match(String(released[0]), /No such file or directory/);
    } finally {
      store.close();
    }
  });
});
