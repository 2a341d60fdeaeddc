import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { requirePrograms } from '../helpers/cli.js';
import { UpResult } from '../helpers/lab-guests.js';
import { components } from '../helpers/components.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { ServedBackend } from '../helpers/served-backend.js';
import { CRI_NODE_IMAGES, GUEST_CRI_LOG } from '../lab/cri-node.js';

const RUNC_ROOT = '/run/containerd/runc/k8s.io';
const BUNDLES = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';
/** The counter: in memory (i) and in a file of the container's rw layer, one line per tick. */
const LOOP = 'i=0; while true; do i=$((i+1)); echo $i >> /count; sleep 0.2; done';

/**
 * An OCI image layout archive of a checkpoint image as checkpointctl build
 * makes one: one layer holding the archive's files, annotated with the
 * checkpointed container's name; `ctr image import` names it `name`.
 */
function checkpointImage(archive: string, out: string, name: string): void {
  const layout = `${out}.layout`;
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  const blob = (mediaType: string, data: Buffer) => {
    const hex = crypto.createHash('sha256').update(data).digest('hex');
    fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), data);
    return { mediaType, digest: `sha256:${hex}`, size: data.length };
  };
  const annotations = { 'org.criu.checkpoint.container.name': 'counter' };
  const layer = blob('application/vnd.oci.image.layer.v1.tar', fs.readFileSync(archive));
  const config = blob('application/vnd.oci.image.config.v1+json', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })));
  const manifest = blob('application/vnd.oci.image.manifest.v1+json', Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer], annotations,
  })));
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations: { ...annotations, 'io.containerd.image.name': name } }] }));
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  execFileSync('tar', ['-C', layout, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  fs.rmSync(layout, { recursive: true });
}

/** The archives' directory in guest A (its tmpfs: ovmigrate-cri stages beside the archive). */
const OUT = '/var/lib/ovm-crirestore';

/**
 * Restore through ovmigrate-cri with crictl, as a Kubernetes node does it:
 * `crictl runp`, `crictl create POD ctr.json pod.json` whose image is a
 * checkpoint archive (or a checkpoint image), `crictl start`, in guest B, of
 * a container checkpointed in guest A with `crictl checkpoint` through
 * ovmigrate-cri (out of the VM: the host's backend). The workload must go on
 * from its state: the counter in memory continues from the checkpointed
 * value, and the file it writes holds every earlier value once.
 */
components.declare(['cri-tools']);

describe('ovmigrate-cri restore: crictl create from a checkpoint archive in another guest', function () {
  const suite = new PoolSuite('crirestore', [{ cri: true, slot: 'a' }, { cri: true, slot: 'b' }]);
  let share: string;
  let a: UpResult;
  let b: UpResult;
  /** The suite's one pod in each guest: a pod costs a shim (a node program) in a TCG guest; containers share it. */
  const pods = new Map<UpResult, Promise<{ pod: string; podFile: string }>>();
  /** Each container of a pod its own attempt, so that they all keep the checkpointed container's name. */
  let attempt = 0;
  /** The counter in guest A (the first test starts it; the second dumps it again, with runc/CRIU). */
  let counter: string | undefined;
  /** The archive of the second test (made by in-guest runc/CRIU), and the counter's value in it. */
  let third: { archive: string; n: number } | undefined;
  let backend: ServedBackend;

  const sh = (g: UpResult, script: string, timeoutS?: number) => suite.sh(g.name, script, timeoutS);
  /** crictl with room for a loaded TCG guest: a shim (a node program) can take minutes to start there. */
  const crictl = async (g: UpResult, args: string) => (await sh(g, `crictl -t 300s ${args}`, 400)).trim();
  const restoreDirs = async (g: UpResult) => (await sh(g, 'ls /var/lib/ovmigrate/restore 2>/dev/null; true')).split('\n').filter(Boolean);
  const counts = async (g: UpResult, id: string) => (await crictl(g, `exec ${id} cat /count`)).split('\n').map(Number);

  /** pod.json: node network (no CNI here), a pid namespace of the container's own (what the kubelet asks by default). */
  function podJson(name: string): string {
    const file = path.join(share, `${name}-pod.json`);
    fs.writeFileSync(file, JSON.stringify({
      metadata: { name, namespace: 'default', uid: `${name}-uid`, attempt: 0 },
      log_directory: `/run/${name}-logs`,
      linux: { cgroup_parent: `${suite.cgroup}/k8s`, security_context: { namespace_options: { network: 2, pid: 1 } } },
    }));
    return file;
  }

  function ctrJson(name: string, image: string, command?: string[]): string {
    const file = path.join(share, `${name}-ctr.json`);
    fs.writeFileSync(file, JSON.stringify({ metadata: { name: 'counter', attempt: attempt++ }, image: { image }, ...(command ? { command } : {}), log_path: `${name}.log` }));
    return file;
  }

  /** The suite's pod in `g`, started on first use (a failed start is tried again). */
  function runPod(g: UpResult): Promise<{ pod: string; podFile: string }> {
    let p = pods.get(g);
    if (!p) {
      const podFile = podJson(g === a ? 'restore-a' : 'restore-b');
      p = crictl(g, `runp ${podFile}`).then((pod) => ({ pod, podFile }));
      p.catch(() => pods.delete(g));
      pods.set(g, p);
    }
    return p;
  }

  /** The counter running in guest A through ovmigrate-cri. */
  async function startCounter(name: string): Promise<string> {
    const { pod, podFile } = await runPod(a);
    const id = await crictl(a, `create ${pod} ${ctrJson(name, CRI_NODE_IMAGES.busybox, ['sh', '-c', LOOP])} ${podFile}`);
    await crictl(a, `start ${id}`);
    await sh(a, 'sleep 1.5');
    return id;
  }

  /**
   * An archive in containerd 2.x's layout made the way a third party would
   * (in-guest runc and CRIU, not our path): the container paused, dumped
   * with --leave-running, its rw layer tarred (gzip, as containerd writes
   * it), resumed; config.dump, spec.dump and status.dump as containerd
   * writes them.
   */
  async function thirdPartyArchive(id: string, out: string): Promise<number> {
    const counted = await sh(a, `
      set -e
      w=$(mktemp -d /run/ovm-cp.XXXXXX); mkdir $w/checkpoint
      runc --root ${RUNC_ROOT} pause ${id}
      trap 'runc --root ${RUNC_ROOT} resume ${id}' EXIT
      runc --root ${RUNC_ROOT} checkpoint --leave-running --image-path $w/checkpoint --work-path $w/work ${id}
      upper=$(awk -v t="${BUNDLES}/${id}/rootfs" '$2 == t {print $4}' /proc/mounts | tr ',' '\\n' | sed -n 's/^upperdir=//p')
      tar -C "$upper" -czf $w/rootfs-diff.tar .
      wc -l < "$upper/count"
      runc --root ${RUNC_ROOT} resume ${id}; trap - EXIT
      cp ${BUNDLES}/${id}/config.json $w/spec.dump
      crictl inspect -o json ${id} | python3 -c '
import json, sys
s = json.load(sys.stdin)["status"]
json.dump(s, open(sys.argv[1] + "/status.dump", "w"))
json.dump({"id": s["id"], "name": s["metadata"]["name"], "rootfsImage": s["image"]["image"], "rootfsImageRef": s["imageRef"],
           "rootfsImageName": s["image"]["image"], "runtime": "io.containerd.ovmigrate.v1", "checkpointedTime": "2026-12-02T04:00:00Z"},
          open(sys.argv[1] + "/config.dump", "w"))' $w
      tar -C $w -cf ${out} checkpoint config.dump spec.dump status.dump rootfs-diff.tar
      rm -rf $w`, 300);
    return Number(counted.trim());
  }

  /** crictl runp, create (image = the archive) and start in guest B; the restored container's id. */
  async function restoreIn(g: UpResult, name: string, archive: string): Promise<string> {
    const { pod, podFile } = await runPod(g);
    const id = await crictl(g, `create ${pod} ${ctrJson(name, archive)} ${podFile}`);
    await crictl(g, `start ${id}`);
    return id;
  }

  /** The counter in `id` went on from `from` (the value at the checkpoint), with every value once, in order. */
  async function assertContinues(g: UpResult, id: string, from: number): Promise<void> {
    const first = await counts(g, id);
    await sh(g, 'sleep 1.5');
    const seq = await counts(g, id);
    assert.ok(seq.length > first.length, `the counter goes on (${first.length} then ${seq.length} lines)`);
    assert.ok(seq.length > from, `past the checkpointed ${from}`);
    assert.deepEqual(seq, seq.map((_, i) => i + 1), 'every value once, in order: memory and file state both carried over');
  }

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'containerd', 'ctr', 'runc', 'criu', 'python3', 'tar', 'busybox', 'gcc']);
    await components.ready('cri-tools', this);
    share = suite.dir;
    const images = path.join(share, 'images');
    fs.mkdirSync(images);
    [a, b] = await suite.guests();
    await sh(a, `mkdir -p /etc/ovmigrate ${OUT} && echo '${JSON.stringify({ images })}' > /etc/ovmigrate/shim.json`);
    backend = new ServedBackend(a.name, images, suite.hostDir('staging'));
    await backend.start();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const g of [a, b]) {
      if (!g) continue;
      process.stdout.write(`--- ${g.name}: ovmigrate-cri log\n${await sh(g, `tail -30 ${GUEST_CRI_LOG}; tail -30 /run/containerd.log`).catch(String)}\n`);
    }
  });

  after(async () => {
    await backend?.stop();
    if (a) await sh(a, `rm -rf /etc/ovmigrate/shim.json ${OUT}; [ ! -e /run/ovmigrate/relay.pid ] || kill $(cat /run/ovmigrate/relay.pid) 2>/dev/null; true`).catch(() => undefined);
    await Promise.all([...pods].map(async ([g, p]) => {
      const { pod } = await p;
      await sh(g, `crictl -t 300s rmp -f ${pod} >/dev/null 2>&1; true`, 400);
    }).map((p) => p.catch(() => undefined)));
    await suite.leave();
  });

  it('crictl checkpoint through ovmigrate-cri in A, crictl create and start from the archive in B: the counter goes on', async () => {
    const id = await startCounter('ours');
    counter = id;
    const r = await sh(a, `crictl -t 120s checkpoint --export=${OUT}/cp.tar ${id} 2>&1 && cp ${OUT}/cp.tar ${share}/cp.tar`, 300);
    const archive = path.join(share, 'cp.tar');
    assert.ok(fs.existsSync(archive), r);
    // The counter's value in the archive: the lines of /count in its rw layer.
    const n = Number(execFileSync('sh', ['-c', `tar -xOf ${archive} rootfs-diff.tar | tar -xOf - --wildcards '*count' | wc -l`]).toString().trim());
    assert.ok(n > 0, 'the archive holds the counter file');
    const restored = await restoreIn(b, 'ours', archive);
    assert.equal(JSON.parse(await crictl(b, `inspect -o json ${restored}`)).status.state, 'CONTAINER_RUNNING');
    await assertContinues(b, restored, n);
    await crictl(b, `stop ${restored}`);
    await crictl(b, `rm ${restored}`);
  });

  it('an archive in containerd 2.x layout (in-guest runc/CRIU in A) restores in B and the counter goes on', async () => {
    // The first test's counter, dumped again the third party's way (the first checkpoint left it running).
    assert.ok(counter, 'no counter in guest A (the test that starts it failed)');
    const id = counter;
    const archive = path.join(share, 'third.tar');
    const n = await thirdPartyArchive(id, archive);
    assert.ok(n > 0);
    third = { archive, n };
    const restored = await restoreIn(b, 'third', archive);
    assert.equal(JSON.parse(await crictl(b, `inspect -o json ${restored}`)).status.state, 'CONTAINER_RUNNING');
    await assertContinues(b, restored, n);
    // The restore directory goes with the container (others' stay).
    const before = await restoreDirs(b);
    await crictl(b, `stop ${restored}`);
    await crictl(b, `rm ${restored}`);
    const after = await restoreDirs(b);
    assert.equal(after.length, before.length - 1);
    assert.ok(after.every((d) => before.includes(d)));
  });

  it('a local checkpoint image (org.criu.checkpoint.container.name) restores the same way', async function () {
    // Of the runc/CRIU archive: what this tests is the image's way in, not the dump.
    assert.ok(third, 'no runc/CRIU archive to pack as an image (the test that makes it failed)');
    const image = path.join(share, 'checkpoint-image.tar');
    checkpointImage(third.archive, image, 'localhost/ovmigrate/counter-checkpoint:latest');
    await sh(b, `ctr -n k8s.io image import ${image} >/dev/null`, 300);
    const restored = await restoreIn(b, 'image', 'localhost/ovmigrate/counter-checkpoint:latest');
    await assertContinues(b, restored, third.n);
    await crictl(b, `stop ${restored}`);
    await crictl(b, `rm ${restored}`);
    await sh(b, 'ctr -n k8s.io image rm localhost/ovmigrate/counter-checkpoint:latest >/dev/null');
  });

  it('a hostile archive is refused by crictl create with the entry named, and nothing is left', async () => {
    const evil = path.join(share, 'evil.tar');
    await sh(b, `set -e; w=$(mktemp -d /run/ovm-evil.XXXXXX); cd $w; mkdir checkpoint; echo x > checkpoint/inventory.img
      echo '{}' > spec.dump; ln -s /etc/shadow config.dump; tar -cf ${evil} checkpoint spec.dump config.dump; rm -rf $w`);
    const { pod, podFile } = await runPod(b);
    const before = await restoreDirs(b);
    const out = await sh(b, `crictl -t 300s create ${pod} ${ctrJson('evil', evil)} ${podFile} 2>&1; echo "exit $?"`);
    assert.match(out, /InvalidArgument.*checkpoint archive entry \\?"config.dump\\?": symlink \(to \\?"\/etc\/shadow\\?"\)/s);
    assert.match(out, /exit 1/);
    assert.deepEqual(await restoreDirs(b), before, 'nothing left in the restore root');
  });
});
