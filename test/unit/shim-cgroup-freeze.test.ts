import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExternalError } from '../../common/errors.js';
import { CgroupFreeze } from '../../shim/containerd/cgroup-freeze.js';

/** runc, recording what it was asked: it must not be, while the cgroup has its freezer. */
function fakeRunc(status = 'stopped') {
  const calls: string[] = [];
  return {
    calls,
    runc: {
      pause: async (id: string) => { calls.push(`pause ${id}`); return ''; },
      resume: async (id: string) => { calls.push(`resume ${id}`); return ''; },
      state: async (id: string) => { calls.push(`state ${id}`); return { status, pid: 0 }; },
    },
  };
}

describe('shim: the cgroup v2 freezer without runc (cgroup-freeze)', () => {
  let dir: string;
  const freeze = () => fs.readFileSync(path.join(dir, 'cgroup.freeze'), 'utf8');
  const events = (frozen: 0 | 1) => fs.writeFileSync(path.join(dir, 'cgroup.events'), `populated 1\nfrozen ${frozen}\n`);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cgfreeze-'));
    fs.writeFileSync(path.join(dir, 'cgroup.freeze'), '0\n');
    events(0);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('pauses by writing cgroup.freeze and returns once cgroup.events says frozen, as runc pause does; resumes by writing 0', async () => {
    const { runc, calls } = fakeRunc();
    const f = new CgroupFreeze(runc, dir);
    let done = false;
    const paused = f.pause('c1').then(() => { done = true; });
    for (const end = Date.now() + 5000; freeze() !== '1' && Date.now() < end;) await sleep(10);
    assert.equal(freeze(), '1');
    await sleep(50);
    assert.equal(done, false, 'not frozen yet: still waiting');
    events(1);
    await paused;
    assert.deepEqual(await f.state('c1'), { status: 'paused' });
    await f.resume('c1');
    assert.equal(freeze(), '0');
    assert.deepEqual(await f.state('c1'), { status: 'running' });
    assert.deepEqual(calls, [], 'runc never ran');
  });

  it('without cgroup.freeze (cgroup v1, a systemd slice, a cgroup gone with its container) runc does it all', async () => {
    const { runc, calls } = fakeRunc();
    for (const f of [new CgroupFreeze(runc, path.join(dir, 'gone')), new CgroupFreeze(runc, undefined)]) {
      await f.pause('c1');
      await f.resume('c1');
      assert.deepEqual(await f.state('c1'), { status: 'stopped', pid: 0 });
    }
    assert.deepEqual(calls, ['pause c1', 'resume c1', 'state c1', 'pause c1', 'resume c1', 'state c1']);
  });

  it('a write the kernel refuses is an ExternalError naming the container and the file', async () => {
    const { runc } = fakeRunc();
    fs.rmSync(path.join(dir, 'cgroup.freeze'));
    fs.mkdirSync(path.join(dir, 'cgroup.freeze'));
    await assert.rejects(new CgroupFreeze(runc, dir).resume('c1'), (err: unknown) =>
      err instanceof ExternalError && /resuming container c1: writing .*cgroup\.freeze/.test(err.message));
  });
});
