/**
 * Pod networking in a lab node: Debian's containernetworking-plugins (the
 * host's /usr/lib/cni, which a guest sees through the host root share), one
 * bridge with host-local addresses. The guest has no network beyond its own
 * loopback, so there is no masquerading and no port mapping: a pod is reached
 * from the node only.
 */

/** Where Debian's containernetworking-plugins installs the plugins. */
export const CNI_BIN_DIR = '/usr/lib/cni';
/** The conf dir containerd's CRI plugin watches (in the guest). */
export const CNI_CONF_DIR = '/etc/cni/net.d';
export const CNI_CONF_FILE = `${CNI_CONF_DIR}/10-ovmigrate.conflist`;
export const CNI_BRIDGE = 'cni0';
/** The pods' subnet; the bridge is its first address. */
export const POD_SUBNET = '10.88.0.0/16';
/** The plugins the conflist uses: each must be in CNI_BIN_DIR. */
export const CNI_PLUGINS = ['bridge', 'host-local', 'loopback'];

/**
 * The conflist containerd's CRI reads (CNI spec 1.0.0, which containerd 1.6's
 * libcni 1.1 and containerd 2.x both take).
 */
export function cniConflist(): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'ovmigrate-pods',
    plugins: [
      {
        type: 'bridge',
        bridge: CNI_BRIDGE,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'loopback' },
    ],
  }, null, 2) + '\n';
}

/** True when `ip` is an address of POD_SUBNET (a /16: the first two octets). */
export function inPodSubnet(ip: string): boolean {
  const [a, b] = POD_SUBNET.split('.');
  return new RegExp(`^${a}\\.${b}\\.\\d{1,3}\\.\\d{1,3}$`).test(ip);
}
