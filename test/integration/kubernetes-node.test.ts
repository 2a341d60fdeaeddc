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
  CNI_BIN_DIR, CNI_BRIDGE, COUNTER, KUBELET_CHECKPOINT_DIR, KUBELET_CONFIG_FILE, NODE_CRI_SOCKET, NodeContainerd, archivedCount, carryArchive, checkpointUrl,
  counterValues, countsInOrder, inPodSubnet, nodeDirs, restoreWithCrictl, staticPodFile, staticPodManifest, staticPodName, stopKubelet,
} from '../lab/kubernetes/index.js';

import { GUEST_CRI_LOG } from '../lab/cri-node.js';

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * CPU seconds (user+system) of the guest's processes whose command line matches `match` (an extended regex), from
 * /proc. One pgrep looks at every process: a tr and a grep per process were 300 program starts, 15 s of TCG.
 */
async function cpuSeconds(guest: string, match: string): Promise<number> {
  const out = await guestSh(guest, `hz=$(getconf CLK_TCK 2>/dev/null || echo 100); for p in $(pgrep -f -- '${match}'); do
    [ "$p" = "$$" ] && continue; set -- $(sed 's/^.*) //' /proc/$p/stat 2>/dev/null); [ $# -gt 13 ] && echo "$(( \${12} + \${13} )) $hz"; done; true`);
  return out.trim().split('\n').filter(Boolean).reduce((sum, l) => { const [t, hz] = l.split(' ').map(Number); return sum + t / hz; }, 0);
}

/** The pinned Go components the suite runs (built in the background from the start of the run). */
const COMPONENTS = ['kubernetes', 'cri-tools', 'checkpointctl', 'containerd-2.4'];
components.declare(COMPONENTS);

/**
 * One node per containerd a node can run. Each runs the counter and is
 * checkpointed (kubelet API, crictl); then each restores the other's archive
 * (a second node, as a migration needs, and across containerd versions). 1.6
 * has no CRI restore, 2.4 removed containerd's: in both only ovmigrate-cri
 * restores. Two nodes instead of a pair per version: each boot is minutes of TCG.
 */
interface Pair {
  containerd: NodeContainerd;
  label: string;
  runtime: RegExp;
  /** The node that runs and checkpoints the counter. */
  a?: string;
  /** The node that restores its archive: the other version's node. */
  b?: string;
  /** The kubelet API's archive, carried to B's files share, and the counter's value in it. */
  carried?: { archive: string; n: number };
}

const PAIRS: Pair[] = [
  { containerd: '1.6', label: 'kube16', runtime: /RuntimeName:\s+containerd\nRuntimeVersion:\s+1\.6\./ },
  { containerd: '2', label: 'kube2', runtime: /RuntimeName:\s+containerd\nRuntimeVersion:\s+v2\.4\.2/ },
];

describe('lab Kubernetes nodes (lab up --kubernetes on containerd 1.6 and 2.4: ovmigrate-cri, the kubelet, CNI bridge; checkpoint in A, restore in B)', function () {
  let bootSeconds = 0;
  const nodes = () => PAIRS.map((p) => p.a).filter((n): n is string => !!n);

  before(async function () {
    this.timeout(1_800_000);
    requireRoot(this);
    requirePrograms(this, ['qemu-system-x86_64', 'containerd', 'ctr', 'runc', 'gcc', 'curl', 'tar']);
    for (const id of COMPONENTS) await components.ready(id, this);
    if (!fs.existsSync(path.join(CNI_BIN_DIR, 'bridge'))) missingComponent(this, `no CNI plugins in ${CNI_BIN_DIR} (containernetworking-plugins)`);
    const t0 = Date.now();
    // Both nodes at once: the bring-ups overlap (each is mostly TCG waiting on one node program).
    const ups = await Promise.allSettled(PAIRS.map(async (p) => {
      const up: UpResult = await labUp(p.label, ['--kubernetes', '--containerd', p.containerd, '--boot-timeout', '300']);
      p.a = up.name;
    }));
    const failed = ups.find((u): u is PromiseRejectedResult => u.status === 'rejected');
    if (failed) throw failed.reason;
    PAIRS.forEach((p, i) => (p.b = PAIRS[(i + 1) % PAIRS.length].a));
    bootSeconds = (Date.now() - t0) / 1000;
    console.log(`      ${PAIRS.length} nodes up (boot, containerd, ovmigrate-cri, kubelet healthy) in ${bootSeconds.toFixed(0)} s`);
    // The counters start in both A nodes at once; each pair's tests wait for their own.
    await Promise.all(PAIRS.map(async (p) => {
      const manifest = path.join(nodeDirs(p.a!).files, 'counter.json');
      fs.writeFileSync(manifest, staticPodManifest(COUNTER));
      // Renamed into place: the kubelet skips dot files, and would read a half-copied manifest as no pod.
      const file = staticPodFile(COUNTER.name);
      await guestSh(p.a!, `cp ${manifest} ${path.dirname(file)}/.new && mv ${path.dirname(file)}/.new ${file}`);
    }));
  });

  after(async function () {
    this.timeout(300_000);
    const names = nodes();
    await Promise.all(names.map((n) => cli(['lab', 'down', n])));
    for (const n of names) assert.equal(fs.existsSync(guestPaths(n).dir), false, `node ${n}'s directories go with it`);
  });

  for (const pair of PAIRS) {
    describe(`containerd ${pair.containerd}`, function () {
      const name = () => pair.a!;
      const pod = () => staticPodName(COUNTER.name, name());
      const running = async () => (await guestSh(name(), 'crictl ps --name counter --state Running -q')).trim();

      afterEach(async function () {
        if (this.currentTest?.state !== 'failed') return;
        for (const n of [pair.a, pair.b]) {
          if (!n) continue;
          const r = await cli(['lab', 'exec', n, '--', 'sh', '-c', 'for f in /run/kubelet.log /run/ovmigrate-cri.log /run/containerd.log; do echo "--- $f"; tail -40 $f; done']);
          process.stdout.write(`--- node ${n}\n${r.stdout.slice(-12000)}`);
        }
      });

      it('runs the kubelet standalone on ovmigrate-cri, containerd behind it with our shim the default runtime, and the backend on the host', async () => {
        const configz = JSON.parse(await guestSh(name(), 'curl -sk https://127.0.0.1:10250/configz')) as { kubeletconfig: Record<string, unknown> };
        assert.equal(configz.kubeletconfig.containerRuntimeEndpoint, `unix://${NODE_CRI_SOCKET}`);
        assert.equal(configz.kubeletconfig.staticPodPath, '/etc/kubernetes/manifests');
        assert.deepEqual((configz.kubeletconfig.authorization as { mode: string }).mode, 'AlwaysAllow');
        assert.equal(configz.kubeletconfig.cgroupDriver, 'cgroupfs');
        assert.match(await guestSh(name(), `kubelet --version; cat ${KUBELET_CONFIG_FILE} >/dev/null`), /^Kubernetes v1\.37\.2$/m);
        const info = JSON.parse(await guestSh(name(), 'crictl info')) as { status: { conditions: { type: string; status: boolean }[] }; config: Record<string, any> };
        const conditions = Object.fromEntries(info.status.conditions.map((c) => [c.type, c.status]));
        // 2.x adds a condition of its own: no deprecated setting in use (the config is 2.4's own version 4).
        assert.deepEqual(conditions, { RuntimeReady: true, NetworkReady: true, ...(pair.containerd === '2' ? { ContainerdHasNoDeprecationWarnings: true } : {}) });
        assert.equal(info.config.containerd.defaultRuntimeName, 'ovmigrate');
        assert.equal(info.config.containerd.runtimes.ovmigrate.runtimeType, 'io.containerd.ovmigrate.v1');
        // 1.6 has one CNI binDir, 2.x a list (bin_dirs).
        assert.ok([info.config.cni.binDir, ...(info.config.cni.binDirs ?? [])].includes(CNI_BIN_DIR), JSON.stringify(info.config.cni));
        assert.match(await guestSh(name(), 'crictl version'), pair.runtime);
        // The backend: `ovmigrate serve --vm NAME` on the host, on the VM description the keeper wrote, with the node's image share.
        const description = JSON.parse(fs.readFileSync(vmDescriptionPath(name()), 'utf8')) as { shares: string[] };
        assert.ok(description.shares.includes(nodeDirs(name()).images));
        const serving = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((p) => {
          try {
            const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
            return argv.includes('serve') && argv.includes(name()) && argv.includes(nodeDirs(name()).images);
          } catch {
            return false;
          }
        });
        assert.ok(serving, 'ovmigrate serve runs for the node');
        assert.equal(JSON.parse(await guestSh(name(), 'cat /etc/ovmigrate/shim.json')).images, nodeDirs(name()).images);
      });

      it('a static pod with a counter comes up Running through the kubelet and ovmigrate-cri, on the CNI bridge, and counts', async function () {
        this.timeout(1_200_000);
        const t0 = Date.now();
        // A crictl that times out while the node's shims start (minutes under TCG on a loaded host) is asked again.
        const ctr = await until('the counter container Running (crictl through ovmigrate-cri)', async () => (await running().catch(() => '')) || undefined, 1_080_000);
        console.log(`      static pod ${pod()} Running ${((Date.now() - t0) / 1000).toFixed(0)} s after this test began`);
        const pods = JSON.parse(await guestSh(name(), `crictl pods --name ${pod()} --state Ready -o json`)) as { items: { id: string; metadata: { namespace: string } }[] };
        assert.equal(pods.items.length, 1);
        assert.equal(pods.items[0].metadata.namespace, 'default');
        const sandbox = JSON.parse(await guestSh(name(), `crictl inspectp ${pods.items[0].id}`)) as { status: { network: { ip: string } } };
        const ip = sandbox.status.network.ip;
        assert.ok(inPodSubnet(ip), `pod IP ${ip} is on the CNI bridge's subnet`);
        assert.match(await guestSh(name(), `ip -4 addr show ${CNI_BRIDGE}`), /inet 10\.88\.0\.1\/16/);
        await guestSh(name(), `/run/busybox ping -c 1 -W 5 ${ip} >/dev/null`);
        const first = (await counterValues(name(), ctr)).length;
        await new Promise((r) => setTimeout(r, 3000));
        const second = (await counterValues(name(), ctr)).length;
        assert.ok(first >= 1 && second > first, `the counter goes on (${first}, then ${second})`);
      });

      it('the kubelet checkpoint API: the archive under the kubelet\'s checkpoints directory, written by ovmigrate-cri out of the VM; the counter goes on', async function () {
        this.timeout(900_000);
        const ctr = await running();
        assert.ok(ctr, 'the counter runs (the test before)');
        const t0 = Date.now();
        const out = await guestSh(name(), `curl -sk -X POST -w '\\n%{http_code}' ${checkpointUrl(COUNTER, name(), 'counter')}`, 800);
        const seconds = (Date.now() - t0) / 1000;
        const [body, code] = [out.slice(0, out.lastIndexOf('\n')), out.slice(out.lastIndexOf('\n') + 1).trim()];
        assert.equal(code, '200', body);
        const items = (JSON.parse(body) as { items: string[] }).items;
        assert.equal(items.length, 1);
        const archive = items[0];
        // <root-dir>/checkpoints/checkpoint-<pod>_<namespace>-<container>-<RFC 3339>.tar (reference/cri-kubernetes.md §4).
        assert.ok(archive.startsWith(`${KUBELET_CHECKPOINT_DIR}/checkpoint-${pod()}_default-counter-`) && archive.endsWith('.tar'), archive);
        console.log(`      kubelet checkpoint API answered in ${seconds.toFixed(1)} s: ${archive}`);
        assert.equal((await guestSh(name(), `stat -c %a '${archive}'`)).trim(), '600');
        assert.deepEqual((await guestSh(name(), `ls -A ${KUBELET_CHECKPOINT_DIR}`)).split('\n').filter(Boolean), [path.basename(archive)], 'nothing else left there');
        const show = await guestSh(name(), `checkpointctl show '${archive}'`);
        assert.match(show, /counter/);
        assert.match(show, new RegExp(BUSYBOX_IMAGE.replace(/[.]/g, '\\.')));
        const entries = (await guestSh(name(), `tar -tf '${archive}'`)).split('\n');
        for (const e of ['config.dump', 'spec.dump', 'status.dump', 'rootfs-diff.tar']) assert.ok(entries.includes(e), `${e} in the archive`);
        assert.ok(entries.some((e) => /^checkpoint\/pages-\d+\.img$/.test(e)), 'CRIU page images in checkpoint/');
        // The checkpoint was the host's: the backend's log has the dump, the guest ran no criu.
        assert.match(fs.readFileSync(nodeDirs(name()).backendLog, 'utf8'), new RegExp(`checkpoint ${ctr}`));
        const first = (await counterValues(name(), ctr)).length;
        await new Promise((r) => setTimeout(r, 3000));
        assert.ok((await counterValues(name(), ctr)).length > first, 'the counter goes on after the checkpoint');
        // For the restore in B.
        // Named by its node: each node both sends an archive and receives the other's through the same files share.
        const carried = await carryArchive(name(), archive, pair.b!, `kubelet-checkpoint-${pair.label}.tar`);
        pair.carried = { archive: carried, n: archivedCount(carried) };
        assert.ok(pair.carried.n > 0, 'the archive holds the counter file');
      });

      it('crictl checkpoint --export through ovmigrate-cri: a 0600 archive checkpointctl reads (container, image, engine); the counter goes on', async function () {
        this.timeout(600_000);
        const ctr = await running();
        assert.ok(ctr, 'the counter runs (the tests before)');
        const out = '/run/crictl-checkpoint.tar';
        // The issue's `-t 60s` holds on an idle host; a node under TCG on a loaded shared one took 124 s (load 17).
        await guestSh(name(), `crictl -t 300s checkpoint --export=${out} ${ctr}`, 400);
        assert.equal((await guestSh(name(), `stat -c %a ${out}`)).trim(), '600');
        const inspect = await guestSh(name(), `checkpointctl inspect ${out}`);
        assert.match(inspect, /counter/);
        assert.match(inspect, new RegExp(BUSYBOX_IMAGE.replace(/[.]/g, '\\.')));
        assert.match(inspect, /containerd/i, 'the engine');
        const entries = (await guestSh(name(), `tar -tf ${out}`)).split('\n');
        assert.ok(entries.some((e) => /^checkpoint\/pages-\d+\.img$/.test(e)), 'CRIU page images in checkpoint/');
        const log = fs.readFileSync(nodeDirs(name()).backendLog, 'utf8');
        assert.equal(log.match(new RegExp(`checkpoint ${ctr}`, 'g'))?.length, 2, 'the second checkpoint of the counter is the host\'s too');
        const first = (await counterValues(name(), ctr)).length;
        await new Promise((r) => setTimeout(r, 3000));
        assert.ok((await counterValues(name(), ctr)).length > first, 'the counter goes on after the checkpoint');
      });

      it('the node\'s cost: memory in use, and the CPU the kubelet and ovmigrate-cri take (printed)', async () => {
        const [mem] = (await guestSh(name(), "free -m | awk '/^Mem:/ {print $3, $2}'")).trim().split(' ').map(Number);
        const kubelet = await cpuSeconds(name(), 'kubelet --config');
        const cri = await cpuSeconds(name(), 'ovmigrate-cri|dist/shim/cri/main.js');
        const uptime = Number((await guestSh(name(), 'cut -d" " -f1 /proc/uptime')).trim());
        console.log(`      node memory in use ${mem} MiB; CPU since boot (${uptime.toFixed(0)} s): kubelet ${kubelet.toFixed(0)} s, ovmigrate-cri ${cri.toFixed(0)} s`);
        assert.ok(mem < 1536 * 0.75, `the node's ${mem} MiB in use leave room in its 1536 MiB`);
      });
    });
  }

  for (const pair of PAIRS) {
    describe(`the archive of the containerd ${pair.containerd} node, in the other node`, function () {
      it(`in the containerd ${pair.containerd === '2' ? '1.6' : '2.4'} node, crictl runp/create/start with the kubelet's archive as image restores the counter through ovmigrate-cri: it goes on from its checkpointed value`, async function () {
        this.timeout(1_800_000);
        assert.ok(pair.carried, 'the kubelet API test carried its archive to B');
        const b = pair.b!;
        // A standalone kubelet ends pods it did not make: B's stops, its own checkpoints are done.
        await stopKubelet(b);
        const t0 = Date.now();
        const { container } = await restoreWithCrictl(b, pair.carried.archive, 'restored');
        console.log(`      restored in ${b} in ${((Date.now() - t0) / 1000).toFixed(0)} s (runp, create, start); the archive's counter was at ${pair.carried.n}`);
        assert.equal(JSON.parse(await guestSh(b, `crictl -t 300s inspect -o json ${container}`, 400)).status.state, 'CONTAINER_RUNNING');
        // The name is the checkpointed container's CRI name (counter_<pod>_<namespace>_<uid>_<attempt>).
        assert.match(await guestSh(b, `cat ${GUEST_CRI_LOG}`), new RegExp(`CreateContainer restores counter_counter-\\S+ from \\S+kubelet-checkpoint-${pair.label}\\.tar`));
        const first = await counterValues(b, container);
        await new Promise((r) => setTimeout(r, 3000));
        const seq = await counterValues(b, container);
        assert.ok(seq.length > first.length, `the restored counter goes on (${first.length} then ${seq.length} values)`);
        assert.ok(seq.length > pair.carried.n, `past the checkpointed ${pair.carried.n}`);
        assert.ok(countsInOrder(seq), `every value once, in order (memory and file both carried over): ${seq.join(' ')}`);
      });
    });
  }
});
