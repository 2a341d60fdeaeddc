import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { vmDescriptionPath } from '../../introspect/vm/index.js';
import { cli, guestSh, missingComponent, requirePrograms, requireRoot } from '../helpers/cli.js';
import { components } from '../helpers/components.js';
import { UpResult, labUp } from '../helpers/lab-guests.js';
import { BUSYBOX_IMAGE } from '../lab/busybox-image.js';
import { guestPaths } from '../lab/paths.js';
import {
  CNI_BIN_DIR, CNI_BRIDGE, KUBELET_CHECKPOINT_DIR, KUBELET_CONFIG_FILE, NODE_CRI_SOCKET, StaticPod, checkpointUrl, inPodSubnet, nodeDirs, staticPodFile,
  staticPodManifest, staticPodName,
} from '../lab/kubernetes/index.js';

const LABEL = 'kube';

/** A counter that keeps its state in a file and in its shell's memory: what a checkpoint must carry. */
const COUNTER: StaticPod = {
  name: 'counter',
  containers: [{
    name: 'counter',
    image: BUSYBOX_IMAGE,
    command: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /count; sleep 1; done'],
  }],
};

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** CPU seconds (user+system) of the guest's processes whose command line starts with `prefix`, from /proc. */
async function cpuSeconds(guest: string, match: string): Promise<number> {
  const out = await guestSh(guest, `hz=$(getconf CLK_TCK 2>/dev/null || echo 100); for p in /proc/[0-9]*; do
    tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q -- '${match}' || continue; set -- $(sed 's/^.*) //' $p/stat); echo "$(( \${12} + \${13} )) $hz"; done`);
  return out.trim().split('\n').filter(Boolean).reduce((sum, l) => { const [t, hz] = l.split(' ').map(Number); return sum + t / hz; }, 0);
}

/** The pinned Go components the suite runs (built in the background from the start of the run). */
const COMPONENTS = ['kubernetes', 'cri-tools', 'checkpointctl'];
components.declare(COMPONENTS);

describe('lab Kubernetes node (lab up --kubernetes: containerd 1.6, ovmigrate-cri, the kubelet, CNI bridge)', function () {
  let node: UpResult;
  let name: string;
  let bootSeconds = 0;
  const pod = () => staticPodName(COUNTER.name, name);

  before(async function () {
    requireRoot(this);
    requirePrograms(this, ['qemu-system-x86_64', 'containerd', 'ctr', 'runc', 'gcc', 'curl']);
    for (const id of COMPONENTS) await components.ready(id, this);
    if (!fs.existsSync(path.join(CNI_BIN_DIR, 'bridge'))) missingComponent(this, `no CNI plugins in ${CNI_BIN_DIR} (containernetworking-plugins)`);
    const t0 = Date.now();
    node = await labUp(LABEL, ['--kubernetes', '--boot-timeout', '300']);
    bootSeconds = (Date.now() - t0) / 1000;
    name = node.name;
    console.log(`      node ${name} up (boot, containerd, ovmigrate-cri, kubelet healthy) in ${bootSeconds.toFixed(0)} s`);
  });

  after(async () => {
    if (name) {
      await cli(['lab', 'down', name]);
      assert.equal(fs.existsSync(guestPaths(name).dir), false, 'the node\'s directories go with it');
    }
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && name) {
      const r = await cli(['lab', 'exec', name, '--', 'sh', '-c', 'for f in /run/kubelet.log /run/ovmigrate-cri.log /run/containerd.log; do echo "--- $f"; tail -40 $f; done']);
      process.stdout.write(r.stdout.slice(-12000));
    }
  });

  it('runs the kubelet standalone on ovmigrate-cri, containerd 1.6 behind it with our shim the default runtime, and the backend on the host', async () => {
    const configz = JSON.parse(await guestSh(name, 'curl -sk https://127.0.0.1:10250/configz')) as { kubeletconfig: Record<string, unknown> };
    assert.equal(configz.kubeletconfig.containerRuntimeEndpoint, `unix://${NODE_CRI_SOCKET}`);
    assert.equal(configz.kubeletconfig.staticPodPath, '/etc/kubernetes/manifests');
    assert.deepEqual((configz.kubeletconfig.authorization as { mode: string }).mode, 'AlwaysAllow');
    assert.equal(configz.kubeletconfig.cgroupDriver, 'cgroupfs');
    assert.match(await guestSh(name, `kubelet --version; cat ${KUBELET_CONFIG_FILE} >/dev/null`), /^Kubernetes v1\.37\.2$/m);
    const info = JSON.parse(await guestSh(name, 'crictl info')) as { status: { conditions: { type: string; status: boolean }[] }; config: Record<string, any> };
    const conditions = Object.fromEntries(info.status.conditions.map((c) => [c.type, c.status]));
    assert.deepEqual(conditions, { RuntimeReady: true, NetworkReady: true });
    assert.equal(info.config.containerd.defaultRuntimeName, 'ovmigrate');
    assert.equal(info.config.containerd.runtimes.ovmigrate.runtimeType, 'io.containerd.ovmigrate.v1');
    assert.equal(info.config.cni.binDir, CNI_BIN_DIR);
    assert.match(await guestSh(name, 'crictl version'), /RuntimeName:\s+containerd\nRuntimeVersion:\s+1\.6\./);
    // The backend: `ovmigrate serve --vm NAME` on the host, on the VM description the keeper wrote, with the node's image share.
    const description = JSON.parse(fs.readFileSync(vmDescriptionPath(name), 'utf8')) as { shares: string[] };
    assert.ok(description.shares.includes(nodeDirs(name).images));
    const serving = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((p) => {
      try {
        const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return argv.includes('serve') && argv.includes(name) && argv.includes(nodeDirs(name).images);
      } catch {
        return false;
      }
    });
    assert.ok(serving, 'ovmigrate serve runs for the node');
    assert.equal(JSON.parse(await guestSh(name, 'cat /etc/ovmigrate/shim.json')).images, nodeDirs(name).images);
  });

  it('a static pod with a counter comes up Running through the kubelet and ovmigrate-cri, on the CNI bridge, and counts', async () => {
    const manifest = path.join(nodeDirs(name).files, 'counter.json');
    fs.writeFileSync(manifest, staticPodManifest(COUNTER));
    const t0 = Date.now();
    // Renamed into place: the kubelet skips dot files, and would read a half-copied manifest as no pod.
    const file = staticPodFile(COUNTER.name);
    await guestSh(name, `cp ${manifest} ${path.dirname(file)}/.new && mv ${path.dirname(file)}/.new ${file}`);
    const ctr = await until('the counter container Running (crictl through ovmigrate-cri)', async () =>
      (await guestSh(name, 'crictl ps --name counter --state Running -q')).trim() || undefined, 480_000);
    const seconds = (Date.now() - t0) / 1000;
    console.log(`      static pod ${pod()} Running ${seconds.toFixed(0)} s after its manifest`);
    const pods = JSON.parse(await guestSh(name, `crictl pods --name ${pod()} --state Ready -o json`)) as { items: { id: string; metadata: { namespace: string } }[] };
    assert.equal(pods.items.length, 1);
    assert.equal(pods.items[0].metadata.namespace, 'default');
    const sandbox = JSON.parse(await guestSh(name, `crictl inspectp ${pods.items[0].id}`)) as { status: { network: { ip: string } } };
    const ip = sandbox.status.network.ip;
    assert.ok(inPodSubnet(ip), `pod IP ${ip} is on the CNI bridge's subnet`);
    assert.match(await guestSh(name, `ip -4 addr show ${CNI_BRIDGE}`), /inet 10\.88\.0\.1\/16/);
    await guestSh(name, `/run/busybox ping -c 1 -W 5 ${ip} >/dev/null`);
    const first = Number((await guestSh(name, `crictl exec ${ctr} cat /count`)).trim());
    await new Promise((r) => setTimeout(r, 3000));
    const second = Number((await guestSh(name, `crictl exec ${ctr} cat /count`)).trim());
    assert.ok(first >= 1 && second > first, `the counter goes on (${first}, then ${second})`);
  });

  it('the kubelet checkpoint API: the archive under the kubelet\'s checkpoints directory, written by ovmigrate-cri out of the VM; the counter goes on', async () => {
    const ctr = (await guestSh(name, 'crictl ps --name counter --state Running -q')).trim();
    const t0 = Date.now();
    const out = await guestSh(name, `curl -sk -X POST -w '\\n%{http_code}' ${checkpointUrl(COUNTER, name, 'counter')}`, 600);
    const seconds = (Date.now() - t0) / 1000;
    const [body, code] = [out.slice(0, out.lastIndexOf('\n')), out.slice(out.lastIndexOf('\n') + 1).trim()];
    assert.equal(code, '200', body);
    const items = (JSON.parse(body) as { items: string[] }).items;
    assert.equal(items.length, 1);
    const archive = items[0];
    // <root-dir>/checkpoints/checkpoint-<pod>_<namespace>-<container>-<RFC 3339>.tar (reference/cri-kubernetes.md §4).
    assert.ok(archive.startsWith(`${KUBELET_CHECKPOINT_DIR}/checkpoint-${pod()}_default-counter-`) && archive.endsWith('.tar'), archive);
    console.log(`      kubelet checkpoint API answered in ${seconds.toFixed(1)} s: ${archive}`);
    assert.equal((await guestSh(name, `stat -c %a '${archive}'`)).trim(), '600');
    assert.deepEqual((await guestSh(name, `ls -A ${KUBELET_CHECKPOINT_DIR}`)).split('\n').filter(Boolean), [path.basename(archive)], 'nothing else left there');
    const show = await guestSh(name, `checkpointctl show '${archive}'`);
    assert.match(show, /counter/);
    assert.match(show, new RegExp(BUSYBOX_IMAGE.replace(/[.]/g, '\\.')));
    const entries = (await guestSh(name, `tar -tf '${archive}'`)).split('\n');
    for (const e of ['config.dump', 'spec.dump', 'status.dump', 'rootfs-diff.tar']) assert.ok(entries.includes(e), `${e} in the archive`);
    assert.ok(entries.some((e) => /^checkpoint\/pages-\d+\.img$/.test(e)), 'CRIU page images in checkpoint/');
    // The checkpoint was the host's: the backend's log has the dump, the guest ran no criu.
    assert.match(fs.readFileSync(nodeDirs(name).backendLog, 'utf8'), new RegExp(`checkpoint ${ctr}`));
    const first = Number((await guestSh(name, `crictl exec ${ctr} cat /count`)).trim());
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(Number((await guestSh(name, `crictl exec ${ctr} cat /count`)).trim()) > first, 'the counter goes on after the checkpoint');
  });

  it('the node\'s cost: memory in use, and the CPU the kubelet and ovmigrate-cri take (printed)', async () => {
    const [mem] = (await guestSh(name, "free -m | awk '/^Mem:/ {print $3, $2}'")).trim().split(' ').map(Number);
    const kubelet = await cpuSeconds(name, 'kubelet --config');
    const cri = await cpuSeconds(name, 'ovmigrate-cri\\|dist/shim/cri/main.js');
    const uptime = Number((await guestSh(name, 'cut -d" " -f1 /proc/uptime')).trim());
    console.log(`      node memory in use ${mem} MiB; CPU since boot (${uptime.toFixed(0)} s): kubelet ${kubelet.toFixed(0)} s, ovmigrate-cri ${cri.toFixed(0)} s`);
    assert.ok(mem < 1536 * 0.75, `the node's ${mem} MiB in use leave room in its 1536 MiB`);
  });
});
