import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BadDataError, ExternalError, FailedPreconditionError } from '../../common/errors.js';
import { StatusCode, TtrpcError } from '../../common/ttrpc/index.js';
import type { BackendClient } from '../../shim/channel/client.js';
import { CheckpointJob, Checkpointer } from '../../shim/containerd/checkpoint.js';
import { FROZEN_MARKER, Freezer } from '../../shim/containerd/freezer.js';
import type { Runc } from '../../shim/containerd/runc.js';
import { quietLogs } from './helpers/quiet-logs.js';

/** runc as the Checkpointer drives it, recording each command; pause and resume change its state. */
function fakeRunc(state = 'running', fail: { pause?: number; resume?: number; kill?: boolean } = {}): { runc: Runc; calls: string[] } {
  const calls: string[] = [];
  const record = (name: string) => async (...args: unknown[]) => {
    calls.push([name, ...args.filter((a) => typeof a !== 'object')].join(' '));
    return '';
  };
  const runc = {
    state: async () => { calls.push('state'); return { status: state, pid: 1 }; },
    pause: async (id: string) => {
      calls.push(`pause ${id}`);
      if (fail.pause && fail.pause-- > 0) throw new ExternalError('runc pause failed: freezer timed out');
      state = 'paused';
      return '';
    },
    resume: async (id: string) => {
      calls.push(`resume ${id}`);
      if (fail.resume && fail.resume-- > 0) throw new ExternalError('runc resume failed: device or resource busy');
      state = 'running';
      return '';
    },
    kill: async (...args: unknown[]) => {
      await record('kill')(...args);
      if (fail.kill) throw new ExternalError('runc kill failed');
      return '';
    },
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
  const requests: { tcp_established?: boolean }[] = [];
  let closed = false;
  const client = {
    hello: async () => ({ version: 'test', max_request_bytes: 1 << 20, max_concurrent_checkpoints: 2 }),
    checkpoint: async (req: { tcp_established?: boolean }) => {
      requests.push(req);
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
  return { client: client as unknown as BackendClient, released, requests, closed: () => closed };
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

  it('open_tcp reaches the backend as tcp_established only with exit: dumped connections must never run on in the guest', async () => {
    const exiting = fakeBackend(share);
    await withBackend(exiting).checkpoint(job(fakeRunc().runc, { open_tcp: true, exit: true }));
    fs.rmSync(target, { recursive: true });
    fs.mkdirSync(target);
    const running = fakeBackend(share, { name: 'cd'.repeat(16) });
    await withBackend(running).checkpoint(job(fakeRunc().runc, { open_tcp: true }));
    assert.deepEqual([exiting.requests[0].tcp_established, running.requests[0].tcp_established], [true, undefined]);
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

describe('shim checkpoint faults: the freeze is undone, remembered across a crash, and the user\'s files are left alone', () => {
  quietLogs();
  let dir: string;
  let share: string;
  let target: string;
  let bundle: string;
  let configFile: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-shim-fault-'));
    share = path.join(dir, 'share');
    target = path.join(dir, 'target');
    bundle = path.join(dir, 'bundle');
    for (const d of [share, target, bundle]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(bundle, 'config.json'), '{}');
    configFile = path.join(dir, 'shim.json');
    fs.writeFileSync(configFile, JSON.stringify({ images: share }));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const marker = () => path.join(bundle, FROZEN_MARKER);
  const job = (runc: Runc, options: CheckpointJob['options'] = {}, freezer?: Freezer): CheckpointJob =>
    ({ id: 'c1', bundle, runc, cgroup: '/default/c1', target, options, freezer });
  const withBackend = (b: ReturnType<typeof fakeBackend>) => new Checkpointer(configFile, { portPresent: () => true, connect: async () => b.client });

  it('writes the freeze marker before pausing and removes it once thawed', async () => {
    const { runc } = fakeRunc();
    const seen: boolean[] = [];
    const r = runc as unknown as { pause: (id: string) => Promise<string>; resume: (id: string) => Promise<string> };
    const [pause, resume] = [r.pause, r.resume];
    r.pause = async (id) => { seen.push(fs.existsSync(marker())); return pause(id); };
    r.resume = async (id) => { seen.push(fs.existsSync(marker())); return resume(id); };
    await withBackend(fakeBackend(share)).checkpoint(job(runc));
    assert.deepEqual(seen, [true, true], 'the marker is there while frozen');
    assert.ok(!fs.existsSync(marker()), 'and gone after the thaw');
  });

  it('a failed runc pause is followed by a resume; the pause error goes up, no marker stays', async () => {
    const { runc, calls } = fakeRunc('running', { pause: 1 });
    const b = fakeBackend(share);
    await assert.rejects(withBackend(b).checkpoint(job(runc)), /runc pause failed/);
    assert.deepEqual(calls, ['state', 'pause c1', 'resume c1']);
    assert.ok(!fs.existsSync(marker()));
    assert.deepEqual(fs.readdirSync(share), [], 'the backend was never asked');
  });

  it('a thaw that fails once is tried again, and the checkpoint succeeds', async () => {
    const { runc, calls } = fakeRunc('running', { resume: 1 });
    await withBackend(fakeBackend(share)).checkpoint(job(runc));
    assert.deepEqual(calls.filter((c) => c.startsWith('resume')), ['resume c1', 'resume c1']);
    assert.ok(!fs.existsSync(marker()));
  });

  it('a thaw that keeps failing is the checkpoint\'s error, the images it copied are removed, the marker stays for delete', async () => {
    const { runc, calls } = fakeRunc('running', { resume: 100 });
    const b = fakeBackend(share);
    await assert.rejects(withBackend(b).checkpoint(job(runc)), (err: unknown) => err instanceof ExternalError && /could not thaw/.test(err.message));
    assert.ok(calls.filter((c) => c.startsWith('resume')).length >= 3, `retried: ${calls.join(', ')}`);
    assert.deepEqual(fs.readdirSync(target), []);
    assert.deepEqual(b.released, ['ab'.repeat(16)], 'the image directory is released all the same');
    assert.ok(fs.existsSync(marker()), 'the marker says the container is still frozen');

    // delete (or a new shim) finds the marker and thaws.
    const later = fakeRunc('paused');
    assert.equal(await Freezer.thawLeftover(later.runc, 'c1', bundle), true);
    assert.deepEqual(later.calls, ['resume c1']);
    assert.ok(!fs.existsSync(marker()));
  });

  it('a shim killed mid-checkpoint: its marker makes the next shim or delete thaw; no marker, nothing done', async () => {
    const { runc, calls } = fakeRunc();
    const never = new Promise<never>(() => undefined);
    const b = fakeBackend(share);
    (b.client as unknown as { checkpoint: () => Promise<never> }).checkpoint = () => never;
    void withBackend(b).checkpoint(job(runc));
    while (!calls.includes('pause c1')) await sleep(5);
    assert.ok(fs.existsSync(marker()), 'frozen, marked');
    // The shim is gone here (its promise never settles); `delete` runs with a runc of its own.
    const cleanup = fakeRunc('paused');
    assert.equal(await Freezer.thawLeftover(cleanup.runc, 'c1', bundle), true);
    assert.deepEqual(cleanup.calls, ['resume c1']);
    assert.equal(await Freezer.thawLeftover(cleanup.runc, 'c1', bundle), false);
    assert.deepEqual(cleanup.calls, ['resume c1'], 'no marker: no resume');

    fs.writeFileSync(marker(), JSON.stringify({ id: 'other' }));
    assert.equal(await Freezer.thawLeftover(cleanup.runc, 'c1', bundle), false, 'another container\'s marker is left alone');
  });

  it('a user Pause during a checkpoint waits for it and stays paused; the checkpoint\'s thaw does not undo it', async () => {
    const { runc, calls } = fakeRunc();
    const freezer = new Freezer(runc, 'c1', bundle);
    const b = fakeBackend(share);
    const client = b.client as unknown as { checkpoint: () => Promise<unknown> };
    const original = client.checkpoint;
    let answer!: () => void;
    client.checkpoint = async () => {
      await new Promise<void>((resolve) => (answer = resolve));
      return original();
    };
    const checkpoint = withBackend(b).checkpoint(job(runc, {}, freezer));
    while (!answer) await sleep(5);
    const userPause = freezer.pause().then(() => calls.push('(user paused)'));
    await sleep(20);
    assert.deepEqual(calls, ['state', 'pause c1'], 'the user\'s pause waits its turn');
    answer();
    await checkpoint;
    await userPause;
    assert.deepEqual(calls, ['state', 'pause c1', 'resume c1', 'pause c1', '(user paused)']);

    // A checkpoint of the paused container neither pauses nor thaws it.
    calls.length = 0;
    await withBackend(fakeBackend(share, { name: 'cd'.repeat(16) })).checkpoint(job(runc, {}, freezer));
    assert.deepEqual(calls, []);
    await freezer.resume();
    assert.deepEqual(calls, ['resume c1']);
  });

  it('a failure after the copy removes only the files the checkpoint wrote into a user-given image path', async () => {
    fs.writeFileSync(path.join(target, 'notes.txt'), 'the user\'s');
    fs.mkdirSync(path.join(target, 'older'));
    const { runc } = fakeRunc('running', { kill: true });
    await assert.rejects(withBackend(fakeBackend(share)).checkpoint(job(runc, { exit: true })), /runc kill failed/);
    assert.deepEqual(fs.readdirSync(target).sort(), ['notes.txt', 'older']);
  });

  it('in-guest CRIU that fails removes only what it added to the image path', async () => {
    fs.writeFileSync(path.join(target, 'notes.txt'), 'the user\'s');
    const none = new Checkpointer(configFile, { portPresent: () => false, connect: async () => { throw new Error('unreachable'); } });
    const { runc } = fakeRunc();
    const r = runc as unknown as { checkpoint: (...a: unknown[]) => Promise<string> };
    const write = r.checkpoint;
    r.checkpoint = async (...a) => { await write(...a); throw new ExternalError('runc checkpoint failed: criu'); };
    await assert.rejects(none.checkpoint(job(runc)), /criu/);
    assert.deepEqual(fs.readdirSync(target), ['notes.txt']);
  });
});
