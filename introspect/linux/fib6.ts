import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/** Nodes of the main table's radix tree: more than any container's table, a bound on corrupt RAM. */
const MAX_NODES = 1 << 16;
/** Routes chained on one node (fib6_next): one per metric of a prefix. */
const MAX_PER_NODE = 1024;
/** include/net/ip6_fib.h fn_flags. */
const RTN_RTINFO = 0x4;
/** include/uapi/linux/ipv6_route.h. */
const RTF_EXPIRES = 0x00400000;
const RTF_PREF_MASK = 0x18000000;

/** One IPv6 route of a table, what rt6_fill_node puts in RTM_NEWROUTE. */
export interface Route6 {
  table: number;
  dst: Buffer;
  dstLen: number;
  type: number;
  protocol: number;
  metric: number;
  /** RTA_PREF: the router preference bits of fib6_flags. */
  pref: number;
  prefsrc?: Buffer;
  gateway?: Buffer;
  oif: number;
  nhFlags: number;
  metrics: Map<number, number>;
}

function in6(obj: KObject): Buffer {
  return Buffer.from(obj.prog.read(obj.address, 16, obj.path));
}

function metricsOf(fi: KObject): Map<number, number> {
  const out = new Map<number, number>();
  const ptr = fi.member('fib6_metrics').value();
  if (ptr === 0n) return out;
  const arr = KObject.struct(fi.prog, 'dst_metrics', ptr).member('metrics');
  const t = arr.type;
  for (let i = 0; i < (t.kind === 'array' ? t.nelems : 0); i++) {
    const v = arr.index(i).num();
    if (v !== 0) out.set(i + 1, v);
  }
  return out;
}

function route(fi: KObject, table: number): Route6 {
  const dstLen = fi.member('fib6_dst.plen').num();
  const dst = in6(fi.member('fib6_dst.addr'));
  const what = `IPv6 route ${dst.toString('hex')}/${dstLen}`;
  if (dstLen < 0 || dstLen > 128) throw new BadDataError(`${fi.path}.fib6_dst.plen = ${dstLen}`);
  if (fi.member('fib6_src.plen').num() !== 0) throw new UnsupportedError(`${what} has a source prefix (not supported yet)`);
  if (fi.member('fib6_nsiblings').num() !== 0) throw new UnsupportedError(`${what} is a multipath route (not supported yet)`);
  if (fi.member('nh').value() !== 0n) throw new UnsupportedError(`${what} uses a nexthop object (not supported yet)`);
  const flags = fi.member('fib6_flags').num();
  if (flags & RTF_EXPIRES) throw new UnsupportedError(`${what} expires (a route learned from a router advertisement; not supported yet)`);
  const nhc = fi.member('fib6_nh').flexIndex(0, 1).member('nh_common');
  if (nhc.member('nhc_lwtstate').value() !== 0n) throw new UnsupportedError(`${what} has a lightweight tunnel encap (not supported yet)`);
  const gwFamily = nhc.member('nhc_gw_family').num();
  if (gwFamily !== 0 && gwFamily !== 10) throw new UnsupportedError(`${what} has a gateway of family ${gwFamily} (not supported yet)`);
  const dev = nhc.member('nhc_dev').value();
  const prefLen = fi.member('fib6_prefsrc.plen').num();
  return {
    table,
    dst,
    dstLen,
    type: fi.member('fib6_type').num(),
    protocol: fi.member('fib6_protocol').num(),
    metric: fi.member('fib6_metric').num(),
    pref: (flags & RTF_PREF_MASK) >>> 27,
    ...(prefLen ? { prefsrc: in6(fi.member('fib6_prefsrc.addr')) } : {}),
    ...(gwFamily === 10 ? { gateway: in6(nhc.member('nhc_gw.ipv6')) } : {}),
    oif: dev === 0n ? 0 : KObject.struct(fi.prog, 'net_device', dev).member('ifindex').num(),
    nhFlags: nhc.member('nhc_flags').num(),
    metrics: metricsOf(fi),
  };
}

/**
 * The routes of the IPv6 main table (net->ipv6.fib6_main_tbl) in the order
 * inet6_dump_fib gives them: fib6_walk's post-order over the radix tree
 * (left, right, then the node), each node's fib6_next chain in order;
 * the table's null entry is never dumped. Source-routed subtrees, multipath,
 * nexthop objects and expiring routes are refused.
 */
export function mainRoutes6(net: KObject): Route6[] {
  const ipv6 = net.member('ipv6');
  const table = ipv6.member('fib6_main_tbl').deref();
  const tbId = table.member('tb6_id').num();
  const nullEntry = ipv6.member('fib6_null_entry').value();
  const out: Route6[] = [];
  let nodes = 0;
  const visit = (fn: KObject, depth: number): void => {
    if (++nodes > MAX_NODES) throw new BadDataError(`${table.path}: fib6 tree has more than ${MAX_NODES} nodes`);
    if (depth > 129) throw new BadDataError(`${table.path}: fib6 tree deeper than 129 levels at ${fn.path}`);
    if (fn.has('subtree') && fn.member('subtree').value() !== 0n) throw new UnsupportedError('an IPv6 source-routed subtree (not supported yet)');
    for (const side of ['left', 'right']) {
      const child = fn.member(side).value();
      if (child === 0n) continue;
      const c = KObject.struct(fn.prog, 'fib6_node', child);
      if (c.member('parent').value() !== fn.address) throw new BadDataError(`${c.path}.parent is not ${fn.path}`);
      const bit = c.member('fn_bit').num();
      if (bit < fn.member('fn_bit').num() || bit > 128) throw new BadDataError(`${c.path}.fn_bit ${bit} is not below its parent's`);
      visit(c, depth + 1);
    }
    if ((fn.member('fn_flags').num() & RTN_RTINFO) === 0) return;
    let rt = fn.member('leaf').value();
    for (let n = 0; rt !== 0n; n++) {
      if (n >= MAX_PER_NODE) throw new BadDataError(`${fn.path}: more than ${MAX_PER_NODE} routes on one node`);
      const fi = KObject.struct(fn.prog, 'fib6_info', rt);
      if (rt !== nullEntry) out.push(route(fi, tbId));
      rt = fi.member('fib6_next').value();
    }
  };
  visit(table.member('tb6_root'), 0);
  return out;
}
