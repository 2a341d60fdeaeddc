import fs from 'node:fs';
import path from 'node:path';
import { ExternalError, InvalidArgumentError, NotFoundError } from '../../../common/errors.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../busybox-image.js';
import { SHIM_BIN, guestScript } from '../containerd.js';
import { componentDir, readPins } from '../components/index.js';
import { PAUSE_IMAGE, buildPauseImage } from '../pause-image.js';
import { guestPaths } from '../paths.js';
import { CNI_BIN_DIR, CNI_CONF_FILE, CNI_PLUGINS, cniConflist } from './cni.js';
import { nodeContainerdConfig } from './node-containerd.js';
import { KUBELET_CONFIG_FILE, KUBELET_HEALTHZ, KUBELET_LOG, STATIC_POD_DIR, kubeletConfig } from './kubelet-config.js';

/** The containerd a node runs: Debian's 1.6 (the old-version case) or the pinned 2.x. */
export type NodeContainerd = '1.6' | '2';
export const NODE_CONTAINERDS: readonly NodeContainerd[] = ['1.6', '2'];

/** ovmigrate-cri's socket in a node: the kubelet's and crictl's runtime endpoint. */
export const NODE_CRI_SOCKET = '/run/ovmigrate/cri.sock';
const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
/** Where the pinned Kubernetes tools are linked in a node (its root is a tmpfs overlay: the host is untouched). */
const NODE_BIN = '/usr/local/bin';
const NODE_TOOLS = ['kubelet', 'crictl', 'checkpointctl'];

/**
 * A node's host-side directories, under the guest's lab directory (removed
 * with it): the backend's image share and staging, and a share for the
 * files the node is set up from.
 */
export interface NodeDirs {
  images: string;
  staging: string;
  files: string;
  backendLog: string;
}

export function nodeDirs(guest: string): NodeDirs {
  const root = path.join(guestPaths(guest).dir, 'node');
  return {
    images: path.join(root, 'images'),
    staging: path.join(root, 'staging'),
    files: path.join(root, 'files'),
    backendLog: path.join(guestPaths(guest).dir, 'serve.log'),
  };
}

/**
 * Makes the node's directories and the files the guest is set up from (images,
 * configs); runs on the host before the guest boots. The tools must be built
 * (`lab components`) and the CNI plugins installed (Makefile APT_PACKAGES).
 */
export async function prepareNode(guest: string, containerd: NodeContainerd): Promise<NodeDirs> {
  if (containerd !== '1.6') throw new InvalidArgumentError(`--containerd ${containerd}: only 1.6 in this build (containerd 2.x in a guest comes with its own lab support)`);
  const tools = nodeTools();
  for (const plugin of CNI_PLUGINS) {
    if (!fs.existsSync(path.join(CNI_BIN_DIR, plugin))) {
      throw new NotFoundError(`CNI plugin ${plugin} not in ${CNI_BIN_DIR} (apt-get install containernetworking-plugins)`);
    }
  }
  const dirs = nodeDirs(guest);
  for (const d of [dirs.images, dirs.files]) fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  fs.mkdirSync(dirs.staging, { recursive: true, mode: 0o700 });
  const file = (name: string, text: string) => fs.writeFileSync(path.join(dirs.files, name), text);
  file('containerd.toml', nodeContainerdConfig({ cniBinDir: CNI_BIN_DIR, cniConfDir: path.dirname(CNI_CONF_FILE) }));
  file('cni.conflist', cniConflist());
  file('kubelet.json', kubeletConfig({ runtimeSocket: NODE_CRI_SOCKET }));
  file('shim.json', JSON.stringify({ images: dirs.images }) + '\n');
  file('crictl.yaml', `runtime-endpoint: unix://${NODE_CRI_SOCKET}\nimage-endpoint: unix://${NODE_CRI_SOCKET}\ntimeout: 60\n`);
  file('tools', tools.join('\n') + '\n');
  await Promise.all([buildPauseImage(path.join(dirs.files, 'pause.tar')), buildBusyboxImage(path.join(dirs.files, 'busybox.tar'))]);
  return dirs;
}

/**
 * The pinned kubelet, crictl and checkpointctl in the components cache, by
 * the pin's id and version (`make components` checks their build stamps; a
 * node only needs the programs there).
 */
function nodeTools(): string[] {
  const pins = readPins();
  return NODE_TOOLS.map((tool) => {
    const pin = pins.find((p) => p.binaries.some((b) => b.name === tool));
    const file = pin && path.join(componentDir(pin), 'bin', tool);
    if (!file || !fs.existsSync(file)) throw new NotFoundError(`${tool} is not built in the components cache (run \`lab components\`)`);
    return file;
  });
}

/** Seconds each step of a node's bring-up took (TCG: the kubelet's start is the slow part). */
export interface NodeTimings {
  containerd: number;
  images: number;
  cri: number;
  kubelet: number;
}

/**
 * Brings a booted guest up as a Kubernetes node, in the order each part needs
 * the one before: configs in place; containerd (CRI and CNI on, our shim the
 * default runtime); the local images in its k8s.io namespace; ovmigrate-cri
 * in front of it; the kubelet on ovmigrate-cri, until its health endpoint says ok.
 */
export async function startNode(guest: string, dirs: NodeDirs, timeoutMs = 600_000): Promise<NodeTimings> {
  const f = dirs.files;
  const step = async (script: string): Promise<number> => {
    const t0 = Date.now();
    await guestScript(guest, script, timeoutMs);
    return (Date.now() - t0) / 1000;
  };
  await step(`set -e
    mkdir -p /etc/containerd /etc/ovmigrate ${path.dirname(CNI_CONF_FILE)} ${STATIC_POD_DIR} ${NODE_BIN}
    cp ${f}/containerd.toml /etc/containerd/config.toml
    cp ${f}/cni.conflist ${CNI_CONF_FILE}
    cp ${f}/kubelet.json ${KUBELET_CONFIG_FILE}
    cp ${f}/shim.json /etc/ovmigrate/shim.json
    cp ${f}/crictl.yaml /etc/crictl.yaml
    for t in $(cat ${f}/tools); do ln -sf "$t" ${NODE_BIN}/; done
    modprobe -a bridge veth br_netfilter 2>/dev/null || true`);
  const timings: NodeTimings = { containerd: 0, images: 0, cri: 0, kubelet: 0 };
  timings.containerd = await step(`
    PATH=${SHIM_BIN}:$PATH setsid containerd --config /etc/containerd/config.toml </dev/null >/run/containerd.log 2>&1 &
    for i in $(seq 300); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done
    tail -20 /run/containerd.log; exit 1`);
  timings.images = await step(`set -e
    ctr -n k8s.io image import ${f}/pause.tar >/dev/null
    ctr -n k8s.io image import ${f}/busybox.tar >/dev/null
    ctr -n k8s.io image ls -q | grep -qx '${PAUSE_IMAGE}'
    ctr -n k8s.io image ls -q | grep -qx '${BUSYBOX_IMAGE}'`);
  timings.cri = await step(`
    setsid ${SHIM_BIN}/ovmigrate-cri --listen ${NODE_CRI_SOCKET} --containerd ${CONTAINERD_SOCKET} </dev/null >/run/ovmigrate-cri.log 2>&1 &
    for i in $(seq 600); do crictl version >/dev/null 2>&1 && exit 0; sleep 0.2; done
    tail -20 /run/ovmigrate-cri.log; exit 1`);
  timings.kubelet = await step(`
    setsid kubelet --config ${KUBELET_CONFIG_FILE} --v=2 </dev/null >${KUBELET_LOG} 2>&1 &
    for i in $(seq 1500); do [ "$(curl -s ${KUBELET_HEALTHZ})" = ok ] && exit 0; sleep 0.2; done
    tail -30 ${KUBELET_LOG}; exit 1`);
  return timings;
}

/** The kubelet's, ovmigrate-cri's and containerd's log tails: what a failed node step is read from. */
export async function nodeLogs(guest: string, lines = 40): Promise<string> {
  try {
    return await guestScript(guest, `for f in ${KUBELET_LOG} /run/ovmigrate-cri.log /run/containerd.log; do echo "--- $f"; tail -${lines} $f 2>&1; done`, 60_000);
  } catch (err) {
    throw new ExternalError(`logs of node ${guest}`, { cause: err });
  }
}
