import { BadDataError } from '../../common/errors.js';
import { KObject, listForEach } from '../kernel/object.js';

/** More links than a container's namespace holds: a longer list is corrupt RAM. */
const MAX_DEVICES = 4096;
/** include/linux/netdevice.h NETDEV_ALIGN: netdev_priv() is the net_device rounded up to it. */
const NETDEV_ALIGN = 32n;
/** MAX_ADDR_LEN (include/linux/netdevice.h). */
const MAX_ADDR_LEN = 32;

/** A network device of a namespace (what RTM_NEWLINK tells of it). */
export interface NetDevice {
  dev: KObject;
  name: string;
  ifindex: number;
  /** ARPHRD_* (ARPHRD_LOOPBACK 772, ARPHRD_ETHER 1). */
  type: number;
  /** dev_get_flags(): the IFF_* flags without the operational ones (see linkFlags). */
  flags: number;
  mtu: number;
  /** The hardware address, addr_len bytes. */
  address: Buffer;
  /** rtnl_link_ops->kind ("veth", ...), undefined for a device without (lo, a physical one). */
  kind?: string;
  /** The other end of a veth pair: its ifindex and the struct net it lives in. */
  peer?: { ifindex: number; net: bigint; name: string };
}

const IFF_UP = 0x1;
const IFF_PROMISC = 0x100;
const IFF_ALLMULTI = 0x200;
const IFF_RUNNING = 0x40;
const IFF_LOWER_UP = 0x10000;
const IFF_DORMANT = 0x20000;
/** IF_OPER_UNKNOWN and IF_OPER_UP (include/uapi/linux/if.h): netif_oper_up(). */
const OPER_UP = new Set([0, 6]);

/** A bit of enum netdev_state_t in dev->state, its number from BTF. */
function stateBit(dev: KObject, name: string): boolean {
  const e = dev.prog.btf.byName('netdev_state_t', 'enum');
  const bit = e && e.kind === 'enum' ? e.values.find((v) => v.name === name)?.value : undefined;
  if (bit === undefined) throw new BadDataError(`this kernel has no ${name} in enum netdev_state_t`);
  return ((dev.member('state').value() >> BigInt(bit)) & 1n) === 1n;
}

/**
 * The flags RTM_NEWLINK carries (net/core/dev.c dev_get_flags): the
 * configured ones of dev->flags, promisc/allmulti as the user set them
 * (gflags), the operational ones from dev->state, as `ip link` shows them.
 */
function linkFlags(dev: KObject): number {
  const flags = dev.member('flags').num();
  let out = (flags & ~(IFF_PROMISC | IFF_ALLMULTI | IFF_RUNNING | IFF_LOWER_UP | IFF_DORMANT)) | (dev.member('gflags').num() & (IFF_PROMISC | IFF_ALLMULTI));
  if (stateBit(dev, '__LINK_STATE_START')) {
    if (OPER_UP.has(dev.member('operstate').num())) out |= IFF_RUNNING;
    if (!stateBit(dev, '__LINK_STATE_NOCARRIER')) out |= IFF_LOWER_UP;
    if (stateBit(dev, '__LINK_STATE_DORMANT')) out |= IFF_DORMANT;
  }
  return out >>> 0;
}

/** dev->rtnl_link_ops->kind, or undefined. */
function linkKind(dev: KObject): string | undefined {
  const ops = dev.member('rtnl_link_ops').value();
  if (ops === 0n) return undefined;
  const kindPtr = KObject.struct(dev.prog, 'rtnl_link_ops', ops).member('kind').value();
  if (kindPtr === 0n) throw new BadDataError(`${dev.path}.rtnl_link_ops->kind is NULL`);
  return dev.prog.cstring(kindPtr, 64, `${dev.path}.rtnl_link_ops->kind`);
}

/** The struct net a device belongs to (dev_net(): nd_net.net). */
export function deviceNet(dev: KObject): bigint {
  return dev.member('nd_net.net').value();
}

/**
 * The peer of a veth: drivers/net/veth.c keeps `struct veth_priv { struct
 * net_device __rcu *peer; ... }` in netdev_priv(dev). veth is a module, so
 * vmlinux's BTF has no veth_priv: peer is its first member (since the
 * driver's first version), and the peer must point back, which checks it.
 */
function vethPeer(dev: KObject): NetDevice['peer'] {
  const priv = dev.address + ((BigInt(dev.size) + NETDEV_ALIGN - 1n) / NETDEV_ALIGN) * NETDEV_ALIGN;
  const peerAddr = dev.prog.u64(priv, `veth_priv.peer of ${dev.path}`);
  if (peerAddr === 0n) return undefined;
  const peer = KObject.struct(dev.prog, 'net_device', peerAddr);
  const back = dev.prog.u64(peerAddr + (priv - dev.address), `veth_priv.peer of the peer of ${dev.path}`);
  if (back !== dev.address) throw new BadDataError(`veth ${dev.path}: its peer 0x${peerAddr.toString(16)} does not point back (0x${back.toString(16)})`);
  return { ifindex: peer.member('ifindex').num(), net: deviceNet(peer), name: peer.member('name').string() };
}

/** One device's RTM_NEWLINK view. */
export function netDevice(dev: KObject): NetDevice {
  const len = dev.member('addr_len').num();
  if (len > MAX_ADDR_LEN) throw new BadDataError(`${dev.path}.addr_len = ${len} is over ${MAX_ADDR_LEN}`);
  const addrPtr = dev.member('dev_addr').value();
  const address = len === 0 ? Buffer.alloc(0) : Buffer.from(dev.prog.read(addrPtr, len, `${dev.path}.dev_addr`));
  const kind = linkKind(dev);
  return {
    dev,
    name: dev.member('name').string(),
    ifindex: dev.member('ifindex').num(),
    type: dev.member('type').num(),
    flags: linkFlags(dev),
    mtu: dev.member('mtu').num(),
    address,
    ...(kind ? { kind } : {}),
    ...(kind === 'veth' ? { peer: vethPeer(dev) } : {}),
  };
}

/** Every device of a network namespace in dev_base_head order (creation order: `ip link` and RTM_GETLINK dumps follow ifindex hash buckets, which equal it for small indexes). */
export function netDevices(net: KObject): NetDevice[] {
  const head = net.member('dev_base_head').address;
  return [...listForEach(net.prog, head, 'net_device', 'dev_list', MAX_DEVICES)].map(netDevice);
}

export { IFF_UP };
