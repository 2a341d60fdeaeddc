import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GuestCall, GuestCallResult } from '../helpers/backend-guest-client.js';
import { CLI, missingComponent, requirePrograms } from '../helpers/cli.js';
import { UpResult } from '../helpers/lab-guests.js';
import { PoolSuite } from '../helpers/pool-suite.js';

const CLIENT = path.resolve(__dirname, '..', 'helpers', 'backend-guest-client.js');
const ATTACKER = path.resolve(__dirname, '..', 'helpers', 'hostile-swap.js');
/** Files in the guest's subdirectory and in the host directory it points its symlink at, of the same names. */
const FILES = 10_000;

/**
 * `ovmigrate serve` with its images on a virtiofs share, where a guest
 * process can hold an image directory open while the host renames it out
 * of the share, and go on changing it. The hostile guest of issue 11:
 * it swaps a subdirectory of the released directory for a symlink to a
 * host directory as soon as the host starts deleting in it. Against the
 * release before the fix (rename out of the share, then a recursive remove
 * by path), under virtiofsd's chroot sandbox, that attack deleted 5290 of
 * 10,000 host files; whether the swap lands inside the host's walk is a
 * race, so that reproduction is not a test here.
 */
describe('ovmigrate serve on a virtiofs share: a guest holding an image directory open', function () {
  const suite = new PoolSuite('servevfs', [{ virtiofs: true }]);
  const CGROUP = `${suite.cgroup}/tree`;
  let images: string;
  let staging: string;
  let victim: string;
  let guest: UpResult;
  let serve: ChildProcess | undefined;
  let serveLog = '';

  const sh = (script: string) => suite.sh(guest.name, script);
  const calls = async (list: GuestCall[]): Promise<GuestCallResult[]> =>
    JSON.parse(await sh(`node ${CLIENT} '${JSON.stringify(list)}'`)) as GuestCallResult[];
  const ok = (r: GuestCallResult): Record<string, unknown> => {
    assert.ok(r.ok, `the call failed: ${JSON.stringify(r.error)}\nserve:\n${serveLog}`);
    return r.ok;
  };

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64']);
    if (!['/usr/libexec/virtiofsd', '/usr/lib/qemu/virtiofsd'].some((p) => fs.existsSync(p))) missingComponent(this, 'no virtiofsd');
    images = suite.virtiofsDir;
    staging = suite.hostDir('staging');
    victim = suite.hostDir('victim');
    for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(victim, `n${i}`), 'host file');
    [guest] = await suite.guests();
    serve = spawn(process.execPath, [CLI, 'serve', '--vm', guest.name, '--images', images, '--staging', staging], { stdio: ['ignore', 'ignore', 'pipe'] });
    serve.stderr!.on('data', (d: Buffer) => (serveLog += d.toString()));
    await sh(`
      mkdir -p /sys/fs/cgroup${CGROUP}
      setsid sh -c 'echo $$ > /sys/fs/cgroup${CGROUP}/cgroup.procs; exec sleep 100000' </dev/null >/dev/null 2>&1 &
      for i in $(seq 50); do [ -s /sys/fs/cgroup${CGROUP}/cgroup.procs ] && break; sleep 0.1; done
      echo 1 > /sys/fs/cgroup${CGROUP}/cgroup.freeze
      while ! grep -q 'frozen 1' /sys/fs/cgroup${CGROUP}/cgroup.events; do sleep 0.1; done`);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(`serve log:\n${serveLog}`);
  });
  after(async () => {
    serve?.kill('SIGKILL');
    await suite.leave();
  });

  it('mounts the images directory over virtiofs', async () => {
    assert.match(await sh(`grep ' ${path.dirname(images)} ' /proc/mounts`), / virtiofs /);
  });

  it('Release removes the images and deletes no host file through a subdirectory swapped for a symlink mid-removal', async () => {
    const [cp] = await calls([{ call: 'checkpoint', id: 'sleeper', cgroup: CGROUP, config: '{}' }]);
    const { name } = ok(cp) as { name: string };
    const dir = path.join(images, name);
    // The guest's subdirectory, made from the host side of the share (the same directory the guest sees).
    fs.mkdirSync(path.join(dir, 'sub'));
    for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(dir, 'sub', `n${i}`), '');
    // The attacker's working directory is its handle on the image directory, wherever the host moves it.
    await sh(`
      rm -f /tmp/vfs-attacker.pid /tmp/vfs-attacker.stop
      setsid node ${ATTACKER} ${dir} ${FILES} ${victim} /tmp/vfs-attacker.pid /tmp/vfs-attacker.stop </dev/null >/tmp/vfs-attacker.out 2>&1 &
      for i in $(seq 3000); do [ -s /tmp/vfs-attacker.pid ] && break; sleep 0.1; done
      [ -s /tmp/vfs-attacker.pid ] || { cat /tmp/vfs-attacker.out; exit 1; }`);
    const [released] = await calls([{ call: 'release', name }]);
    await sleep(1000);
    const kept = fs.readdirSync(victim).length;
    const attacker = await sh('touch /tmp/vfs-attacker.stop; sleep 0.5; cat /tmp/vfs-attacker.out');
    assert.equal(kept, FILES, `${FILES - kept} host files deleted through the guest's symlink (attacker: ${attacker.trim()}; release: ${JSON.stringify(released)})`);
    ok(released);
    assert.ok(!fs.readdirSync(images).includes(name), 'gone from the share');
    const left = path.join(staging, `.released-${name}`);
    assert.deepEqual(fs.readdirSync(left), ['sub'], 'the images went; the guest\'s own directory was left alone');
    assert.match(serveLog, new RegExp(`image directory ${name}: left in .* holding 1 entries that are not regular files \\(sub\\)`));

    // The guest still holds it, out of the share: what it makes there the host never walks either.
    await sh(`cd /proc/$(cat /tmp/vfs-attacker.pid)/cwd && touch after && ln -s ${victim} link`);
    assert.deepEqual(fs.readdirSync(left).sort(), ['after', 'link', 'sub']);
  });

  it('a new backend removes the leftovers flat, keeping what the guest swapped in', async () => {
    serve!.kill('SIGTERM');
    await new Promise((resolve) => serve!.once('exit', resolve));
    serveLog = '';
    const [name] = fs.readdirSync(staging).filter((n) => n.startsWith('.released-'));
    serve = spawn(process.execPath, [CLI, 'serve', '--vm', guest.name, '--images', images, '--staging', staging], { stdio: ['ignore', 'ignore', 'pipe'] });
    serve.stderr!.on('data', (d: Buffer) => (serveLog += d.toString()));
    for (let i = 0; i < 300 && !serveLog.includes('serving'); i++) await sleep(100);
    assert.deepEqual(fs.readdirSync(path.join(staging, name)).sort(), ['link', 'sub']);
    assert.equal(fs.readdirSync(victim).length, FILES);
    ok((await calls([{ call: 'hello' }]))[0]);
  });
});
