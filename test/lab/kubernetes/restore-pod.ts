import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_IMAGE } from '../busybox-image.js';
import { guestScript } from '../containerd.js';
import { KUBELET_LOG } from './kubelet-config.js';
import { nodeDirs } from './node.js';
import { StaticPod } from './static-pod.js';

/**
 * Moving a checkpointed container from one lab node to another: the
 * counter both the node suite and the demo run, the archive's way from node
 * A to node B (through the host: each node's files share), and the restore
 * in B with crictl runp/create/start through ovmigrate-cri.
 */

/** The name of the counter's static pod and of its container. */
export const COUNTER_NAME = 'counter';

/**
 * A counter that appends each value to /count: the file comes over in the
 * archive's rootfs diff, the shell's `i` in its memory (CRIU images), so
 * only a restore that carries both goes on with every value once, in order.
 */
export const COUNTER: StaticPod = {
  name: COUNTER_NAME,
  containers: [{ name: COUNTER_NAME, image: BUSYBOX_IMAGE, command: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i >> /count; sleep 1; done'] }],
};

/** crictl's deadline in a node: a node shim under TCG on a loaded host can take minutes to start. */
const CRICTL = 'crictl -t 600s';

/** The counter's values in container `id` of `node` (the lines of its /count). */
export async function counterValues(node: string, id: string): Promise<number[]> {
  return (await guestScript(node, `${CRICTL} exec ${id} cat /count`, 700_000)).split('\n').filter(Boolean).map(Number);
}

/** Whether `values` are 1, 2, ... n: every value once, in order. */
export function countsInOrder(values: number[]): boolean {
  return values.every((v, i) => v === i + 1);
}

/** The counter's last value in an archive: the lines of /count in its rw layer, read on the host. */
export function archivedCount(archive: string): number {
  const out = execFileSync('sh', ['-c', `tar -xOf "$1" rootfs-diff.tar | tar -xOf - --wildcards '*count' | wc -l`, 'sh', archive]);
  return Number(out.toString().trim());
}

/**
 * Copies `archive` (a path in node `from`) to node `to`'s files share, by way
 * of `from`'s share and the host; returns its path, the same in `to` and on the host.
 */
export async function carryArchive(from: string, archive: string, to: string, name: string): Promise<string> {
  const out = path.join(nodeDirs(from).files, name);
  await guestScript(from, `cp '${archive}' ${out}`, 600_000);
  const dest = path.join(nodeDirs(to).files, name);
  if (dest !== out) {
    fs.copyFileSync(out, dest);
    fs.rmSync(out);
  }
  return dest;
}

/**
 * Stops a node's kubelet: a standalone kubelet terminates every pod it finds
 * in the runtime that no manifest of its own made (kubelet_pods.go
 * HandlePodCleanups, "orphaned pod we had not seen before"), so a pod
 * restored with crictl would not live beside it.
 */
export async function stopKubelet(node: string): Promise<void> {
  await guestScript(node, `p=$(pidof kubelet) || exit 0; kill $p; while kill -0 $p 2>/dev/null; do sleep 0.2; done; echo "--- stopped for a crictl restore" >> ${KUBELET_LOG}`, 120_000);
}

/**
 * `crictl runp`, `crictl create POD ctr.json pod.json` with the archive as
 * the image, and `crictl start` in `node`: ovmigrate-cri unpacks the archive,
 * containerd creates the container from the checkpoint's own image, and our
 * shim restores it at start. The pod is on the node's CNI bridge with a pid
 * namespace of the container's own (what the kubelet asks by default); the
 * container has the one bind mount a kubelet's container brings.
 * Returns the restored container's id.
 */
export async function restoreWithCrictl(node: string, archive: string, name: string): Promise<{ pod: string; container: string }> {
  const files = nodeDirs(node).files;
  const podFile = path.join(files, `${name}-pod.json`);
  const ctrFile = path.join(files, `${name}-ctr.json`);
  fs.writeFileSync(podFile, JSON.stringify({
    metadata: { name, namespace: 'default', uid: `${name}-uid`, attempt: 0 },
    log_directory: `/var/log/pods/${name}`,
    linux: { cgroup_parent: `/${name}`, security_context: { namespace_options: { pid: 1 } } },
  }));
  // The kubelet bind-mounts a termination-log file into each container; ovmigrate-cri takes no mount from an
  // archive, so the new container must bring its own at that path (else: FailedPrecondition naming it).
  const terminationLog = `/var/lib/${name}/termination-log`;
  fs.writeFileSync(ctrFile, JSON.stringify({
    metadata: { name: COUNTER_NAME }, image: { image: archive }, log_path: `${COUNTER_NAME}.log`,
    mounts: [{ container_path: '/dev/termination-log', host_path: terminationLog }],
  }));
  const out = await guestScript(node, `set -e
    mkdir -p /var/log/pods/${name} ${path.dirname(terminationLog)}; touch ${terminationLog}
    pod=$(${CRICTL} runp ${podFile})
    id=$(${CRICTL} create $pod ${ctrFile} ${podFile})
    ${CRICTL} start $id >/dev/null
    echo $pod $id`, 1_900_000);
  const [pod, container] = out.trim().split(/\s+/);
  return { pod, container };
}
