import { UnsupportedError } from '../../../common/errors.js';
import { Inet4Address, Inet6Address } from '../../linux/net-addresses.js';
import { Route4 } from '../../linux/fib4.js';
import { Route6 } from '../../linux/fib6.js';
import { Rule4 } from '../../linux/fib-rules.js';
import {
  Attrs, IFADDR_SAVE_MAGIC, NLM_F_DUMP_FILTERED, NLM_F_MULTI, ROUTE_SAVE_MAGIC, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWRULE, RULE_SAVE_MAGIC, Sender,
  ipSaveFile, nlmsg,
} from './rtnetlink.js';

/**
 * ifaddr-ID.img, route-ID.img, route6-ID.img and rule-ID.img: CRIU stores
 * the output of `ip addr save`, `ip route save`, `ip -6 route save` and
 * `ip rule save` run in the namespace (criu/net.c dump_ifaddr, dump_route,
 * dump_rule) as raw images, which `ip ... restore` reads back. Built here
 * from what the readers found, attribute by attribute in the order the
 * kernel's fill functions put them (net/ipv4/devinet.c inet_fill_ifaddr,
 * net/ipv6/addrconf.c inet6_fill_ifaddr, net/ipv4/fib_semantics.c
 * fib_dump_info, net/ipv6/route.c rt6_fill_node, net/core/fib_rules.c
 * fib_nl_fill_rule).
 */

/** nlmsg_seq/nlmsg_pid: `ip` sends time(NULL) and gets its port back; restore never reads them. */
const SENDER: Sender = { seq: 0, pid: 0 };
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_COMPAT = 252;
const IFA_F_PERMANENT = 0x80;
const INFINITY_LIFE_TIME = 0xffffffff;
const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3, BROADCAST: 4, CACHEINFO: 6, FLAGS: 8, RT_PRIORITY: 9, PROTO: 11 };
const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, FLOW: 11, CACHEINFO: 12, TABLE: 15, PREF: 20 };
const FRA = { PRIORITY: 6, SUPPRESS_PREFIXLEN: 14, TABLE: 15, PROTOCOL: 21 };
/** RTNH_F_* a route message carries from its nexthop (fib_nexthop_info). */
const RTNH_F_DEAD = 1;
const RTNH_F_ONLINK = 4;
const RTNH_F_OFFLOAD = 8;
const RTNH_F_LINKDOWN = 16;
const RTNH_F_TRAP = 64;

/** cstamp_delta() of net/ipv4/devinet.c and addrconf.c: jiffies since boot (INITIAL_JIFFIES = -300 s) in hundredths of a second. */
function cstampDelta(jiffies: bigint, hz: bigint): number {
  const initial = (1n << 32n) - 300n * hz;
  return Number(BigInt.asUintN(32, (BigInt.asUintN(64, jiffies - initial) * 100n) / hz));
}

function cacheinfo(cstamp: bigint, tstamp: bigint, hz: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(INFINITY_LIFE_TIME, 0);
  b.writeUInt32LE(INFINITY_LIFE_TIME, 4);
  b.writeUInt32LE(cstampDelta(cstamp, hz), 8);
  b.writeUInt32LE(cstampDelta(tstamp, hz), 12);
  return b;
}

function ifaddrmsg(family: number, prefixlen: number, flags: number, scope: number, ifindex: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixlen, 1);
  b.writeUInt8(flags & 0xff, 2);
  b.writeUInt8(scope, 3);
  b.writeUInt32LE(ifindex, 4);
  return b;
}

/** Only addresses without a lifetime: the remaining time of the others needs the guest's jiffies at the dump. */
function permanent(flags: number, what: string): void {
  if (!(flags & IFA_F_PERMANENT)) throw new UnsupportedError(`address ${what} has a limited lifetime (DHCP or SLAAC; not supported yet)`);
}

const isZero = (b: Buffer) => b.every((x) => x === 0);

function addr4Message(a: Inet4Address, hz: bigint): Buffer {
  permanent(a.flags, `${a.local.join('.')}/${a.prefixlen}`);
  const attrs = new Attrs();
  if (!isZero(a.address)) attrs.put(IFA.ADDRESS, a.address);
  if (!isZero(a.local)) attrs.put(IFA.LOCAL, a.local);
  if (!isZero(a.broadcast)) attrs.put(IFA.BROADCAST, a.broadcast);
  if (a.label) attrs.str(IFA.LABEL, a.label);
  if (a.proto) attrs.u8(IFA.PROTO, a.proto);
  attrs.u32(IFA.FLAGS, a.flags);
  if (a.rtPriority) attrs.u32(IFA.RT_PRIORITY, a.rtPriority);
  attrs.put(IFA.CACHEINFO, cacheinfo(a.cstamp, a.tstamp, hz));
  return nlmsg(RTM_NEWADDR, NLM_F_MULTI, SENDER, ifaddrmsg(AF_INET, a.prefixlen, a.flags, a.scope, a.ifindex), attrs);
}

/** rt_scope() of net/ipv6/addrconf.c: the address's IFA_* scope bits as an RT_SCOPE_*. */
function rtScope(scope: number): number {
  if (scope & 0x10) return 254;
  if (scope & 0x20) return 253;
  if (scope & 0x40) return 200;
  return 0;
}

function addr6Message(a: Inet6Address, hz: bigint): Buffer {
  permanent(a.flags, `${a.address.toString('hex')}/${a.prefixlen}`);
  const attrs = new Attrs();
  if (!isZero(a.peer)) attrs.put(IFA.LOCAL, a.address).put(IFA.ADDRESS, a.peer);
  else attrs.put(IFA.ADDRESS, a.address);
  if (a.rtPriority) attrs.u32(IFA.RT_PRIORITY, a.rtPriority);
  attrs.put(IFA.CACHEINFO, cacheinfo(a.cstamp, a.tstamp, hz));
  attrs.u32(IFA.FLAGS, a.flags);
  if (a.proto) attrs.u8(IFA.PROTO, a.proto);
  return nlmsg(RTM_NEWADDR, NLM_F_MULTI, SENDER, ifaddrmsg(AF_INET6, a.prefixlen, a.flags, rtScope(a.scope), a.ifindex), attrs);
}

/** `ip addr save`: RTM_GETADDR of every family, so IPv4 (devinet) then IPv6 (addrconf), each device by device. */
export function ifaddrImage(v4: Inet4Address[], v6: Inet6Address[], hz: bigint): Buffer {
  return ipSaveFile(IFADDR_SAVE_MAGIC, [...v4.map((a) => addr4Message(a, hz)), ...v6.map((a) => addr6Message(a, hz))]);
}

function rtmsg(family: number, dstLen: number, tos: number, table: number, protocol: number, scope: number, type: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.set([family, dstLen, 0, tos, table < 256 ? table : RT_TABLE_COMPAT, protocol, scope, type]);
  b.writeUInt32LE(flags >>> 0, 8);
  return b;
}

/** The route flags fib_nexthop_info lifts from the nexthop (the linkdown sysctl's DEAD is not derived: restore ignores both). */
function nhFlags(f: number): number {
  return (f & RTNH_F_DEAD) | (f & RTNH_F_LINKDOWN) | (f & (RTNH_F_ONLINK | RTNH_F_OFFLOAD | RTNH_F_TRAP));
}

function noMetrics(metrics: Map<number, number>, what: string): void {
  if (metrics.size) throw new UnsupportedError(`route ${what} has metrics (mtu, window, ...; not supported yet)`);
}

function route4Message(r: Route4): Buffer {
  noMetrics(r.metrics, `${r.dst.join('.')}/${r.dstLen}`);
  const attrs = new Attrs().u32(RTA.TABLE, r.table);
  if (r.dstLen) attrs.put(RTA.DST, r.dst);
  if (r.priority) attrs.u32(RTA.PRIORITY, r.priority);
  if (r.prefsrc.length) attrs.put(RTA.PREFSRC, r.prefsrc);
  if (r.gateway.length) attrs.put(RTA.GATEWAY, r.gateway);
  if (r.oif) attrs.u32(RTA.OIF, r.oif);
  if (r.classid) attrs.u32(RTA.FLOW, r.classid);
  return nlmsg(RTM_NEWROUTE, NLM_F_MULTI | NLM_F_DUMP_FILTERED, SENDER,
    rtmsg(AF_INET, r.dstLen, r.tos, r.table, r.protocol, r.scope, r.type, nhFlags(r.nhFlags)), attrs);
}

function route6Message(r: Route6): Buffer {
  noMetrics(r.metrics, `${r.dst.toString('hex')}/${r.dstLen}`);
  const attrs = new Attrs().u32(RTA.TABLE, r.table);
  if (r.dstLen) attrs.put(RTA.DST, r.dst);
  if (r.prefsrc) attrs.put(RTA.PREFSRC, r.prefsrc);
  attrs.u32(RTA.PRIORITY, r.metric);
  if (r.gateway) attrs.put(RTA.GATEWAY, r.gateway);
  if (r.oif) attrs.u32(RTA.OIF, r.oif);
  // rta_cacheinfo of a table entry (no dst): all zero without an expiry (those are refused).
  attrs.put(RTA.CACHEINFO, Buffer.alloc(32));
  attrs.u8(RTA.PREF, r.pref);
  return nlmsg(RTM_NEWROUTE, NLM_F_MULTI | NLM_F_DUMP_FILTERED, SENDER,
    rtmsg(AF_INET6, r.dstLen, 0, r.table, r.protocol, 0, r.type, nhFlags(r.nhFlags)), attrs);
}

/** `ip route save` / `ip -6 route save`: the main table, filtered by the kernel (strict dump with RTA_TABLE). */
export function routeImage(routes: Route4[]): Buffer {
  return ipSaveFile(ROUTE_SAVE_MAGIC, routes.map(route4Message));
}

export function route6Image(routes: Route6[]): Buffer {
  return ipSaveFile(ROUTE_SAVE_MAGIC, routes.map(route6Message));
}

/** `ip rule save`: the IPv4 rules (ip rule's default family). */
export function ruleImage(rules: Rule4[]): Buffer {
  return ipSaveFile(RULE_SAVE_MAGIC, rules.map((r) => {
    const hdr = Buffer.alloc(12);
    hdr.set([AF_INET, 0, 0, 0, r.table < 256 ? r.table : RT_TABLE_COMPAT, 0, 0, r.action]);
    hdr.writeUInt32LE(r.flags >>> 0, 8);
    const attrs = new Attrs().u32(FRA.TABLE, r.table).u32(FRA.SUPPRESS_PREFIXLEN, r.suppressPrefixlen).u8(FRA.PROTOCOL, r.proto);
    if (r.pref) attrs.u32(FRA.PRIORITY, r.pref);
    return nlmsg(RTM_NEWRULE, NLM_F_MULTI, SENDER, hdr, attrs);
  }));
}
