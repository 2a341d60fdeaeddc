import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExternalError } from '../../common/errors.js';
import { OpaqueDirLister } from '../../shim/cri/opaque-dirs.js';
import { requireRoot } from '../helpers/cli.js';

/** Marks a directory opaque as overlayfs does; false where the file system keeps no trusted.* xattrs. */
function markOpaque(dir: string): boolean {
  try {
    execFileSync('python3', ['-c', 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('the opaque-directory helper (one python for many asks)', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-opaque-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('answers asks in turn, each with its own directories; one that died is started again', async function () {
    this.timeout(30_000);
    requireRoot(this); // trusted.* xattrs need root
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    fs.mkdirSync(path.join(a, 'etc', 'opq', 'deep'), { recursive: true });
    fs.mkdirSync(path.join(a, 'var', 'name with space'), { recursive: true });
    fs.mkdirSync(path.join(b, 'plain'), { recursive: true });
    const marked = markOpaque(path.join(a, 'etc', 'opq')) && markOpaque(path.join(a, 'var', 'name with space'));
    const expected = marked ? ['etc/opq', 'var/name with space'] : [];
    const lister = new OpaqueDirLister();
    try {
      // At once: the second waits for the first's answer.
      const [x, y, z] = await Promise.all([lister.list(a), lister.list(b), lister.list(a)]);
      assert.deepEqual([...x].sort(), expected);
      assert.deepEqual([...y], []);
      assert.deepEqual([...z].sort(), expected);
      lister.stop();
      assert.deepEqual([...await lister.list(a)].sort(), expected);
    } finally {
      lister.stop();
    }
  });

  it('a missing python3 is an ExternalError naming the directory, and the next ask tries again', async () => {
    const lister = new OpaqueDirLister(path.join(tmp, 'no-python3'));
    await assert.rejects(lister.list(tmp), (err: unknown) => err instanceof ExternalError && err.message.includes(tmp));
    await assert.rejects(lister.list(tmp), ExternalError);
  });
});
