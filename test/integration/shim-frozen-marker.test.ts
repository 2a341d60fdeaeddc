import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FROZEN_MARKER } from '../../shim/containerd/freezer.js';
import { requirePrograms, requireRoot } from '../helpers/cli.js';
import { alive } from '../helpers/processes.js';

const SHIM = path.resolve(__dirname, '..', '..', 'shim', 'containerd', 'main.js');

/**
 * runc as the shim runs it, recording each command (flags before it
 * dropped) and keeping one container's status in a file: what a container
 * frozen by a checkpoint looks like to runc, without one.
 */
const FAKE_RUNC = `#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in --root|--log|--log-format) shift 2;; *) break;; esac; done
echo "$*" >> "$FAKE_RUNC_LOG"
case "$1" in
  state) printf '{"id":"%s","pid":1,"status":"%s"}' "$2" "$(cat "$FAKE_RUNC_STATE")";;
  pause) echo paused > "$FAKE_RUNC_STATE";;
  resume) echo running > "$FAKE_RUNC_STATE";;
esac
exit 0
`;


/** The shim server serving on `socket` (under subreaper.py): found by its command line. */
function serverPid(socket: string): number | undefined {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('main.js')) && argv.includes('-socket') && argv.includes(socket)) return Number(pid);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/**
 * A shim killed mid-checkpoint leaves its container frozen and the freeze
 * marker in the bundle (shim/containerd/freezer.ts). Whoever comes next for
 * that bundle thaws it: a new shim server as it starts, a server as it
 * shuts down, and containerd's `delete` after a dead shim. The shim binary
 * is run as containerd runs it, over a runc that records what it is asked.
 */
describe('containerd-shim-ovmigrate-v1: a container left frozen by a killed shim is thawed by the next shim, by shutdown, by delete', function () {
  const ns = `ovmthaw${process.pid}`;
  const id = 'c1';
  let dir: string;
  let bundle: string;
  let env: NodeJS.ProcessEnv;
  let runcLog: string;
  let runcState: string;
  let server: number | undefined;

  before(function () {
    requirePrograms(this, ['python3']);
    requireRoot(this);
  });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-thaw-'));
    bundle = path.join(dir, 'bundle');
    fs.mkdirSync(bundle);
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.writeFileSync(path.join(dir, 'bin', 'runc'), FAKE_RUNC, { mode: 0o755 });
    runcLog = path.join(dir, 'runc.log');
    runcState = path.join(dir, 'runc.state');
    fs.writeFileSync(runcLog, '');
    env = { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}`, FAKE_RUNC_LOG: runcLog, FAKE_RUNC_STATE: runcState };
  });

  afterEach(async () => {
    if (server && alive(server)) process.kill(server, 'SIGKILL');
    server = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const marker = () => path.join(bundle, FROZEN_MARKER);
  /** What a checkpoint leaves when its shim dies between `runc pause` and `runc resume`. */
  const frozenByDeadShim = (markedId = id) => {
    fs.writeFileSync(runcState, 'paused');
    fs.writeFileSync(marker(), JSON.stringify({ id: markedId, shim: 999999, at: new Date().toISOString() }));
  };
  const runcCalls = () => fs.readFileSync(runcLog, 'utf8').trim().split('\n').filter(Boolean);
  const shim = (...args: string[]) => spawnSync(process.execPath, [SHIM, '-namespace', ns, '-id', id, '-address', path.join(dir, 'containerd.sock'),
    '-publish-binary', '/bin/true', ...args], { cwd: bundle, env, timeout: 60_000 });

  it('a new shim server for the bundle thaws before it serves; shutting down (SIGTERM) it thaws again', async () => {
    frozenByDeadShim();
    const started = shim('start');
    assert.equal(started.status, 0, `start: ${started.stderr.toString()}${fs.existsSync(path.join(bundle, 'shim.stderr')) ? fs.readFileSync(path.join(bundle, 'shim.stderr'), 'utf8') : ''}`);
    const socket = started.stdout.toString().replace(/^unix:\/\//, '');
    server = serverPid(socket);
    assert.ok(server, `the server runs on ${socket}`);
    assert.ok(!fs.existsSync(marker()), 'the new shim took the marker away');
    assert.deepEqual(runcCalls().filter((c) => c.startsWith('resume')), [`resume ${id}`], 'and thawed the container');
    assert.equal(fs.readFileSync(runcState, 'utf8').trim(), 'running');

    // A checkpoint is in flight (as far as the bundle says) when containerd shuts the shim down.
    frozenByDeadShim();
    process.kill(server, 'SIGTERM');
    for (let i = 0; i < 200 && alive(server); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(!alive(server), 'the server exited');
    assert.ok(!fs.existsSync(marker()), 'shutdown took the marker away');
    assert.deepEqual(runcCalls().filter((c) => c.startsWith('resume')), [`resume ${id}`, `resume ${id}`], 'and thawed the container');
    assert.ok(!fs.existsSync(socket), 'its socket is gone');
  });

  it('`delete` after a dead shim thaws before runc deletes, and answers containerd', () => {
    frozenByDeadShim();
    const r = shim('-bundle', bundle, 'delete');
    assert.equal(r.status, 0, r.stderr.toString());
    assert.ok(r.stdout.length > 0, 'a DeleteResponse on stdout');
    assert.ok(!fs.existsSync(marker()), 'the marker is gone');
    const calls = runcCalls();
    const resume = calls.indexOf(`resume ${id}`);
    assert.ok(resume >= 0 && resume < calls.indexOf(`delete --force ${id}`), `thawed, then deleted: ${calls.join('; ')}`);
  });

  it('a marker of another container is left alone, and no marker means no thaw', () => {
    fs.writeFileSync(runcState, 'running');
    fs.writeFileSync(marker(), JSON.stringify({ id: 'other' }));
    const r = shim('-bundle', bundle, 'delete');
    assert.equal(r.status, 0, r.stderr.toString());
    assert.ok(fs.existsSync(marker()), 'another container\'s marker stays');
    assert.deepEqual(runcCalls().filter((c) => c.startsWith('resume')), [], 'nothing thawed');
  });
});
