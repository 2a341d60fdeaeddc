import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_REQUEST_BYTES } from '../../common/backend-api.js';
import { decodeImage, entryObject } from '../../introspect/criu/index.js';
import type { GuestCall, GuestCallResult } from '../helpers/backend-guest-client.js';
import { CLI, requirePrograms } from '../helpers/cli.js';
import { UpResult } from '../helpers/lab-guests.js';
import { PoolSuite } from '../helpers/pool-suite.js';

/** Runs in the guest (the checkout is there at the same path). */
const CLIENT = path.resolve(__dirname, '..', 'helpers', 'backend-guest-client.js');
const RELAY_MAIN = path.resolve(__dirname, '..', '..', 'shim', 'channel', 'relay-main.js');
const VERSION = (JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

/**
 * `ovmigrate serve` on the host, called from inside a lab guest the way a
 * shim calls it: BackendClient -> relay -> virtio-serial port -> backend.
 */
describe('ovmigrate serve: checkpoints asked for from inside the guest, over its channel', function () {
  const suite = new PoolSuite('serve', [{}]);
  const guestSh = suite.sh;
  const CGROUP = `${suite.cgroup}/tree`;
  let share: string;
  let staging: string;
  let guest: UpResult;
  let serve: ChildProcess | undefined;
  let serveLog = '';
  let pid = 0;

  function startServe(extra: string[] = []): void {
    const child = spawn(process.execPath, [CLI, 'serve', '--vm', guest.name, '--images', share, '--staging', staging, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (serveLog += d.toString()));
    child.on('exit', () => {
      if (serve === child) serve = undefined;
    });
    serve = child;
  }

  async function waitFor(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nserve:\n${serveLog}`);
      await sleep(100);
    }
  }

  const connections = () => serveLog.split('\n').filter((l) => l.includes(': connected')).length;
  const calls = async (list: GuestCall[], mark = ''): Promise<GuestCallResult[]> =>
    JSON.parse(await guestSh(guest.name, `node ${CLIENT} '${JSON.stringify(list)}' ${mark}`)) as GuestCallResult[];
  const ok = (r: GuestCallResult): Record<string, unknown> => {
    assert.ok(r.ok, `the call failed: ${JSON.stringify(r.error)}\nserve:\n${serveLog}`);
    return r.ok;
  };
  const failed = (r: GuestCallResult, status: string, message?: RegExp): void => {
    assert.equal(r.error?.status, status, JSON.stringify(r));
    if (message) assert.match(r.error!.message, message);
  };
  const freeze = (on: 0 | 1) => guestSh(guest.name,
    `echo ${on} > /sys/fs/cgroup${CGROUP}/cgroup.freeze; while ! grep -q 'frozen ${on}' /sys/fs/cgroup${CGROUP}/cgroup.events; do sleep 0.1; done`);
  const imageDirs = () => fs.readdirSync(share).filter((n) => /^[0-9a-f]{32}$/.test(n));

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64']);
    share = suite.dir;
    staging = suite.hostDir('staging');
    [guest] = await suite.guests();
    startServe();
    pid = Number((await guestSh(guest.name, `
      mkdir -p /sys/fs/cgroup${CGROUP}
      setsid sh -c 'echo $$ > /sys/fs/cgroup${CGROUP}/cgroup.procs; exec sleep 100000' </dev/null >/dev/null 2>&1 &
      for i in $(seq 50); do [ -s /sys/fs/cgroup${CGROUP}/cgroup.procs ] && break; sleep 0.1; done
      head -1 /sys/fs/cgroup${CGROUP}/cgroup.procs`)).trim());
    assert.ok(pid > 1, 'the tree started');
  });
  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    console.log(`serve log:\n${serveLog}`);
    console.log(`relay log:\n${await guestSh(guest.name, 'cat /run/ovmigrate/relay.log').catch(String)}`);
  });
  after(async () => {
    serve?.kill('SIGKILL');
    await suite.leave();
  });

  it('answers Hello, the guest starting its relay on first use', async () => {
    const [hello] = await calls([{ call: 'hello' }]);
    assert.deepEqual(ok(hello), { version: VERSION, max_request_bytes: (1 << 20) + 8192, max_concurrent_checkpoints: 2 });
    assert.match(await guestSh(guest.name, 'ls -l /run/ovmigrate/backend.sock'), /^srw------- /);
    // The port opens once: a second relay leaves it, and the socket, to the first.
    const second = await guestSh(guest.name, `node ${RELAY_MAIN} 2>&1; echo exit $?`);
    assert.match(second, /is open in another process \(a relay already runs\); exiting\nexit 0\n$/);
    ok((await calls([{ call: 'hello' }]))[0]);
  });

  it('checkpoints a frozen process tree into a new directory of the share, which Release removes', async () => {
    await freeze(1);
    const [cp] = await calls([{ call: 'checkpoint', id: 'sleeper', cgroup: CGROUP, config: '{}' }]);
    const reply = ok(cp) as { name: string; pids: number[]; pages_written: number; bytes_written: number; total_ms: number; pause_ms: number };
    assert.deepEqual(reply.pids, [pid]);
    assert.ok(reply.pages_written > 0 && reply.bytes_written > 0 && reply.total_ms > 0 && reply.pause_ms > 0, JSON.stringify(reply));
    assert.deepEqual(imageDirs(), [reply.name]);
    const dir = path.join(share, reply.name);
    const files = fs.readdirSync(dir);
    for (const f of ['inventory.img', 'pstree.img', `core-${pid}.img`, `mm-${pid}.img`, `pagemap-${pid}.img`, 'pages-1.img', 'files.img', 'descriptors.json']) {
      assert.ok(files.includes(f), `${f} in ${files.join(' ')}`);
    }
    const pstree = decodeImage(fs.readFileSync(path.join(dir, 'pstree.img')), 'pstree.img');
    assert.equal(entryObject(pstree, 0).pid, pid);
    assert.deepEqual(fs.readdirSync(staging), [], 'nothing left in staging');
    assert.match(serveLog, new RegExp(`info checkpoint sleeper \\(${CGROUP}\\) -> ${reply.name} .*"totalMs":\\d+.*"pauseMs"`));

    // The guest sees the images where the host wrote them.
    assert.match(await guestSh(guest.name, `ls ${dir}`), /inventory\.img/);
    const [released, again] = await calls([{ call: 'release', name: reply.name }, { call: 'release', name: reply.name }]);
    ok(released);
    failed(again, 'NOT_FOUND');
    assert.deepEqual(imageDirs(), []);
  });

  it('refuses a tree that is not frozen (FAILED_PRECONDITION) and a cgroup with no process (NOT_FOUND), leaving nothing', async () => {
    await freeze(0);
    const [thawed, missing] = await calls([
      { call: 'checkpoint', id: 'sleeper', cgroup: CGROUP, config: '{}' },
      { call: 'checkpoint', id: 'nobody', cgroup: '/no/such/cgroup' },
    ]);
    failed(thawed, 'FAILED_PRECONDITION', /is not frozen/);
    failed(missing, 'NOT_FOUND', /no process in cgroup \/no\/such\/cgroup/);
    assert.deepEqual(fs.readdirSync(share), []);
    assert.deepEqual(fs.readdirSync(staging), []);
  });

  it('rejects hostile requests and goes on serving', async () => {
    const results = await calls([
      { call: 'release', name: '../../etc' },
      { call: 'release', name: '/etc' },
      { call: 'release', name: 'f'.repeat(32) },
      // Over the backend's request size, under the channel's frame cap (a larger frame only closes its client).
      { call: 'checkpoint', id: 'big', cgroup: CGROUP, configBytes: MAX_REQUEST_BYTES },
      { call: 'checkpoint', id: '../x', cgroup: CGROUP },
      { call: 'checkpoint', id: 'up', cgroup: '/../..' },
      { call: 'hello' },
    ]);
    failed(results[0], 'INVALID_ARGUMENT', /not a name this backend gives/);
    failed(results[1], 'INVALID_ARGUMENT', /not a name this backend gives/);
    failed(results[2], 'NOT_FOUND', /not issued by this backend/);
    failed(results[3], 'INVALID_ARGUMENT', /request of \d+ bytes, more than/);
    failed(results[4], 'INVALID_ARGUMENT', /container id/);
    failed(results[5], 'INVALID_ARGUMENT', /cgroup/);
    ok(results[6]);
    assert.ok(fs.existsSync('/etc/passwd'));
    assert.deepEqual(fs.readdirSync(share), []);
  });

  it('drops a connection that sends garbage, connects again and serves the next relay', async () => {
    const before = connections();
    // With the relay stopped the port is free: write bytes that frame as no ttrpc message straight into it.
    await guestSh(guest.name, `
      relay=$(cat /run/ovmigrate/relay.pid); kill $relay; while kill -0 $relay 2>/dev/null; do sleep 0.1; done
      for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name)" = ovmigrate.0 ] && port=/dev/\${p##*/}; done
      printf 'GARBAGE GARBAGE GARBAGE' > $port`);
    await waitFor('the backend to drop the connection and connect again', () => connections() > before);
    assert.match(serveLog, /closing connection: ttrpc frame on stream \d+ announces \d+ bytes/);
    const [hello] = await calls([{ call: 'hello' }]);
    ok(hello);
  });

  it('a backend killed mid-request fails the call in the guest at once, and a new one serves again', async () => {
    await freeze(1);
    // Stopped, the backend takes the request off the channel but never answers it.
    serve!.kill('SIGSTOP');
    const mark = '/tmp/ovm-serve-calling';
    const pending = calls([{ call: 'checkpoint', id: 'sleeper', cgroup: CGROUP, config: '{}', timeoutMs: 120_000 }], mark);
    await waitFor('the guest client to call', async () => (await guestSh(guest.name, `test -e ${mark} && echo yes || true`)).trim() === 'yes');
    await sleep(1000);
    serve!.kill('SIGKILL');
    const [result] = await pending;
    // The kill, not the call's own 120 s deadline (that would be DEADLINE_EXCEEDED): the relay fails it as the host goes.
    failed(result, 'UNAVAILABLE', /went away before answering/);
    assert.deepEqual(imageDirs(), []);
    // With no backend at all, a shim's hello fails (unavailable, or at its own short deadline).
    const [absent] = await calls([{ call: 'hello', timeoutMs: 3000 }]);
    assert.ok(absent.error && ['UNAVAILABLE', 'DEADLINE_EXCEEDED'].includes(absent.error.status), JSON.stringify(absent));

    serveLog = '';
    startServe();
    await waitFor('the new backend to connect', () => connections() > 0);
    const [hello] = await calls([{ call: 'hello' }]);
    ok(hello);
  });

  it('frees the slots of image directories nobody releases: deleted by the guest, expired, or left by an earlier backend', async () => {
    await freeze(1);
    const stopped = new Promise((resolve) => serve!.once('exit', resolve));
    serve!.kill('SIGTERM');
    await stopped;
    serveLog = '';
    const TTL_S = 20;
    startServe(['--max-images', '2', '--image-ttl', String(TTL_S)]);
    await waitFor('the new backend to connect', () => connections() > 0);
    const checkpoint: GuestCall = { call: 'checkpoint', id: 'sleeper', cgroup: CGROUP, config: '{}' };
    const [a, b, full] = await calls([checkpoint, checkpoint, checkpoint]);
    const aName = ok(a).name as string;
    const bName = ok(b).name as string;
    const bIssued = Date.now();
    failed(full, 'RESOURCE_EXHAUSTED', /2 image directories are not released/);
    // A shim that deleted its copy and went away without a release.
    await guestSh(guest.name, `rm -rf ${path.join(share, aName)}`);
    const [c, full2] = await calls([checkpoint, checkpoint]);
    const cName = ok(c).name as string;
    await waitFor('the backend to log c', () => serveLog.includes(`-> ${cName} `));
    assert.match(serveLog, new RegExp(`image directory ${aName}: removed by the guest without a release; its slot is free`));
    if (full2.ok) {
      // A loaded machine can take longer than the TTL to get here: then b's slot was taken back first, as the backend's own log says in order.
      const name = full2.ok.name as string;
      await waitFor('the backend to log the third directory', () => serveLog.includes(`-> ${name} `));
      const taken = serveLog.indexOf(`image directory ${bName}: not released`);
      const issued = serveLog.indexOf(`-> ${name} `);
      assert.ok(taken >= 0 && issued > taken, `a third directory with none freed:\n${serveLog}`);
      ok((await calls([{ call: 'release', name }]))[0]);
    } else {
      failed(full2, 'RESOURCE_EXHAUSTED');
    }
    // Never released, b is taken back once its time is up.
    await sleep(Math.max(0, bIssued + (TTL_S + 1) * 1000 - Date.now()));
    const [d] = await calls([checkpoint]);
    const dName = ok(d).name as string;
    assert.ok(!imageDirs().includes(bName), `${bName} expired: ${imageDirs().join(' ')}`);
    assert.match(serveLog, new RegExp(`image directory ${bName}: not released \\d+ s after it was issued; taking it back`));
    // Names die with their backend: the next one removes their directories at start.
    const stopped2 = new Promise((resolve) => serve!.once('exit', resolve));
    serve!.kill('SIGKILL');
    await stopped2;
    assert.ok(imageDirs().includes(dName));
    serveLog = '';
    startServe();
    await waitFor('the new backend to connect', () => connections() > 0);
    assert.deepEqual(imageDirs().filter((n) => n === cName || n === dName), []);
    assert.deepEqual(fs.readdirSync(staging), []);
    ok((await calls([checkpoint]))[0]);
  });
});
