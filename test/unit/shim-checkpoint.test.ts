import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BadDataError, FailedPreconditionError } from '../../common/errors.js';
import { StatusCode, TtrpcError } from '../../common/ttrpc/index.js';
import type { BackendClient } from '../../shim/channel/client.js';
import { CheckpointJob, Checkpointer } from '../../shim/containerd/checkpoint.js';
import type { Runc } from '../../shim/containerd/runc.js';
import { quietLogs } from './helpers/quiet-logs.js';

/** runc as the Checkpointer drives it, recording each command. */
function fakeRunc(state = 'running'): { runc: Runc; calls: string[] } {
  const calls: string[] = [];
  const record = (name: string) => async (...args: unknown[]) => {
    calls.push([name, ...args.filter((a) => typeof a !== 'object')].join(' '));
    return '';
  };
  const runc = {
    state: async () => { calls.push('state'); return { status: state, pid: 1 }; },
    pause: record('pause'), resume: record('resume'), kill: record('kill'),
    checkpoint: async (_id: string, _bundle: string, o: { imagePath: string; leaveRunning: boolean }) => {
      calls.push(`checkpoint leave-running=${o.leaveRunning}`);
      fs.writeFileSync(path.join(o.imagePath, 'inventory.img'), 'criu');
      return '';
    },
  };
  return { runc: runc as unknown as Runc, calls };
}

/** A backend that "dumps" by writing files into the share, or fails as told. */
function fakeBackend(share: string, behaviour: { fail?: Error; name?: string; files?: string[] } = {}) {
  const released: string[] = [];
  let closed = false;
  const client = {
    hello: async () => ({ version: 'test', max_request_bytes: 1 << 20, max_concurrent_checkpoints: 2 }),
    checkpoint: async () => {
      if (behaviour.fail) throw behaviour.fail;
      const name = behaviour.name ?? 'ab'.repeat(16);
      if (/^[0-9a-f]{32}$/.test(name)) {
        fs.mkdirSync(path.join(share, name));
        for (const f of behaviour.files ?? ['inventory.img', 'pages-1.img']) fs.writeFileSync(path.join(share, name, f), f);
      }
      return { name, pids: [10], pages_written: 1n, bytes_written: 4096n, total_ms: 1, pause_ms: 1 };
    },
    release: async (name: string) => { released.push(name); },
    close: () => { closed = true; },
  };
  return { client: client as unknown as BackendClient, released, closed: () => closed };
}

describe('shim checkpoint: out of the VM, with the container thawed and nothing partial left whatever fails', () => {
  quietLogs();
  let dir: string;
  let share: string;
  let target: string;
  let configFile: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-shim-ckpt-'));
    share = path.join(dir, 'share');
    target = path.join(dir, 'target');
    fs.mkdirSync(share);
    fs.mkdirSync(target);
    fs.mkdirSync(path.join(dir, 'bundle'));
    fs.writeFileSync(path.join(dir, 'bundle', 'config.json'), '{}');
    configFile = path.join(dir, 'shim.json');
    fs.writeFileSync(configFile, JSON.stringify({ images: share }));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const job = (runc: Runc, options: CheckpointJob['options'] = {}): CheckpointJob =>
    ({ id: 'c1', bundle: path.join(dir, 'bundle'), runc, cgroup: '/default/c1', target, options });
  const withBackend = (b: ReturnType<typeof fakeBackend>) => new Checkpointer(configFile, { portPresent: () => true, connect: async () => b.client });

  it('pauses, has the backend dump, thaws, copies the images into containerd\'s directory and releases them', async () => {
    const { runc, calls } = fakeRunc();
    const b = fakeBackend(share);
    const report = await withBackend(b).checkpoint(job(runc));
    assert.equal(report.via, 'backend');
    assert.deepEqual(calls, ['state', 'pause c1', 'resume c1']);
    assert.deepEqual(fs.readdirSync(target).sort(), ['inventory.img', 'pages-1.img']);
    assert.deepEqual(b.released, ['ab'.repeat(16)]);
    assert.ok(b.closed());
  });

  it('with exit: copies first, then kills, then thaws so the processes die', async () => {
    const { runc, calls } = fakeRunc();
    await withBackend(fakeBackend(share)).checkpoint(job(runc, { exit: true }));
    assert.deepEqual(calls, ['state', 'pause c1', 'kill c1 9 true', 'resume c1']);
    assert.equal(fs.readdirSync(target).length, 2);
  });

  it('leaves a container containerd paused itself paused (containerd resumes it)', async () => {
    const { runc, calls } = fakeRunc('paused');
    await withBackend(fakeBackend(share)).checkpoint(job(runc));
    assert.deepEqual(calls, ['state']);
  });

  it('a backend that fails: the container is thawed, the target stays empty, the error goes up', async () => {
    const { runc, calls } = fakeRunc();
    const b = fakeBackend(share, { fail: new TtrpcError(StatusCode.FAILED_PRECONDITION, 'c1 (sh) fd 3: TCP socket in state ESTABLISHED') });
    await assert.rejects(withBackend(b).checkpoint(job(runc)), /TCP socket/);
    assert.deepEqual(calls, ['state', 'pause c1', 'resume c1']);
    assert.deepEqual(fs.readdirSync(target), []);
    assert.deepEqual(b.released, []);
  });

  it('an image directory name that is not one the backend makes is refused, never followed', async () => {
    const { runc, calls } = fakeRunc();
    const b = fakeBackend(share, { name: '../../etc' });
    await assert.rejects(withBackend(b).checkpoint(job(runc, { exit: true })), BadDataError);
    assert.deepEqual(calls, ['state', 'pause c1', 'resume c1'], 'not killed, thawed');
    assert.deepEqual(fs.readdirSync(target), []);
  });

  it('images that are not plain files: refused, target emptied, the directory still released', async () => {
    const { runc } = fakeRunc();
    const b = fakeBackend(share);
    const name = 'ab'.repeat(16);
    const client = b.client as unknown as { checkpoint: () => Promise<unknown> };
    const original = client.checkpoint;
    client.checkpoint = async () => {
      const r = await original();
      fs.symlinkSync('/etc/passwd', path.join(share, name, 'zz-link.img'));
      return r;
    };
    await assert.rejects(withBackend(b).checkpoint(job(runc)), /not a regular file/);
    assert.deepEqual(fs.readdirSync(target), []);
    assert.deepEqual(b.released, [name]);
  });

  it('no backend: CRIU in the guest by default, a clear refusal when configured so', async () => {
    const none = new Checkpointer(configFile, { portPresent: () => false, connect: async () => { throw new Error('unreachable'); } });
    const { runc, calls } = fakeRunc();
    const report = await none.checkpoint(job(runc));
    assert.equal(report.via, 'criu');
    assert.deepEqual(calls, ['checkpoint leave-running=true']);

    fs.writeFileSync(configFile, JSON.stringify({ images: share, fallback: 'refuse' }));
    const refused = fakeRunc();
    await assert.rejects(none.checkpoint(job(refused.runc)), FailedPreconditionError);
    assert.deepEqual(refused.calls, []);
  });

  it('a backend that does not say hello in time counts as absent', async () => {
    const silent = {
      hello: () => Promise.reject(new TtrpcError(StatusCode.DEADLINE_EXCEEDED, 'hello: deadline exceeded')),
      close: () => undefined,
    } as unknown as BackendClient;
    const { runc, calls } = fakeRunc();
    const report = await new Checkpointer(configFile, { portPresent: () => true, connect: async () => silent }).checkpoint(job(runc));
    assert.equal(report.via, 'criu');
    assert.deepEqual(calls, ['checkpoint leave-running=true']);
  });
});
