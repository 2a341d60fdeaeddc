import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { requirePrograms } from '../helpers/cli.js';
import { pathCpuTicks } from '../helpers/cri-path-cpu.js';
import { UpResult } from '../helpers/lab-guests.js';
import { components } from '../helpers/components.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { ServedBackend } from '../helpers/served-backend.js';
import { BUSYBOX_IMAGE } from '../lab/busybox-image.js';
import { GUEST_CRI_LOG } from '../lab/cri-node.js';

/** A counter appending to a file of the container's rootfs every 0.2 s. */
const LOOP = 'i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; echo $i; sleep 0.2; done';
/** Any run of criu in the guest leaves this file (criu is bind-mounted over by a tripwire). */
const TRIPWIRE = '/run/criu-was-run';
/** The archives' directory in the guest (its tmpfs: the staging directory goes beside the archive). */
const OUT = '/var/lib/ovm-cricp';
const NODE_NETWORK = 2;
const CONTAINER_PID = 1;

/** The CRIU images every dump has, by name pattern. */
const IMAGE_KINDS = [/^inventory\.img$/, /^pstree\.img$/, /^core-\d+\.img$/, /^mm-\d+\.img$/, /^pages-\d+\.img$/];

/**
 * `crictl checkpoint` through ovmigrate-cri in a lab guest's containerd 1.6
 * (a pooled CRI node): the shim checkpoints out of the VM (the host's backend
 * dumps from guest RAM, CRIU in the guest is a tripwire) and the archive is
 * containerd 2.x's, as checkpointctl reads it; refusals leave the container
 * running and nothing at the location.
 */
components.declare(['cri-tools', 'checkpointctl']);

describe('ovmigrate-cri CheckpointContainer in a lab guest (containerd 1.6): the archive of containerd 2.x, CRIU not run in the guest', function () {
  const suite = new PoolSuite('cricp', [{ cri: true, slot: 'a' }]);
  let a: UpResult;
  let share: string;
  let images: string;
  let backend: ServedBackend;
  let checkpointctl: string;
  let pod = '';

  const sh = (script: string, timeoutS?: number) => suite.sh(a.name, script, timeoutS);
  /** A command's output and exit code, whatever they are. */
  const result = async (script: string, timeoutS?: number) => {
    const out = await sh(`{ ${script} ; } 2>&1; echo "exit=$?"`, timeoutS);
    const m = /exit=(\d+)\s*$/.exec(out);
    return { code: Number(m?.[1] ?? -1), out: out.replace(/exit=\d+\s*$/, '') };
  };
  const state = async (id: string) => (await sh(`crictl inspect -o go-template --template '{{.status.state}}' ${id}`)).trim();
  const count = async (id: string) => Number((await sh(`crictl exec ${id} sh -c 'wc -l < /tmp/count'`)).trim());
  /** Who ran criu in the guest (the tripwire's notes), or '' when nobody did. */
  const tripped = async () => (await sh(`cat ${TRIPWIRE} 2>/dev/null; true`)).trim();
  /** The directory's entries (hidden ones too): nothing at the location, no staging left. */
  const outEntries = async () => (await sh(`ls -A ${OUT}`)).split('\n').filter(Boolean);

  async function runs(id: string, what: string): Promise<void> {
    assert.equal(await state(id), 'CONTAINER_RUNNING', `${what}: running`);
    assert.equal((await sh(`cat /sys/fs/cgroup${suite.cgroup}/k8s/${id}/cgroup.freeze`)).trim(), '0', `${what}: thawed`);
    const n = await count(id);
    await sh('sleep 1.2');
    assert.ok((await count(id)) > n, `${what}: the counter goes on`);
  }

  /** A started container of the suite's pod; `extra` adds to its CRI ContainerConfig. */
  async function container(name: string, command: string, extra: object = {}): Promise<string> {
    const config = path.join(share, `${name}.json`);
    fs.writeFileSync(config, JSON.stringify({
      metadata: { name }, image: { image: BUSYBOX_IMAGE }, command: ['sh', '-c', command], log_path: `${name}.log`, ...extra,
    }));
    const id = (await sh(`crictl -t 300s create ${pod} ${config} ${share}/pod.json`, 400)).trim();
    await sh(`crictl -t 300s start ${id}`, 400);
    return id;
  }

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'containerd', 'ctr', 'runc', 'criu', 'python3', 'tar', 'busybox', 'gcc']);
    checkpointctl = await components.program('checkpointctl', 'checkpointctl', this);
    await components.ready('cri-tools', this);
    share = suite.dir;
    images = path.join(share, 'images');
    fs.mkdirSync(images);
    execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, 'hog'), path.join(__dirname, '..', '..', '..', 'test', 'programs', 'hog.c')]);
    [a] = await suite.guests();
    await sh(`mkdir -p /etc/ovmigrate ${OUT} && echo '${JSON.stringify({ images })}' > /etc/ovmigrate/shim.json`);
    // The tripwire notes who ran it (its argv and three ancestors' command lines), for the failure message.
    fs.writeFileSync(path.join(share, 'criu-tripwire'), [
      '#!/bin/sh', `{ echo "criu $*"; p=$PPID; for i in 1 2 3; do tr '\\0' ' ' < /proc/$p/cmdline; echo; p=$(cut -d' ' -f4 /proc/$p/stat); done; } >> ${TRIPWIRE}`, 'exit 1', '',
    ].join('\n'), { mode: 0o755 });
    await sh(`cp ${share}/criu-tripwire /run/criu-tripwire && chmod +x /run/criu-tripwire && mount --bind /run/criu-tripwire "$(command -v criu)"`);
    backend = new ServedBackend(a.name, images, suite.hostDir('staging'));
    await backend.start();
    fs.writeFileSync(path.join(share, 'pod.json'), JSON.stringify({
      metadata: { name: 'cricp', namespace: 'default', uid: `uid-cricp-${process.pid}`, attempt: 0 },
      log_directory: `/var/log/ovm-cricp-${process.pid}`,
      // The kubelet's defaults: the node's network here (no CNI), a pid namespace of the container's own.
      linux: { cgroup_parent: `${suite.cgroup}/k8s`, security_context: { namespace_options: { network: NODE_NETWORK, pid: CONTAINER_PID } } },
    }));
    pod = (await sh(`crictl -t 300s runp ${share}/pod.json`, 400)).trim();
  });

  after(async () => {
    await backend?.stop();
    if (a) {
      await sh(`[ -z "${pod}" ] || crictl -t 300s rmp -f ${pod} >/dev/null 2>&1
        umount "$(command -v criu)" 2>/dev/null; rm -rf ${TRIPWIRE} /run/criu-tripwire /etc/ovmigrate/shim.json ${OUT}
        [ ! -e /run/ovmigrate/relay.pid ] || kill $(cat /run/ovmigrate/relay.pid) 2>/dev/null; true`, 400).catch(() => undefined);
    }
    await suite.leave();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && a) {
      console.log(await sh(`tail -30 ${GUEST_CRI_LOG}; tail -30 /run/containerd.log`).catch(String));
      console.log(backend?.log.slice(-20).join('\n'));
    }
  });

  let c1 = '';

  it('crictl -t 60s checkpoint --export: the archive of containerd 2.x (0600), checkpointctl names container, image and engine; CRIU not run; the container runs on', async () => {
    // 64 MiB touched by a helper process: the pages cross the guest (shim copy, tar), measured below.
    c1 = await container('counter', `/hog 64 >/dev/null & ${LOOP}`, { mounts: [{ container_path: '/hog', host_path: `${share}/hog`, readonly: true }] });
    await sh(`for i in $(seq 100); do crictl exec ${c1} test -s /tmp/count && break; sleep 0.5; done`);
    await sh('sleep 2');
    const before = await pathCpuTicks(sh, c1);
    const t0 = Date.now();
    const r = await result(`crictl -t 60s checkpoint --export=${OUT}/c1.tar ${c1}`, 120);
    const ms = Date.now() - t0;
    assert.equal(r.code, 0, r.out);
    const after = await pathCpuTicks(sh, c1);
    const hz = Number((await sh('getconf CLK_TCK')).trim()) || 100;
    const cpu = Object.fromEntries(Object.keys(before).map((k) => [k, ((after[k] - before[k]) / hz).toFixed(2)]));
    console.log(`      guest CPU seconds for a 64 MiB container's checkpoint (${ms} ms): ovmigrate-cri ${cpu.cri}, shim ${cpu.shim}, relay ${cpu.relay}`);

    assert.equal(await tripped(), '', 'criu was not run in the guest');
    assert.notEqual((await result('criu --version')).code, 0, 'criu cannot run in the guest');
    assert.match(await tripped(), /^criu --version$/m, 'the tripwire notes who ran criu');
    await sh(`rm ${TRIPWIRE}`); // this test's own call: later checks look for any other
    assert.ok(backend.log.some((l) => l.includes(c1) && /checkpoint/i.test(l)), 'the host backend made the images');

    assert.equal((await sh(`stat -c %a ${OUT}/c1.tar`)).trim(), '600');
    assert.deepEqual(await outEntries(), ['c1.tar'], 'no staging or temporary file left');
    const entries = (await sh(`tar -tf ${OUT}/c1.tar`)).split('\n').filter(Boolean);
    const top = [...new Set(entries.map((e) => e.split('/')[0]))].sort();
    assert.deepEqual(top, ['checkpoint', 'config.dump', 'container.log', 'rootfs-diff.tar', 'spec.dump', 'stats-dump', 'status.dump']);
    const imageNames = entries.filter((e) => e.startsWith('checkpoint/') && e !== 'checkpoint/').map((e) => e.slice('checkpoint/'.length));
    assert.ok(imageNames.every((n) => n && !n.includes('/')), 'checkpoint/ is flat');
    for (const kind of IMAGE_KINDS) assert.ok(imageNames.some((n) => kind.test(n)), `a CRIU image ${kind} in ${imageNames.join(' ')}`);
    assert.match(await sh(`tar -xOf ${OUT}/c1.tar checkpoint/inventory.img | head -c 4 | od -An -tx4`), /58313116/, "CRIU's inventory magic");
    assert.match(await sh(`tar -xOf ${OUT}/c1.tar rootfs-diff.tar | tar -t`), /^tmp\/count$/m, 'the counter file in the rw layer');
    const config = JSON.parse(await sh(`tar -xOf ${OUT}/c1.tar config.dump`)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(config), ['id', 'name', 'rootfsImage', 'rootfsImageRef', 'rootfsImageName', 'runtime', 'createdTime', 'checkpointedTime', 'restoredTime', 'restored']);
    assert.equal(config.id, c1);
    assert.equal(config.name, `counter_cricp_default_uid-cricp-${process.pid}_0`);
    const status = JSON.parse(await sh(`tar -xOf ${OUT}/c1.tar status.dump`)) as Record<string, unknown>;
    assert.equal(status.id, c1);
    const spec = JSON.parse(await sh(`tar -xOf ${OUT}/c1.tar spec.dump`)) as { annotations: Record<string, string> };
    assert.equal(spec.annotations['io.kubernetes.cri.container-name'], 'counter');

    const show = await sh(`${checkpointctl} show ${OUT}/c1.tar`);
    assert.match(show, /counter/);
    assert.match(show, new RegExp(BUSYBOX_IMAGE.replace(/[.]/g, '\\.')));
    assert.match(show, /containerd/);
    const inspect = await sh(`${checkpointctl} inspect ${OUT}/c1.tar`);
    assert.match(inspect, /Engine: containerd/);
    assert.match(inspect, new RegExp(`Image: ${BUSYBOX_IMAGE.replace(/[.]/g, '\\.')}`));
    assert.match(inspect, /Runtime: io\.containerd\.ovmigrate\.v1/);

    await runs(c1, 'after the checkpoint');
  });

  it('the host writes the archive: linked when the location is on the share\'s mount, copied by the kernel elsewhere; a log too large for one backend request takes the images through the guest', async () => {
    // Guest CPU of one checkpoint of c1 (64 MiB) into `location`, and how the archive was made (the proxy's log line).
    const measure = async (location: string) => {
      const before = await pathCpuTicks(sh, c1);
      const t0 = Date.now();
      const r = await result(`crictl -t 120s checkpoint --export=${location} ${c1}`, 200);
      const ms = Date.now() - t0;
      assert.equal(r.code, 0, r.out);
      const after = await pathCpuTicks(sh, c1);
      const hz = Number((await sh('getconf CLK_TCK')).trim()) || 100;
      const cpu = Object.fromEntries(Object.keys(before).map((k) => [k, (after[k] - before[k]) / hz]));
      const line = (await sh(`grep -F '${location} in' ${GUEST_CRI_LOG} | tail -1`)).trim();
      return { ms, cpu, total: cpu.cri + cpu.shim + cpu.relay, byHost: line.includes('the archive written by the host') };
    };
    const shown = (m: { ms: number; cpu: Record<string, number>; total: number }) =>
      `${m.ms} ms; ovmigrate-cri ${m.cpu.cri.toFixed(2)}, shim ${m.cpu.shim.toFixed(2)}, relay ${m.cpu.relay.toFixed(2)}: ${m.total.toFixed(2)} s`;
    const top = async (file: string) => [...new Set((await sh(`tar -tf ${file}`)).split('\n').filter(Boolean).map((e) => e.split('/')[0]))].sort();
    const layout = ['checkpoint', 'config.dump', 'container.log', 'rootfs-diff.tar', 'spec.dump', 'stats-dump', 'status.dump'];
    assert.match(await sh(`grep -F '${OUT}/c1.tar in' ${GUEST_CRI_LOG}`), /the archive written by the host/, 'the first archive (guest tmpfs) was the host\'s, copied');

    // On the share's mount: a hard link to the host's file, no byte of it through the guest.
    const onShare = path.join(share, 'kubelet-checkpoints');
    fs.mkdirSync(onShare);
    const linked = await measure(`${onShare}/c1.tar`);
    console.log(`      guest CPU, location on the share (linked): ${shown(linked)}`);
    assert.ok(linked.byHost, 'the host wrote the archive');
    assert.deepEqual(fs.readdirSync(onShare), ['c1.tar'], 'no staging left');
    assert.equal(fs.statSync(path.join(onShare, 'c1.tar')).mode & 0o777, 0o600);
    assert.deepEqual(await top(`${onShare}/c1.tar`), layout);
    assert.match(await sh(`${checkpointctl} inspect ${onShare}/c1.tar`), /Runtime: io\.containerd\.ovmigrate\.v1/);
    assert.deepEqual(fs.readdirSync(images), [], 'the backend\'s file released (the archive at location is a link of its own)');

    // A rw layer past what one backend request carries: the images come through the guest, which writes the archive.
    await sh(`crictl exec ${c1} sh -c 'head -c 1300000 /dev/urandom > /big'`);
    try {
      const guest = await measure(`${OUT}/c1-guest.tar`);
      console.log(`      guest CPU, metadata too large for the host (images through the guest, as before): ${shown(guest)}`);
      assert.ok(!guest.byHost, 'the guest wrote the archive');
      assert.deepEqual(await top(`${OUT}/c1-guest.tar`), layout);
      assert.match(await sh(`tar -xOf ${OUT}/c1-guest.tar rootfs-diff.tar | tar -t`), /^big$/m, 'the large file in the rw layer');
    } finally {
      await sh(`rm -f ${OUT}/c1-guest.tar; crictl exec ${c1} rm -f /big`);
    }
    assert.equal(await tripped(), '', 'criu was not run in the guest');
    assert.deepEqual(await outEntries(), ['c1.tar']);
    await runs(c1, 'after the checkpoints');
  });

  it('an existing location is refused (ALREADY_EXISTS), untouched; an unknown container is NOT_FOUND; a container not running is refused', async () => {
    await sh(`echo mine > ${OUT}/taken.tar`);
    const r = await result(`crictl -t 60s checkpoint --export=${OUT}/taken.tar ${c1}`, 120);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /AlreadyExists/);
    assert.match(r.out, /already exists/);
    assert.equal((await sh(`cat ${OUT}/taken.tar`)).trim(), 'mine');
    await sh(`rm ${OUT}/taken.tar`);

    const unknown = await result(`crictl -t 60s checkpoint --export=${OUT}/x.tar no-such-container`, 120);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.out, /not found/i);

    const config = path.join(share, 'idle.json');
    fs.writeFileSync(config, JSON.stringify({ metadata: { name: 'idle' }, image: { image: BUSYBOX_IMAGE }, command: ['sleep', '1000'] }));
    const created = (await sh(`crictl -t 300s create ${pod} ${config} ${share}/pod.json`, 400)).trim();
    const notRunning = await result(`crictl -t 60s checkpoint --export=${OUT}/x.tar ${created}`, 120);
    assert.notEqual(notRunning.code, 0);
    assert.match(notRunning.out, /FailedPrecondition.*only running containers can be checkpointed/s);
    await sh(`crictl rm ${created}`);
    assert.deepEqual(await outEntries(), ['c1.tar']);
    await runs(c1, 'after the refusals');
  });

  it('a container that cannot be checkpointed (a raw ICMP socket, which CRIU has no image for): the backend\'s reason, the container runs on, nothing left', async () => {
    const id = await container('pinger', `ping -q -i 5 127.0.0.1 >/dev/null & ${LOOP}`);
    await sh(`for i in $(seq 100); do crictl exec ${id} sh -c 'ls -l /proc/[0-9]*/fd 2>/dev/null | grep -q socket:' && crictl exec ${id} test -s /tmp/count && break; sleep 0.5; done`);
    const r = await result(`crictl -t 60s checkpoint --export=${OUT}/l.tar ${id}`, 120);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /raw|socket/i, r.out);
    assert.match(r.out, /ping/, `names what: ${r.out}`);
    assert.deepEqual(await outEntries(), ['c1.tar'], 'nothing at the location, no staging left');
    await runs(id, 'after the refusal');
    await sh(`crictl stop -t 0 ${id} >/dev/null; crictl rm ${id} >/dev/null`, 400);
  });

  it('a client deadline that expires mid-checkpoint (crictl -t 1s): DeadlineExceeded; then the container is thawed and running, nothing at the location', async () => {
    const r = await result(`crictl -t 1s checkpoint --export=${OUT}/late.tar ${c1}`, 120);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /DeadlineExceeded|deadline/i, r.out);
    // The checkpoint underway runs to its end (the shim cannot be interrupted), then resumes and removes its work.
    await sh(`for i in $(seq 600); do grep -q 'late.tar' ${GUEST_CRI_LOG} && [ -z "$(ls -A ${OUT} | grep -v '^c1.tar$')" ] && break; sleep 0.5; done`, 400);
    assert.match(await sh(`grep late.tar ${GUEST_CRI_LOG} || true`), /late\.tar/, 'the proxy logged the abandoned checkpoint');
    assert.deepEqual(await outEntries(), ['c1.tar'], 'nothing at the location, no staging left');
    await runs(c1, 'after the abandoned checkpoint');
  });
});
