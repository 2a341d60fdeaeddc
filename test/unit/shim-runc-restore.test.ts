import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExternalError } from '../../common/errors.js';
import { Runc } from '../../shim/containerd/runc.js';
import { quietLogs } from './helpers/quiet-logs.js';

/**
 * A runc that fails its restore as runc does when CRIU fails: its reason in
 * its JSON log names CRIU's restore.log, which CRIU wrote in the work path.
 */
const FAILING_RUNC = `#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    --log) log=$2; shift ;;
    --work-path) work=$2; shift ;;
  esac
  shift
done
printf '(00.001000) Warn  (criu/net.c:1): nothing to worry about\\n(00.002000) Error (criu/mount.c:1234): mnt: No mapping for 42:(null) mountpoint\\n(00.003000) Error (criu/cr-restore.c:2500): Restoring FAILED.\\n' > "$work/restore.log"
echo '{"level":"error","msg":"criu failed: type NOTIFY errno 0\\\\nlog file: '"$work"'/restore.log","time":"now"}' >> "$log"
exit 1
`;

describe('shim: a failed runc restore says what CRIU said', () => {
  quietLogs();
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-restore-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('carries CRIU\'s last errors from restore.log (containerd removes the bundle that holds it)', async () => {
    const binary = path.join(dir, 'runc');
    fs.writeFileSync(binary, FAILING_RUNC, { mode: 0o755 });
    const bundle = path.join(dir, 'bundle');
    const workPath = path.join(bundle, 'restore-work');
    fs.mkdirSync(workPath, { recursive: true });
    const runc = new Runc('test', binary);
    await assert.rejects(
      runc.restore('c1', { bundle, pidFile: path.join(bundle, 'init.pid'), imagePath: path.join(dir, 'images'), workPath, stdio: ['ignore', 'ignore', 'ignore'] }),
      (err: unknown) => {
        assert.ok(err instanceof ExternalError);
        assert.match(err.message, /runc restore failed: criu failed: type NOTIFY/);
        assert.match(err.message, /CRIU: Error \(criu\/mount\.c:1234\): mnt: No mapping for 42:\(null\) mountpoint \| Error \(criu\/cr-restore\.c:2500\): Restoring FAILED\./);
        assert.doesNotMatch(err.message, /Warn/);
        return true;
      });
  });
});
