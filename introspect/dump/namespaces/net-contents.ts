import { UnsupportedError } from '../../../common/errors.js';
import { mainRoutes4 } from '../../linux/fib4.js';
import { mainRoutes6 } from '../../linux/fib6.js';
import { rules4 } from '../../linux/fib-rules.js';
import { inet4Addresses, inet6Addresses } from '../../linux/net-addresses.js';
import { NetDevice, netDevices } from '../../linux/net-devices.js';
import { Sysctl, deviceSysctls, netnsSysctls } from '../../linux/net-sysctls.js';
import { netfilterHooks } from '../../linux/netfilter.js';
import { kernelHz } from '../../linux/socket-options.js';
import { DumpContext } from '../context.js';
import { Dumped, PlannedImage } from '../planned-image.js';
import { DumpProblem } from '../problem.js';
import { ifaddrImage, route6Image, routeImage, ruleImage } from './net-rtnl-images.js';
import { NsToDump } from './ns-dumper.js';

const ARPHRD_ETHER = 1;
const ARPHRD_LOOPBACK = 772;

function sysctlEntries(list: Sysctl[]): Record<string, unknown>[] {
  return list.map((s) => (s.type === 'int' ? { type: 'CTL_32', iarg: s.value } : { type: 'CTL_STR', ...(s.value !== undefined ? { sarg: s.value } : {}) }));
}

/** RTM_GETLINK/GETADDR dump order: the ifindex hash buckets (dev_index_head, 256 of them), newest first within one. */
function dumpOrder(devices: NetDevice[]): NetDevice[] {
  return [...devices].sort((a, b) => (a.ifindex & 255) - (b.ifindex & 255) || b.ifindex - a.ifindex);
}

/**
 * netdev-ID.img entry of a link (criu/net.c dump_one_netdev): what
 * RTM_NEWLINK says of it, its sysctls, and its peer: IFLA_LINK (the veth
 * peer's ifindex, else its own) and, when the peer is in this namespace
 * (or it has none), this namespace's id; a peer elsewhere is external.
 */
function netdevEntry(d: NetDevice, type: 'LOOPBACK' | 'VETH', nsId: number, net: bigint, hz: bigint): Record<string, unknown> {
  const { conf4, conf6 } = deviceSysctls(d.dev, hz);
  const peerHere = !d.peer || d.peer.net === net;
  return {
    type,
    ifindex: d.ifindex,
    mtu: d.mtu,
    flags: d.flags,
    name: d.name,
    ...(type !== 'LOOPBACK' && d.address.length ? { address: d.address } : {}),
    conf4: sysctlEntries(conf4),
    conf6: sysctlEntries(conf6),
    peer_ifindex: type === 'VETH' ? (d.peer?.ifindex ?? 0) : d.ifindex,
    ...(peerHere ? { peer_nsid: nsId } : {}),
  };
}

/** Which CRIU link type a device is, or why it is refused (criu/net.c dump_one_link: loopback and veth here). */
function linkType(d: NetDevice): 'LOOPBACK' | 'VETH' | string {
  if (d.type === ARPHRD_LOOPBACK) return 'LOOPBACK';
  if (d.type === ARPHRD_ETHER && d.kind === 'veth') return 'VETH';
  return `link ${d.name} (${d.kind ? `kind ${d.kind}` : `type ${d.type}`}) is not a loopback or veth (not supported yet)`;
}

/**
 * The images `criu dump` writes for a network namespace it dumps
 * (criu/net.c dump_net_ns): netdev, ifaddr, route, route6, rule, the
 * firewall (iptables, ip6tables, nftables: empty files for an empty
 * firewall; one with rules is refused) and netns (its sysctls). What the
 * readers cannot carry yet is a problem of the namespace, found before
 * anything is written.
 */
export function dumpOwnNetNs(_ctx: DumpContext, ns: NsToDump): Dumped {
  const net = ns.nsproxy.member('net_ns').deref();
  const problems: DumpProblem[] = [];
  const refuse = (detail: string) => problems.push(new DumpProblem(ns.who, 'net-namespace', detail));
  const hz = kernelHz(net);
  const devices = dumpOrder(netDevices(net));
  const entries: Record<string, unknown>[] = [];
  for (const d of devices) {
    const type = linkType(d);
    if (type !== 'LOOPBACK' && type !== 'VETH') refuse(type);
    else entries.push(netdevEntry(d, type, ns.id, net.address, hz));
  }
  const hooks = netfilterHooks(net);
  if (hooks.length) refuse(`netfilter hooks are registered (${hooks.join(', ')}): iptables/nftables rules or connection tracking (not supported yet)`);
  const tried = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch (err) {
      if (!(err instanceof UnsupportedError)) throw err;
      refuse(err.message);
      return undefined;
    }
  };
  const ifaddr = tried(() => ifaddrImage(devices.flatMap((d) => inet4Addresses(d.dev)), devices.flatMap((d) => inet6Addresses(d.dev)), hz));
  const route = tried(() => routeImage(mainRoutes4(net)));
  const route6 = tried(() => route6Image(mainRoutes6(net)));
  const rule = tried(() => ruleImage(rules4(net)));
  if (problems.length || !ifaddr || !route || !route6 || !rule) return { problems };
  const conf = netnsSysctls(net, hz);
  const file = (name: string, data: Buffer): PlannedImage => ({ file: `${name}-${ns.id}.img`, data });
  return {
    images: [
      { kind: 'NETDEV', id: ns.id, entries },
      file('ifaddr', ifaddr),
      file('route', route),
      file('route6', route6),
      file('rule', rule),
      file('iptables', Buffer.alloc(0)),
      file('ip6tables', Buffer.alloc(0)),
      file('nftables', Buffer.alloc(0)),
      {
        kind: 'NETNS', id: ns.id, entries: [{
          def_conf4: sysctlEntries(conf.def4), all_conf4: sysctlEntries(conf.all4),
          def_conf6: sysctlEntries(conf.def6), all_conf6: sysctlEntries(conf.all6),
          unix_conf: [{ type: 'CTL_32', iarg: conf.unixMaxDgramQlen }],
        }],
      },
    ],
  };
}
