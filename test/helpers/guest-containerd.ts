import { guestSh } from './cli.js';

/** containerd in a lab guest, without the CRI plugin (no CNI here), state on the guest's tmpfs. */
const CONFIG = `version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]
`;

/** Starts containerd in the guest (once) and waits until ctr reaches it. */
export async function startGuestContainerd(guest: string): Promise<void> {
  await guestSh(guest, `
    ctr version >/dev/null 2>&1 && exit 0
    mkdir -p /etc/containerd && printf '%s' '${CONFIG}' > /etc/containerd/config.toml
    setsid containerd </dev/null >/run/containerd.log 2>&1 &
    for i in $(seq 150); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done
    tail -20 /run/containerd.log; exit 1`, 60);
}
