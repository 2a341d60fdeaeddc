import fs from 'node:fs';
import path from 'node:path';
import { ExternalError, InvalidArgumentError, NotFoundError } from '../../../common/errors.js';
import { buildBusyboxImage } from '../busybox-image.js';
import { ContainerdV2Program } from '../containerd-v2.js';
import { guestScript } from '../containerd.js';
import { GUEST_CRI_LOG, GUEST_CRI_SOCKET, startGuestCri } from '../cri-node.js';
import { componentBinary } from '../components/index.js';
import { buildPauseImage } from '../pause-image.js';
import { guestPaths } from '../paths.js';
import { CNI_BIN_DIR, CNI_CONF_FILE, CNI_PLUGINS, cniConflist } from './cni.js';
import { KUBELET_CONFIG_FILE, KUBELET_HEALTHZ, KUBELET_LOG, STATIC_POD_DIR, kubeletConfig } from './kubelet-config.js';

/** The containerd a node runs: Debian's 1.6 (the old-version case) or the pinned 2.x (containerd-v2.ts). */
export type NodeContainerd = '1.6' | '2';
export const NODE_CONTAINERDS: readonly NodeContainerd[] = ['1.6', '2'];

/**
 * The CRI set-up of each choice. A 2.x node runs the newest pinned 2.x,
 * v2.4, which removed containerd's own restore through CreateContainer: the
 * case where only ovmigrate-cri restores (the 2.3 build is the
 * containerd2-cri-checkpoint suite's, which tests containerd's own path).
 */
const NODE_CRI: Record<NodeContainerd, { line: NodeContainerd; v2Program?: ContainerdV2Program }> = {
  '1.6': { line: '1.6' },
  '2': { line: '2', v2Program: 'containerd-2.4' },
};

/** ovmigrate-cri's socket in a node: the kubelet's and crictl's runtime endpoint. */
export const NODE_CRI_SOCKET = GUEST_CRI_SOCKET;
/** Where the pinned Kubernetes tools are linked in a node (its root is a tmpfs overlay: the host is untouched); crictl comes with the CRI. */
const NODE_BIN = '/usr/local/bin';
const NODE_TOOLS = ['kubelet', 'checkpointctl'];

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
  if (!NODE_CONTAINERDS.includes(containerd)) throw new InvalidArgumentError(`--containerd ${String(containerd)}: give ${NODE_CONTAINERDS.join(' or ')}`);
  const tools = NODE_TOOLS.map((t) => componentBinary(t));
  // A 2.x node's containerd too: missing, it fails here (naming `lab components`), not in the booted guest.
  const v2 = NODE_CRI[containerd].v2Program;
  if (v2) componentBinary(v2);
  for (const plugin of CNI_PLUGINS) {
    if (!fs.existsSync(path.join(CNI_BIN_DIR, plugin))) {
      throw new NotFoundError(`CNI plugin ${plugin} not in ${CNI_BIN_DIR} (apt-get install containernetworking-plugins)`);
    }
  }
  const dirs = nodeDirs(guest);
  for (const d of [dirs.images, dirs.files]) fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  fs.mkdirSync(dirs.staging, { recursive: true, mode: 0o700 });
  const file = (name: string, text: string) => fs.writeFileSync(path.join(dirs.files, name), text);
  file('cni.conflist', cniConflist());
  file('kubelet.json', kubeletConfig({ runtimeSocket: NODE_CRI_SOCKET }));
  file('shim.json', JSON.stringify({ images: dirs.images }) + '\n');
  file('tools', tools.join('\n') + '\n');
  // The CRI set-up (cri-node.ts) imports them from there.
  await Promise.all([buildPauseImage(path.join(dirs.files, 'pause.tar')), buildBusyboxImage(path.join(dirs.files, 'busybox.tar'))]);
  return dirs;
}

/** Seconds each step of a node's bring-up took (TCG: the node programs' start is the slow part). */
export interface NodeTimings {
  /** containerd with its CRI, the images, ovmigrate-cri answering crictl. */
  cri: number;
  /** The kubelet until its health endpoint says ok. */
  kubelet: number;
}

/**
 * Brings a booted guest up as a Kubernetes node, in the order each part needs
 * the one before: the node's files in place (CNI conflist, kubelet config,
 * the shim's image share); the CRI node of the lab (cri-node.ts: containerd
 * with CRI and CNI on and our shim the default runtime, the local images in
 * k8s.io, ovmigrate-cri in front); the kubelet on ovmigrate-cri.
 */
export async function startNode(guest: string, dirs: NodeDirs, containerd: NodeContainerd, timeoutMs = 600_000): Promise<NodeTimings> {
  const f = dirs.files;
  await guestScript(guest, `set -e
    mkdir -p /etc/ovmigrate ${path.dirname(CNI_CONF_FILE)} ${STATIC_POD_DIR} ${NODE_BIN}
    cp ${f}/cni.conflist ${CNI_CONF_FILE}
    cp ${f}/kubelet.json ${KUBELET_CONFIG_FILE}
    cp ${f}/shim.json /etc/ovmigrate/shim.json
    for t in $(cat ${f}/tools); do ln -sf "$t" ${NODE_BIN}/; done
    modprobe -a bridge veth 2>/dev/null || true`, timeoutMs);
  let t0 = Date.now();
  await startGuestCri(guest, { work: f, ...NODE_CRI[containerd], cni: { binDir: CNI_BIN_DIR, confDir: path.dirname(CNI_CONF_FILE) } });
  const cri = (Date.now() - t0) / 1000;
  t0 = Date.now();
  await guestScript(guest, `
    setsid kubelet --config ${KUBELET_CONFIG_FILE} --v=2 </dev/null >${KUBELET_LOG} 2>&1 &
    end=$(( $(date +%s) + ${Math.floor(timeoutMs / 1000) - 10} ))
    while [ "$(date +%s)" -lt "$end" ]; do [ "$(curl -s ${KUBELET_HEALTHZ})" = ok ] && exit 0; sleep 0.5; done
    tail -30 ${KUBELET_LOG}; exit 1`, timeoutMs);
  return { cri, kubelet: (Date.now() - t0) / 1000 };
}

/** The kubelet's, ovmigrate-cri's and containerd's log tails: what a failed node step is read from. */
export async function nodeLogs(guest: string, lines = 40): Promise<string> {
  try {
    return await guestScript(guest, `for f in ${KUBELET_LOG} ${GUEST_CRI_LOG} /run/containerd.log; do echo "--- $f"; tail -${lines} $f 2>&1; done`, 60_000);
  } catch (err) {
    throw new ExternalError(`logs of node ${guest}`, { cause: err });
  }
}
