import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_IMAGE } from './busybox-image.js';
import { guestScript } from './containerd.js';
import { KUBELET_CHECKPOINT_DIR, StaticPod, checkpointUrl, nodeDirs, staticPodFile, staticPodManifest, staticPodName } from './kubernetes/index.js';
import { down, up } from './lab.js';

function say(line: string): void {
  process.stdout.write(`\n== ${line}\n`);
}

async function inNode(node: string, script: string, timeoutMs = 600_000): Promise<string> {
  process.stdout.write(`[${node}]$ ${script.trim().split('\n').join('; ')}\n`);
  return guestScript(node, script, timeoutMs);
}

const COUNTER: StaticPod = {
  name: 'counter',
  containers: [{ name: 'counter', image: BUSYBOX_IMAGE, command: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /count; sleep 1; done'] }],
};

/**
 * The Kubernetes half of `make demo` (its first part): node A is a lab guest
 * running the kubelet on ovmigrate-cri over containerd 1.6 with our shim; a
 * static pod's container is checkpointed through the kubelet API with curl,
 * the pages read from A's RAM by `ovmigrate serve` on the host, and the
 * archive lands where the kubelet says. (Restore in node B with crictl
 * comes with the CRI restore.)
 */
export async function kubernetesDemo(): Promise<void> {
  const a = 'demo-node-a';
  try {
    say(`booting ${a} as a Kubernetes node: containerd 1.6 with containerd-shim-ovmigrate-v1 as default runtime, ovmigrate-cri in front, the kubelet (standalone, static pods), CNI bridge; ovmigrate serve for it on the host`);
    await up(a, { kubernetes: '1.6' });
    process.stdout.write(await inNode(a, 'kubelet --version; crictl version | grep -i runtime'));
    say(`a static pod in ${a}: a counter in busybox`);
    const manifest = path.join(nodeDirs(a).files, 'counter.json');
    fs.writeFileSync(manifest, staticPodManifest(COUNTER));
    const file = staticPodFile(COUNTER.name);
    await inNode(a, `cp ${manifest} ${path.dirname(file)}/.new && mv ${path.dirname(file)}/.new ${file}`);
    const t0 = Date.now();
    // Minutes under TCG on a loaded host: each node shim starts as a node program.
    await inNode(a, 'until [ -n "$(crictl ps --name counter --state Running -q)" ]; do sleep 2; done', 1_800_000);
    process.stdout.write(`(Running ${((Date.now() - t0) / 1000).toFixed(0)} s after the manifest)\n`);
    process.stdout.write(await inNode(a, `crictl pods; crictl ps; sleep 3; crictl exec $(crictl ps --name counter -q) cat /count`));
    say(`checkpoint through the kubelet API in ${a}: the kubelet asks ovmigrate-cri, the host dumps the container from ${a}'s RAM`);
    const t1 = Date.now();
    const answer = await inNode(a, `curl -sk -X POST ${checkpointUrl(COUNTER, a, 'counter')}`);
    process.stdout.write(`${answer}\n(${((Date.now() - t1) / 1000).toFixed(1)} s)\n`);
    const archive = (JSON.parse(answer) as { items: string[] }).items[0];
    process.stdout.write(await inNode(a, `ls -l ${KUBELET_CHECKPOINT_DIR}; checkpointctl show '${archive}'`));
    process.stdout.write(await inNode(a, `crictl exec $(crictl ps --name counter -q) cat /count`));
    say(`the counter in ${a} went on after the checkpoint; the archive of ${staticPodName(COUNTER.name, a)}/counter is in ${KUBELET_CHECKPOINT_DIR}`);
  } finally {
    await down(a).catch(() => undefined);
  }
}
