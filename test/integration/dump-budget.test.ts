import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { QmpClient } from '../../introspect/qemu/qmp.js';
import { cli, requirePrograms } from '../helpers/cli.js';
import { UpResult } from '../helpers/lab-guests.js';
import { PoolSuite } from '../helpers/pool-suite.js';

const PROGRAMS = path.resolve(__dirname, '..', '..', '..', 'test', 'programs');

/**
 * A dump's cost is bounded by the VM's RAM, not by what a guest process
 * maps: an unprivileged process that maps the zero page over more address
 * space than the VM has RAM fails its dump at the budget, with a typed error naming
 * it, and leaves the VM running and the tree thawed.
 */
describe('ovmigrate dump: the budget of a dump follows the VM\'s RAM, not what the guest maps', function () {
  const suite = new PoolSuite('budget', [{ slot: 'a' }]);
  const sh = suite.sh;
  const cg = suite.cgroup;
  let share: string;
  let a: UpResult;

  async function start(name: string, command: string): Promise<number> {
    const out = await sh(a.name, `
      mkdir -p /sys/fs/cgroup${cg}/${name}; cd ${share}
      setsid sh -c 'echo $$ > /sys/fs/cgroup${cg}/${name}/cgroup.procs; exec ${command}' >> ${share}/${name}.log 2>&1 </dev/null &
      for i in $(seq 1800); do grep -q '^ready' ${share}/${name}.log 2>/dev/null && break; sleep 0.1; done
      head -1 /sys/fs/cgroup${cg}/${name}/cgroup.procs`, 300);
    const pid = Number(out.trim());
    assert.ok(pid > 1 && /^ready /m.test(log(name)), `${name} started and read its pages:\n${log(name).slice(0, 300)}`);
    return pid;
  }
  const log = (name: string) => (fs.existsSync(path.join(share, `${name}.log`)) ? fs.readFileSync(path.join(share, `${name}.log`), 'utf8') : '');

  async function vmRunning(): Promise<boolean> {
    const qmp = await QmpClient.connect(a.qmpSocket);
    try {
      return (await qmp.execute<{ running: boolean }>('query-status')).running;
    } finally {
      qmp.close();
    }
  }

  async function assertRunningAndThawed(name: string): Promise<void> {
    assert.equal(await vmRunning(), true, 'the VM runs');
    assert.match(await sh(a.name, `cat /sys/fs/cgroup${cg}/${name}/cgroup.events`), /frozen 0/, 'the tree is thawed');
    const n = log(name).length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.ok(log(name).length > n, `${name} still runs`);
  }

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'gcc']);
    share = suite.dir;
    execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, 'noreserve'), path.join(PROGRAMS, 'noreserve.c')]);
    [a] = await suite.guests();
  });
  after(async () => {
    await suite.leave();
  });

  it('zero-page PTEs over three times the VM\'s RAM in pages: the dump stops at its PTE budget with RESOURCE_EXHAUSTED naming the task', async () => {
    const ram = Number((await sh(a.name, "awk '/MemTotal/ {print $2}' /proc/meminfo")).trim()) * 1024;
    const gib = Math.ceil((3 * ram) / 2 ** 30);
    const pid = await start('huge', `${share}/noreserve ${gib}`);
    const dir = path.join(share, 'huge-img');
    const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir, '--leave-running'], { timeoutMs: 300_000 });
    assert.equal(r.code, 1, r.stderr);
    // The walk's own PTE count stops it at the budget, before the rest of the PTEs: the error says so, no clock needed.
    assert.match(r.stderr, new RegExp(`pid ${pid} \\(noreserve\\): over the dump's budget of \\d+ page table entries`));
    assert.ok(!fs.existsSync(dir), 'no image directory');
    await assertRunningAndThawed('huge');
  });

  it('a pause that outlives its budget: the VM resumes and the dump fails', async () => {
    // 1 GiB of zero-page PTEs: within the PTE budget, but walking them again under the pause takes far more than 1 ms.
    const pid = await start('paused', `${share}/noreserve 1`);
    const dir = path.join(share, 'paused-img');
    const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir, '--leave-running', '--max-pause-ms', '1'], { timeoutMs: 300_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /over the dump's budget of 1 ms of VM pause/);
    assert.ok(!fs.existsSync(dir), 'no image directory');
    await assertRunningAndThawed('paused');
  });

  it('a quota on the bytes of one checkpoint is honoured, and a dump within every bound still works', async () => {
    const pid = Number(/^ready (\d+)/m.exec(log('paused'))![1]);
    const small = path.join(share, 'small-img');
    const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', small, '--leave-running', '--max-dump-bytes', '4096'], { timeoutMs: 300_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /over the dump's budget of 4096 bytes of pages/);
    await assertRunningAndThawed('paused');
    const ok = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', small, '--leave-running'], { timeoutMs: 300_000 });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(fs.existsSync(path.join(small, 'pagemap-' + pid + '.img')) || fs.readdirSync(small).some((f) => f.startsWith('pagemap-')));
    await assertRunningAndThawed('paused');
  });
});
