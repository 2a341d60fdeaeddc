import fs from 'node:fs';
import path from 'node:path';
import { log } from '../../common/log.js';
import { guestScript } from './containerd.js';
import { DemoStory } from './demo-story.js';
import { GUEST_CRI_LOG } from './cri-node.js';
import {
  COUNTER, COUNTER_NAME, KUBELET_CHECKPOINT_DIR, NodeContainerd, archivedCount, carryArchive, checkpointUrl, counterValues, countsInOrder, nodeDirs,
  nodeLogs, restoreWithCrictl, staticPodFile, staticPodManifest, staticPodName, stopKubelet,
} from './kubernetes/index.js';
import { down, up } from './lab.js';

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
  const story = new DemoStory();
  const say = (line: string) => story.step(line);
  const inNode = (node: string, script: string, timeoutMs?: number) => story.inGuest(node, script, timeoutMs);
  // Interrupted (Ctrl-C, a CI job's kill): the nodes go down before the process does.
  const downBoth = () => Promise.all([a, b].map((n) => down(n).catch(() => undefined)));
  const onSignal = (signal: NodeJS.Signals) => {
    log.warn(`demo: ${signal}: stopping ${a} and ${b}`);
    void downBoth().finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = Date.now();
  try {
    say(`booting ${a} and ${b} as Kubernetes nodes: containerd ${containerd === '2' ? '2.4' : '1.6'} with containerd-shim-ovmigrate-v1 as default runtime, ` +
      'ovmigrate-cri in front, the kubelet (standalone, static pods), CNI bridge; ovmigrate serve for each on the host');
    // Both boots end before anything fails: a node still booting when the other failed would outlive the demo's down.
    await story.waiting('both nodes up', async () => {
      const booted = await Promise.allSettled([a, b].map((n) => up(n, { kubernetes: containerd })));
      const failed = booted.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    await inNode(a, 'kubelet --version; crictl version | grep -i runtime');

    say(`a static pod in ${a}: a counter in busybox, appending 1, 2, 3, ... to /count each second`);
    const manifest = path.join(nodeDirs(a).files, 'counter.json');
    fs.writeFileSync(manifest, staticPodManifest(COUNTER));
    const file = staticPodFile(COUNTER.name);
    await inNode(a, `cp ${manifest} ${path.dirname(file)}/.new && mv ${path.dirname(file)}/.new ${file}`);
    await story.waiting('the kubelet starting the pod', () => guestScript(a, 'until [ -n "$(crictl ps --name counter --state Running -q)" ]; do sleep 2; done', 1_800_000));
    await inNode(a, 'crictl pods; crictl ps; sleep 3; crictl exec $(crictl ps --name counter -q) tail -n 1 /count');

    say(`checkpoint through the kubelet API in ${a}: the kubelet asks ovmigrate-cri, the host dumps the container from ${a}'s RAM (CRIU does not run in ${a})`);
    const answer = await story.waiting('the checkpoint', () => inNode(a, `curl -sk -X POST ${checkpointUrl(COUNTER, a, COUNTER_NAME)}`));
    const archive = (JSON.parse(answer) as { items: string[] }).items[0];
    await inNode(a, `grep 'checkpointed container' ${GUEST_CRI_LOG} | tail -1`);
    await inNode(a, `ls -l ${KUBELET_CHECKPOINT_DIR}; checkpointctl show '${archive}'`);
    await inNode(a, `crictl exec $(crictl ps --name counter -q) tail -n 1 /count`);
    say(`the counter in ${a} went on after the checkpoint; the archive of ${staticPodName(COUNTER.name, a)}/${COUNTER_NAME} goes to ${b}`);

    const carried = await carryArchive(a, archive, b, 'counter-checkpoint.tar');
    const n = archivedCount(carried);
    log.info(`${carried}: the counter was at ${n} in it`);

    say(`restore in ${b} with crictl runp, create (the archive as image) and start: ovmigrate-cri unpacks it, our shim restores the container`);
    // A standalone kubelet ends pods it did not make (restore-pod.ts): B's steps aside for the crictl restore.
    await stopKubelet(b);
    const restored = await story.waiting('the restore', () => restoreWithCrictl(b, carried, 'restored'));
    await inNode(b, `crictl ps; grep 'CreateContainer restores' ${GUEST_CRI_LOG}`);
    await inNode(b, `sleep 3; crictl exec ${restored.container} tail -n 3 /count`);
    const values = await counterValues(b, restored.container);
    const last = values[values.length - 1];
    if (!countsInOrder(values) || last <= n) throw new Error(`the restored counter did not go on from ${n}: ${values.join(' ')}`);
    say(`the counter goes on in ${b} from ${n} (now ${last}, every value once, in order): its memory and its file came over ` +
      `(${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
  } catch (err) {
    for (const n of [a, b]) story.show(`[${n} log]`, await nodeLogs(n, 20).catch(() => '(no logs)'));
    throw err;
  } finally {
    say(`stopping ${a} and ${b}`);
    await downBoth();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
