import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requirePrograms } from '../helpers/cli.js';
import { HostContainerd, startHostContainerd } from '../helpers/host-containerd.js';
import { alive } from '../helpers/processes.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';

const RUNTIME = ['--runtime', 'io.containerd.ovmigrate.v1'];

/** Processes whose command line has all these words (the shim's own, say). */
function pgrep(...words: string[]): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((pid) => {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return words.every((w) => argv.includes(w)) ? [Number(pid)] : [];
    } catch {
      return [];
    }
  });
}


async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('containerd-shim-ovmigrate-v1 on this host: the task lifecycle through ctr', function () {
  let cd: HostContainerd;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-shim-host-'));

  before(async function () {
    requirePrograms(this, ['containerd', 'ctr', 'runc', 'python3', 'script']);
    cd = await startHostContainerd('shim');
    await buildBusyboxImage(path.join(tmp, 'busybox.tar'));
    await cd.ctr(['image', 'import', path.join(tmp, 'busybox.tar')]);
  });

  after(async () => {
    await cd?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const taskStatus = async (id: string) => new RegExp(`^${id}\\s+(\\d+)\\s+(\\w+)`, 'm').exec(await cd.ctr(['task', 'ls']))?.slice(1) ?? [];

  it('runs a container to its end: stdout, stderr and the exit code reach ctr; nothing is left behind', async () => {
    const r = await cd.ctrResult(['run', '--rm', ...RUNTIME, BUSYBOX_IMAGE, 'once', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'out\n');
    assert.match(r.stderr, /^err$/m);
    assert.doesNotMatch(await cd.ctr(['container', 'ls', '-q']), /once/);
    assert.ok(!fs.existsSync(`/run/containerd/runc/ovm-test-${process.pid}/once`), 'no runc state left');
    await until('the shim to exit', () => pgrep('-id', 'once').length === 0);
  });

  it('passes stdin through and closes it at its end', async () => {
    const r = await cd.ctrResult(['run', '--rm', ...RUNTIME, BUSYBOX_IMAGE, 'stdin', 'sh', '-c', 'wc -l'], { input: 'a\nb\nc\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '3');
  });

  it('runs a detached task: exec, ps, pause and resume, metrics, kill, delete', async () => {
    await cd.ctr(['run', '-d', ...RUNTIME, BUSYBOX_IMAGE, 'svc', 'sh', '-c', 'while true; do date >> /tmp/log; sleep 0.2; done']);
    const [pid, status] = await taskStatus('svc');
    assert.equal(status, 'RUNNING');
    assert.ok(alive(Number(pid)));

    const exec = await cd.ctrResult(['task', 'exec', '--exec-id', 'e1', 'svc', 'sh', '-c', 'test -s /tmp/log && echo has-log; exit 7']);
    assert.equal(exec.code, 7);
    assert.equal(exec.stdout, 'has-log\n');
    const fed = await cd.ctrResult(['task', 'exec', '--exec-id', 'e2', 'svc', 'sh', '-c', 'read x; echo got $x'], { input: 'hello\n' });
    assert.equal(fed.stdout, 'got hello\n');

    const ps = await cd.ctr(['task', 'ps', 'svc']);
    assert.match(ps, new RegExp(`^${pid}\\s`, 'm'), 'ps lists the init');

    await cd.ctr(['task', 'pause', 'svc']);
    assert.equal((await taskStatus('svc'))[1], 'PAUSED');
    await cd.ctr(['task', 'resume', 'svc']);
    assert.equal((await taskStatus('svc'))[1], 'RUNNING');

    const metrics = JSON.parse(await cd.ctr(['task', 'metrics', '--format', 'json', 'svc'])) as Record<string, { current?: number; usage?: unknown }>;
    assert.ok((metrics.pids?.current ?? 0) >= 1, `pids in metrics: ${JSON.stringify(metrics.pids)}`);
    assert.ok(metrics.memory, 'memory in metrics');

    await cd.ctr(['task', 'kill', '-s', 'SIGKILL', 'svc']);
    await until('svc to stop', async () => (await taskStatus('svc'))[1] === 'STOPPED');
    const deleted = await cd.ctrResult(['task', 'rm', 'svc']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stderr, /exit code 137/);
    assert.ok(!alive(Number(pid)));
    await cd.ctr(['container', 'rm', 'svc']);
  });

  it('gives a container a terminal (ctr run -t)', async () => {
    // script(1) gives ctr a terminal of its own, as a user's shell would.
    const cmd = `ctr -a ${cd.address} -n ovm-test-${process.pid} run -t --rm ${RUNTIME.join(' ')} ${BUSYBOX_IMAGE} tty sh -c 'tty; test -t 0 && echo stdin-is-a-tty; exit 4'`;
    let out = '';
    let code = 0;
    try {
      out = execFileSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000, input: '' });
    } catch (err) {
      const e = err as { status: number; stdout: string };
      code = e.status;
      out = e.stdout;
    }
    assert.equal(code, 4, out);
    assert.match(out, /\/dev\/pts\/\d+/);
    assert.match(out, /stdin-is-a-tty/);
  });

  it('leaves no container behind when the shim is killed', async () => {
    await cd.ctr(['run', '-d', ...RUNTIME, BUSYBOX_IMAGE, 'orphan', 'sleep', '1000']);
    const [pid] = await taskStatus('orphan');
    const shims = pgrep('-id', 'orphan');
    assert.ok(shims.length >= 1, 'the shim runs');
    for (const s of shims) process.kill(s, 'SIGKILL');
    // containerd sees its shim gone and runs `containerd-shim-ovmigrate-v1 delete`, which removes the container.
    await until('the container process to go', () => !alive(Number(pid)));
    await until('runc to forget the container', () => !fs.existsSync(`/run/containerd/runc/ovm-test-${process.pid}/orphan`));
    await until('the task to be gone', async () => !/orphan/.test(await cd.ctr(['task', 'ls'])));
    // containerd removes the bundle only when our delete succeeded and answered.
    await until('containerd to remove the bundle', () => !fs.existsSync(cd.bundle('orphan')));
    await cd.ctr(['container', 'rm', 'orphan']);
  });
});
