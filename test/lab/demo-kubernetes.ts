import fs from 'node:fs';
import path from 'node:path';
import { log } from '../../common/log.js';
import { guestScript } from './containerd.js';
import { GUEST_CRI_LOG } from './cri-node.js';
import {
  COUNTER, COUNTER_NAME, KUBELET_CHECKPOINT_DIR, NodeContainerd, archivedCount, carryArchive, checkpointUrl, counterValues, countsInOrder, nodeDirs,
  nodeLogs, restoreWithCrictl, staticPodFile, staticPodManifest, staticPodName, stopKubelet,
} from './kubernetes/index.js';
import { down, up } from './lab.js';

function say(line: string): void {
  process.stdout.write(`\n== ${line}\n`);
}

/** A command in a node, shown as typed there, its output after it. */
async function inNode(node: string, script: string, timeoutMs = 600_000): Promise<string> {
  process.stdout.write(`[${node}]$ ${script.trim().split('\n').map((l) => l.trim()).join('; ')}\n`);
  const out = await guestScript(node, script, timeoutMs);
  process.stdout.write(out.endsWith('\n') || !out ? out : `${out}\n`);
  return out;
}

/**
 * Waits for a long step (minutes under TCG on a loaded host), showing the
 * seconds gone on a terminal (one line rewritten), a line a minute otherwise.
 */
async function waiting<T>(what: string, step: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const tty = process.stdout.isTTY;
  const tick = setInterval(() => {
    const s = Math.round((Date.now() - t0) / 1000);
    if (tty) process.stdout.write(`\r   ${what}: ${s} s`);
    else if (s % 60 < 5) process.stdout.write(`   ${what}: ${s} s\n`);
  }, 5000);
  try {
    return await step();
  } finally {
    clearInterval(tick);
    if (tty) process.stdout.write('\n');
    log.info(`demo: ${what} took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
}

/**
 * The Kubernetes half of `make demo`: two lab nodes (the kubelet on
 * ovmigrate-cri over containerd with our shim, `ovmigrate serve` for each on
 * the host). In node A a static pod's counter is checkpointed through the
 * kubelet API with curl: the host reads the container from A's RAM and the
 * archive lands where the kubelet says. The archive goes to node B, where
 * crictl runp/create/start restore it through ovmigrate-cri, and the counter
 * goes on from where it was.
 */
export async function kubernetesDemo(containerd: NodeContainerd = '1.6'): Promise<void> {
  const [a, b] = ['demo-node-a', 'demo-node-b'];
  try {
    say(`booting ${a} and ${b} as Kubernetes nodes: containerd ${containerd === '2' ? '2.4' : '1.6'} with containerd-shim-ovmigrate-v1 as default runtime, ` +
      'ovmigrate-cri in front, the kubelet (standalone, static pods), CNI bridge; ovmigrate serve for each on the host');
    await waiting('both nodes up', () => Promise.all([a, b].map((n) => up(n, { kubernetes: containerd }))));
    await inNode(a, 'kubelet --version; crictl version | grep -i runtime');

    say(`a static pod in ${a}: a counter in busybox, appending 1, 2, 3, ... to /count each second`);
    const manifest = path.join(nodeDirs(a).files, 'counter.json');
    fs.writeFileSync(manifest, staticPodManifest(COUNTER));
    const file = staticPodFile(COUNTER.name);
    await inNode(a, `cp ${manifest} ${path.dirname(file)}/.new && mv ${path.dirname(file)}/.new ${file}`);
    await waiting('the kubelet starting the pod', () => guestScript(a, 'until [ -n "$(crictl ps --name counter --state Running -q)" ]; do sleep 2; done', 1_800_000));
    await inNode(a, 'crictl pods; crictl ps; sleep 3; crictl exec $(crictl ps --name counter -q) tail -n 1 /count');

    say(`checkpoint through the kubelet API in ${a}: the kubelet asks ovmigrate-cri, the host dumps the container from ${a}'s RAM`);
    const answer = await waiting('the checkpoint', () => inNode(a, `curl -sk -X POST ${checkpointUrl(COUNTER, a, COUNTER_NAME)}`));
    const archive = (JSON.parse(answer) as { items: string[] }).items[0];
    await inNode(a, `ls -l ${KUBELET_CHECKPOINT_DIR}; checkpointctl show '${archive}'`);
    await inNode(a, `crictl exec $(crictl ps --name counter -q) tail -n 1 /count`);
    say(`the counter in ${a} went on after the checkpoint; the archive of ${staticPodName(COUNTER.name, a)}/${COUNTER_NAME} goes to ${b}`);

    const carried = await carryArchive(a, archive, b, 'counter-checkpoint.tar');
    const n = archivedCount(carried);
    process.stdout.write(`${carried}: the counter was at ${n} in it\n`);

    say(`restore in ${b} with crictl runp, create (the archive as image) and start: ovmigrate-cri unpacks it, our shim restores the container`);
    // A standalone kubelet ends pods it did not make (restore-pod.ts): B's steps aside for the crictl restore.
    await stopKubelet(b);
    const restored = await waiting('the restore', () => restoreWithCrictl(b, carried, 'restored'));
    await inNode(b, `crictl ps; grep 'CreateContainer restores' ${GUEST_CRI_LOG}`);
    await inNode(b, `sleep 3; crictl exec ${restored.container} tail -n 3 /count`);
    const values = await counterValues(b, restored.container);
    const last = values[values.length - 1];
    if (!countsInOrder(values) || last <= n) throw new Error(`the restored counter did not go on from ${n}: ${values.join(' ')}`);
    say(`the counter goes on in ${b} from ${n} (now ${last}, every value once, in order): its memory and its file came over`);
  } catch (err) {
    for (const n of [a, b]) process.stdout.write(`--- ${n}\n${await nodeLogs(n, 20).catch(() => '(no logs)')}\n`);
    throw err;
  } finally {
    await Promise.all([a, b].map((n) => down(n).catch(() => undefined)));
  }
}
