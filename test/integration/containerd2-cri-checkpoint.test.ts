import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { STAND_IN_DIR } from '../../shim/criu-version/index.js';
import { requirePrograms } from '../helpers/cli.js';
import { UpResult } from '../helpers/lab-guests.js';
import { components } from '../helpers/components.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { ServedBackend } from '../helpers/served-backend.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';
import { CONTAINERD_V2_SOCKET, CRI_NAMESPACE, shimSearchPath, v2Programs } from '../lab/containerd-v2.js';
import { buildPauseImage } from '../lab/pause-image.js';

const run = promisify(execFile);

/** A counter kept in the shell's memory ($i) and appended to a file of the container's rootfs every 0.2 s. */
const COUNTER = 'i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.2; done';
/** Where guest A's hidden criu leaves a mark if anything runs it anyway (it is not executable). */
const TRIPWIRE = '/run/criu-was-run';
const NODE_NETWORK = 2; // NamespaceMode.NODE: no CNI in the lab guests
const OWN_PID_NS = 1; // NamespaceMode.CONTAINER: the container's init is pid 1 of its own pid namespace

/**
 * containerd 2.x's own CRI, no ovmigrate-cri in front: CheckpointContainer
 * calls our shim's Task.Checkpoint (options nil, a temporary path, the
 * container paused around it by containerd), the backend dumps from guest
 * A's RAM, and containerd writes the archive; guest A has no runnable CRIU,
 * only the version-only stand-in that containerd's criu check finds. Guest B
 * (real CRIU) restores the archive through CreateContainer with the archive
 * as the image (enable_experimental_restore_via_create) and StartContainer.
 */
/** The pinned Go components the suite runs (built in the background from the start of the run). */
const COMPONENTS = ['containerd', 'cri-tools', 'checkpointctl'];
components.declare(COMPONENTS);

describe('containerd 2.x CRI without the CRI layer: CheckpointContainer through our shim, restore via CreateContainer', function () {
  const suite = new PoolSuite('cdtwo', [
    { containerd: true, containerdVersion: '2', slot: 'a' },
    { containerd: true, containerdVersion: '2', slot: 'b' },
  ]);
  let share: string;
  let images: string;
  let a: UpResult;
  let b: UpResult;
  let backend: ServedBackend;
  let p: ReturnType<typeof v2Programs>;
  let archive: string;
  let atCheckpoint = 0;
  /** Guest A's criu binary, hidden under a file that is not executable. */
  let criuPath = '';
  const ids: Record<string, { pod: string; ctr: string }> = {};

  /** crictl against containerd's own CRI socket; its deadline (-t, 2 s by default) is a slow TCG guest's. */
  const crictl = (g: UpResult, args: string, timeoutS = 240) =>
    suite.sh(g.name, `${p.crictl} -r unix://${CONTAINERD_V2_SOCKET} -i unix://${CONTAINERD_V2_SOCKET} -t ${timeoutS}s ${args}`, timeoutS + 60);
  const count = async (g: UpResult, ctr: string) => Number((await crictl(g, `exec ${ctr} sh -c 'wc -l < /tmp/count'`)).trim());
  const state = async (g: UpResult, ctr: string) => (JSON.parse(await crictl(g, `inspect -o json ${ctr}`)) as { status: { state: string } }).status.state;
  const tripped = async () => (await suite.sh(a.name, `test -e ${TRIPWIRE} && echo yes || echo no`)).trim() === 'yes';
  /** The `criu` containerd's CRI resolves: the first executable regular file named criu along the shims' PATH. */
  const resolvedCriu = (g: UpResult) => suite.sh(g.name, `p='${shimSearchPath()}'; IFS=:; for d in $p; do
      [ -f "$d/criu" ] && [ -x "$d/criu" ] && { echo "$d/criu"; exit 0; }; done; echo none`).then((s) => s.trim());

  async function assertCountsOn(g: UpResult, ctr: string, what: string): Promise<void> {
    const n = await count(g, ctr);
    await suite.sh(g.name, 'sleep 1.2');
    assert.ok((await count(g, ctr)) > n, `${what}: the counter goes on`);
    const seq = (await crictl(g, `exec ${ctr} cat /tmp/count`)).trim().split('\n').map(Number);
    assert.deepEqual(seq, seq.map((_, i) => i + 1), `${what}: every number once, in order (memory and file agree)`);
  }

  function writeConfigs(name: string, image: string): { pod: string; ctr: string } {
    const pod = path.join(share, `${name}-pod.json`);
    const ctr = path.join(share, `${name}-ctr.json`);
    fs.writeFileSync(pod, JSON.stringify({
      metadata: { name: `${name}-pod`, uid: `${name}-${process.pid}`, namespace: 'default', attempt: 0 },
      log_directory: `/var/log/pods/${name}`,
      linux: { cgroup_parent: suite.cgroup, security_context: { namespace_options: { network: NODE_NETWORK, pid: OWN_PID_NS } } },
    }));
    fs.writeFileSync(ctr, JSON.stringify({
      metadata: { name: 'counter' },
      image: { image },
      command: ['sh', '-c', COUNTER],
      log_path: 'counter.log',
      linux: { security_context: { namespace_options: { network: NODE_NETWORK, pid: OWN_PID_NS } } },
    }));
    return { pod, ctr };
  }

  async function runPod(g: UpResult, name: string, image: string): Promise<{ pod: string; ctr: string }> {
    const files = writeConfigs(name, image);
    const pod = (await crictl(g, `runp ${files.pod}`)).trim();
    const ctr = (await crictl(g, `create ${pod} ${files.ctr} ${files.pod}`)).trim();
    await crictl(g, `start ${ctr}`);
    ids[g.name] = { pod, ctr };
    return { pod, ctr };
  }

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'python3', 'tar', 'busybox', 'gcc']);
    for (const id of COMPONENTS) await components.ready(id, this);
    p = v2Programs();
    share = suite.dir;
    images = path.join(share, 'images');
    fs.mkdirSync(images);
    [[a, b]] = await Promise.all([
      suite.guests(),
      buildBusyboxImage(path.join(share, 'busybox.tar')),
      buildPauseImage(path.join(share, 'pause.tar')),
    ]);
    await Promise.all([a, b].map((g) => suite.sh(g.name,
      `${p.ctr} -n ${CRI_NAMESPACE} image import ${share}/busybox.tar >/dev/null && ${p.ctr} -n ${CRI_NAMESPACE} image import ${share}/pause.tar >/dev/null`)));
    await suite.sh(a.name, `mkdir -p /etc/ovmigrate && echo '${JSON.stringify({ images })}' > /etc/ovmigrate/shim.json`);
    // CRIU in guest A: a file that is not executable where the binary was (anything that ran it anyway would leave the mark).
    criuPath = (await suite.sh(a.name, 'command -v criu')).trim();
    await suite.sh(a.name, `printf '#!/bin/sh\\ntouch ${TRIPWIRE}\\nexit 1\\n' > /run/criu-hidden && chmod 0644 /run/criu-hidden
      mount --bind /run/criu-hidden ${criuPath}`);
    backend = new ServedBackend(a.name, images, suite.hostDir('staging'));
    await backend.start();
  });

  after(async () => {
    await backend?.stop();
    await Promise.all([a, b].filter(Boolean).map((g) => crictl(g, 'rmp -af').catch(() => undefined)));
    if (a) await suite.sh(a.name, `[ -z "${criuPath}" ] || umount ${criuPath} 2>/dev/null; rm -f ${TRIPWIRE} /run/criu-hidden /etc/ovmigrate/shim.json
      [ ! -e /run/ovmigrate/relay.pid ] || kill $(cat /run/ovmigrate/relay.pid) 2>/dev/null; true`);
    await suite.leave();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const g of [a, b].filter(Boolean)) {
      const logs = await suite.sh(g.name, 'tail -40 /run/containerd.log').catch((e: unknown) => String(e));
      process.stdout.write(`containerd log in ${g.name}:\n${logs}\n`);
    }
    process.stdout.write(`backend log:\n${backend?.log.slice(-30).join('\n')}\n`);
  });

  it('guest A cannot run CRIU; containerd\'s criu lookup finds the stand-in there and the real CRIU in guest B', async () => {
    const hidden = await suite.sh(a.name, `${criuPath} --version >/dev/null 2>&1; echo $?; criu --version >/dev/null 2>&1; echo $?`);
    assert.deepEqual(hidden.trim().split('\n'), ['126', '127'], 'criu in guest A is not executable, nor found on PATH');
    assert.ok(!(await tripped()));
    assert.equal(await resolvedCriu(a), path.join(STAND_IN_DIR, 'criu'));
    assert.match(await resolvedCriu(b), /^\/usr\/s?bin\/criu$/);
    // The shim's PATH (containerd's shim env) is the one it hands runc, less the stand-in.
    assert.ok(shimSearchPath().split(':').includes(STAND_IN_DIR));
  });

  it('crictl checkpoint in guest A: containerd 2.x archives the images the host dumped; CRIU never ran; the container runs on', async () => {
    const { ctr } = await runPod(a, 'cda', BUSYBOX_IMAGE);
    await suite.sh(a.name, `for i in $(seq 100); do ${p.crictl} -r unix://${CONTAINERD_V2_SOCKET} -t 60s exec ${ctr} test -s /tmp/count && break; sleep 0.5; done`);
    await suite.sh(a.name, 'sleep 1');
    const before = await count(a, ctr);
    archive = path.join(share, 'cda.tar');
    const mark = backend.log.length;
    await crictl(a, `checkpoint --export=${archive} ${ctr}`, 60);
    assert.ok(!(await tripped()), 'criu was not run in guest A');
    assert.ok(backend.log.slice(mark).some((l) => /\bcheckpoint\b/.test(l) && l.includes(ctr)), `the backend made the images:\n${backend.log.slice(mark).join('\n')}`);
    assert.equal(fs.statSync(archive).mode & 0o777, 0o600, 'the archive is 0600');

    const { stdout: listing } = await run('tar', ['-tvf', archive]);
    const names = listing.trim().split('\n').map((l) => l.split(/\s+/).pop()!.replace(/^\.\//, ''));
    for (const f of ['config.dump', 'spec.dump', 'status.dump', 'rootfs-diff.tar']) assert.ok(names.includes(f), `${f} in the archive:\n${listing}`);
    const dumped = names.filter((n) => n.startsWith('checkpoint/') && n !== 'checkpoint/');
    for (const f of ['inventory.img', 'pstree.img']) assert.ok(dumped.includes(`checkpoint/${f}`), `checkpoint/${f}:\n${listing}`);
    assert.ok(dumped.some((n) => /^checkpoint\/pages-\d+\.img$/.test(n)), 'memory pages');
    assert.ok(dumped.every((n) => !n.slice('checkpoint/'.length).includes('/')), 'checkpoint/ is flat');
    // The memory counter at the checkpoint, from the rootfs diff (the same frozen moment): what B must go on from.
    const { stdout: diff } = await run('sh', ['-c', `tar -xOf ${archive} rootfs-diff.tar | tar -xzOf - tmp/count`]);
    atCheckpoint = diff.trim().split('\n').length;
    assert.ok(atCheckpoint >= before, `the archive holds the counter at the checkpoint (${atCheckpoint} >= ${before})`);

    const { stdout: inspected } = await run(p.checkpointctl, ['inspect', archive]);
    assert.match(inspected, /counter/, `checkpointctl names the container:\n${inspected}`);
    assert.match(inspected, /ovmigrate\/busybox/, 'and its image');
    assert.match(inspected, /containerd/i, 'and the engine');

    assert.equal(await state(a, ctr), 'CONTAINER_RUNNING', 'resumed by containerd');
    await assertCountsOn(a, ctr, 'guest A after the checkpoint');
    assert.deepEqual(fs.readdirSync(images).filter((n) => !n.startsWith('.')), [], 'the image directory was released');
  });

  it('crictl create with the archive as image, then start, in guest B (real CRIU): the counter goes on from the checkpoint', async function () {
    assert.ok(archive, 'no archive to restore (the checkpoint test before this one failed)');
    const { ctr } = await runPod(b, 'cdb', archive);
    assert.equal(await state(b, ctr), 'CONTAINER_RUNNING');
    const info = await suite.sh(b.name, `${p.ctr} -n ${CRI_NAMESPACE} containers info ${ctr}`);
    assert.match(info, /io\.containerd\.ovmigrate\.v1/, 'restored by our shim');
    const n = await count(b, ctr);
    assert.ok(n > atCheckpoint, `guest B goes on from the checkpointed count (${n} > ${atCheckpoint})`);
    await assertCountsOn(b, ctr, 'guest B after the restore');
  });
});
