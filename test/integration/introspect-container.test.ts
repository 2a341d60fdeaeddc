import assert from 'node:assert/strict';
import path from 'node:path';
import { cliOk, requirePrograms } from '../helpers/cli.js';
import { UpResult } from '../helpers/lab-guests.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';

/** A process in a runc container (own pid, mount, uts, ipc namespaces, own cgroup) seen from guest RAM. */
describe('introspection of a process inside a runc container', function () {
  const suite = new PoolSuite('ctr', [{ containerd: true }]);
  const guestSh = suite.sh;
  const ns = suite.namespace;
  let guest: UpResult;
  let pid: number;

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'containerd', 'ctr', 'runc']);
    const image = path.join(suite.dir, 'busybox.oci.tar');
    [[guest]] = await Promise.all([suite.guests(), buildBusyboxImage(image)]);
    await guestSh(guest.name, `ctr -n ${ns} image import ${image} >/dev/null && ctr -n ${ns} run -d ${BUSYBOX_IMAGE} box sh -c 'cd /tmp; exec 3>/tmp/log; while :; do echo tick >&3; sleep 1; done'`);
    pid = Number(/^box\s+(\d+)\s+RUNNING$/m.exec(await guestSh(guest.name, `sleep 1; ctr -n ${ns} task ls`))![1]);
  });
  after(() => suite.leave());

  it('ps shows its pid in the container\'s namespace, its cgroup and parent as /proc does', async () => {
    const ps = JSON.parse(await cliOk(['ps', '--vm', guest.name, '--json'])) as { pid: number; ppid: number; nspid: number[]; cgroup: string; comm: string }[];
    const me = ps.find((p) => p.pid === pid)!;
    const status = await guestSh(guest.name, `cat /proc/${pid}/status`);
    assert.deepEqual(me.nspid, /^NSpid:\s+(.*)$/m.exec(status)![1].split(/\s+/).map(Number));
    assert.equal(me.nspid[me.nspid.length - 1], 1, 'init of its pid namespace');
    assert.equal(me.ppid, Number(/^PPid:\s+(\d+)$/m.exec(status)![1]));
    assert.equal(me.cgroup, (await guestSh(guest.name, `sed -n 's/^0:://p' /proc/${pid}/cgroup`)).trim());
    assert.match(me.cgroup, /box/);
  });

  it('maps and memory are the same as the guest\'s /proc shows them from outside the container', async () => {
    assert.equal(await cliOk(['maps', '--vm', guest.name, '--pid', String(pid)]), await guestSh(guest.name, `cat /proc/${pid}/maps`));
    const heap = (await guestSh(guest.name, `grep -m1 'rw-p' /proc/${pid}/maps`)).split(/[- ]/);
    const len = Number(BigInt('0x' + heap[1]) - BigInt('0x' + heap[0]));
    const ours = await cliOk(['read', '--vm', guest.name, '--pid', String(pid), '--addr', heap[0], '--len', String(len)], { binary: true });
    const theirs = await guestSh(guest.name, `python3 -c "import sys; f=open('/proc/${pid}/mem','rb'); f.seek(0x${heap[0]}); sys.stdout.write(f.read(${len}).hex())"`);
    assert.equal(Buffer.from(ours, 'latin1').toString('hex'), theirs);
  });

  it('inspect gives its namespaces, root, cwd and files as the guest sees them', async () => {
    const report = JSON.parse(await cliOk(['inspect', '--vm', guest.name, '--pid', String(pid), '--json'])) as {
      namespaces: Record<string, number>; root: string; cwd: string; files: { fd: number; path: string; pos: number }[] };
    const ns = await guestSh(guest.name, `for n in /proc/${pid}/ns/*; do echo "\${n##*/} $(readlink $n)"; done`);
    for (const line of ns.trim().split('\n')) {
      const [name, link] = line.split(' ');
      assert.equal(report.namespaces[name], Number(/\[(\d+)\]/.exec(link)![1]), `ns ${name}`);
    }
    const host = await guestSh(guest.name, `readlink /proc/1/ns/pid /proc/1/ns/mnt`);
    assert.ok(!host.includes(String(report.namespaces.pid)), 'its own pid namespace');
    assert.equal(report.root, (await guestSh(guest.name, `readlink /proc/${pid}/root`)).trim());
    assert.equal(report.cwd, (await guestSh(guest.name, `readlink /proc/${pid}/cwd`)).trim());
    const fd3 = report.files.find((f) => f.fd === 3)!;
    assert.equal(fd3.path, (await guestSh(guest.name, `readlink /proc/${pid}/fd/3`)).trim());
  });

  it('inspect lists the container\'s mounts as its /proc/PID/mountinfo does', async () => {
    const report = JSON.parse(await cliOk(['inspect', '--vm', guest.name, '--pid', String(pid), '--json'])) as {
      mounts: { id: number; parentId: number; dev: string; root: string; mountPoint: string; fsType: string; source: string; shared: number; master: number; flags: number }[] };
    const truth = (await guestSh(guest.name, `cat /proc/${pid}/mountinfo`)).trim().split('\n').map((line) => {
      const [left, right] = line.split(' - ');
      const f = left.split(' ');
      const opt = f.slice(6);
      const tag = (t: string) => Number(opt.find((o) => o.startsWith(t + ':'))?.split(':')[1] ?? 0);
      const [fsType, source] = right.split(' ');
      return { id: Number(f[0]), parentId: Number(f[1]), dev: f[2], root: f[3], mountPoint: f[4], fsType, source, shared: tag('shared'), master: tag('master') };
    });
    assert.ok(truth.length >= 5, 'runc gives the container several mounts');
    assert.deepEqual(report.mounts.map(({ flags: _flags, ...m }) => m), truth);
    // MNT_READONLY (0x40) where mountinfo says ro.
    const ro = (await guestSh(guest.name, `cat /proc/${pid}/mountinfo`)).trim().split('\n').filter((l) => l.split(' ')[5].split(',').includes('ro')).map((l) => Number(l.split(' ')[0]));
    assert.deepEqual(report.mounts.filter((m) => m.flags & 0x40).map((m) => m.id), ro);
  });
});
