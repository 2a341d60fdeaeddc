import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_IMAGE, buildBusyboxImage } from './busybox-image.js';
import { componentBinary } from './components/index.js';
import { GuestCriOptions, SHIM_BIN, guestScript, startGuestContainerd } from './containerd.js';
import { PAUSE_IMAGE, buildPauseImage } from './pause-image.js';

/** Where `ovmigrate cri` serves in a lab guest: crictl's (and the kubelet's) runtime endpoint. */
export const GUEST_CRI_SOCKET = '/run/ovmigrate/cri.sock';
/** containerd's own socket in a lab guest (its CRI is ovmigrate-cri's upstream). */
export const GUEST_CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
/** ovmigrate-cri's log in the guest. */
export const GUEST_CRI_LOG = '/run/ovmigrate-cri.log';
/** ovmigrate-cri's pid in the guest (to stop or restart it). */
export const GUEST_CRI_PID = '/run/ovmigrate-cri.pid';

/** Seconds ovmigrate-cri may take to answer: a node program starting in a TCG guest on a loaded host. */
const START_TIMEOUT_S = 300;

export interface GuestCriNode extends GuestCriOptions {
  /**
   * A directory the guest sees (a --share of it) where the pause and busybox
   * image archives are built once, for the import into k8s.io.
   */
  work: string;
}

/** The image archives in `work`, built unless there already. */
async function imageArchives(work: string): Promise<string[]> {
  const pause = path.join(work, 'pause.tar');
  const busybox = path.join(work, 'busybox.tar');
  fs.mkdirSync(work, { recursive: true });
  await Promise.all([
    fs.existsSync(pause) ? undefined : buildPauseImage(`${pause}.new`).then(() => fs.renameSync(`${pause}.new`, pause)),
    fs.existsSync(busybox) ? undefined : buildBusyboxImage(`${busybox}.new`).then(() => fs.renameSync(`${busybox}.new`, busybox)),
  ]);
  return [pause, busybox];
}

/**
 * Makes a lab guest a CRI node (once; again is a no-op): containerd with its
 * CRI plugin (containerd.ts), the pause and busybox images in k8s.io,
 * `ovmigrate-cri` serving GUEST_CRI_SOCKET in front of containerd, and
 * crictl (from the components cache) pointed at it by /etc/crictl.yaml.
 */
export async function startGuestCri(guest: string, node: GuestCriNode): Promise<void> {
  const crictl = componentBinary('crictl');
  await startGuestContainerd(guest, { cri: { line: node.line, cni: node.cni, v2Program: node.v2Program } });
  const archives = await imageArchives(node.work);
  await guestScript(guest, `
    set -e
    ln -sf ${crictl} /usr/local/bin/crictl
    printf 'runtime-endpoint: unix://${GUEST_CRI_SOCKET}\\nimage-endpoint: unix://${GUEST_CRI_SOCKET}\\ntimeout: 120\\n' > /etc/crictl.yaml
    for a in ${archives.join(' ')}; do ctr -n k8s.io image import "$a" >/dev/null; done
    crictl version >/dev/null 2>&1 && exit 0
    setsid ${SHIM_BIN}/ovmigrate-cri --listen ${GUEST_CRI_SOCKET} --containerd ${GUEST_CONTAINERD_SOCKET} </dev/null >${GUEST_CRI_LOG} 2>&1 &
    echo $! > ${GUEST_CRI_PID}
    end=$(($(date +%s) + ${START_TIMEOUT_S}))
    while [ $(date +%s) -lt $end ]; do crictl version >/dev/null 2>&1 && crictl info >/dev/null 2>&1 && exit 0; sleep 0.5; done
    tail -20 ${GUEST_CRI_LOG}; tail -20 /run/containerd.log; exit 1`, (START_TIMEOUT_S + 300) * 1000);
}

/** The images a CRI node has in k8s.io. */
export const CRI_NODE_IMAGES = { pause: PAUSE_IMAGE, busybox: BUSYBOX_IMAGE } as const;
