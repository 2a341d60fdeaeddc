import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { KObject, hlistForEach } from '../kernel/object.js';

/** RT_TABLE_MAIN (include/uapi/linux/rtnetlink.h). */
export const RT_TABLE_MAIN = 254;
/** Nodes of a trie over 32-bit keys: more than any container's table, a bound on corrupt RAM. */
const MAX_NODES = 1 << 16;
/** Aliases on one leaf (one per tos/priority/table of a prefix). */
const MAX_ALIASES = 1024;
/** Child slots read in all (a tnode has 1 << bits of them): a corrupt bits must not make the walk read gigabytes. */
const MAX_SLOTS = 1 << 20;

/** One IPv4 route of a table, what fib_dump_info puts in RTM_NEWROUTE. */
export interface Route4 {
  table: number;
  /** Network byte order. */
  dst: Buffer;
  dstLen: number;
  tos: number;
  type: number;
  protocol: number;
  scope: number;
  priority: number;
  prefsrc: Buffer;
  /** The single nexthop: gateway (4 bytes, or empty), output device, RTNH_F_* flags. */
  gateway: Buffer;
  oif: number;
  nhFlags: number;
  classid: number;
  /** Nonzero metrics, RTAX_* -> value. */
  metrics: Map<number, number>;
}

function be32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

function le32(obj: KObject): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(obj.num());
  return b;
}

/** The main table's struct fib_table (net->ipv4.fib_main, CONFIG_IP_MULTIPLE_TABLES as Debian builds it). */
function mainTable(net: KObject): KObject {
  const ipv4 = net.member('ipv4');
  if (!ipv4.has('fib_main')) throw new UnsupportedError('this kernel has no net->ipv4.fib_main (a build without CONFIG_IP_MULTIPLE_TABLES)');
  return ipv4.member('fib_main').deref();
}

/**
 * The leaves of a fib trie (net/ipv4/fib_trie.c) in ascending key order,
 * as leaf_walk_rcu visits them: a key_vector with bits 0 is a leaf, others
 * have 1 << bits children in tnode[]. Bounded; every child must sit below
 * its parent's position.
 */
function* trieLeaves(table: KObject): Generator<KObject> {
  const prog = table.prog;
  const trie = KObject.struct(prog, 'trie', table.member('tb_data').value());
  const kv0 = trie.member('kv').index(0);
  const ptrSize = 8n;
  const tnodeOff = BigInt(prog.btf.memberOffset('key_vector', 'tnode'));
  const root = prog.u64(kv0.address + tnodeOff, `${table.path}: trie root`);
  let slots = 0;
  const seen = new Set<bigint>();
  const walk = function* (addr: bigint, parentPos: number, depth: number): Generator<KObject> {
    if (seen.has(addr)) throw new BadDataError(`${table.path}: fib trie node 0x${addr.toString(16)} is reached twice`);
    if (seen.size >= MAX_NODES) throw new BadDataError(`${table.path}: fib trie has more than ${MAX_NODES} nodes`);
    seen.add(addr);
    if (depth > 33) throw new BadDataError(`${table.path}: fib trie deeper than 33 levels at 0x${addr.toString(16)}`);
    const kv = KObject.struct(prog, 'key_vector', addr);
    const bits = kv.member('bits').num();
    const pos = kv.member('pos').num();
    if (bits === 0) {
      yield kv;
      return;
    }
    if (pos + bits > parentPos || bits > 31) throw new BadDataError(`${kv.path}: tnode pos ${pos} bits ${bits} under a parent at ${parentPos}`);
    slots += 1 << bits;
    if (slots > MAX_SLOTS) throw new BadDataError(`${table.path}: fib trie has more than ${MAX_SLOTS} child slots`);
    for (let i = 0n; i < 1n << BigInt(bits); i++) {
      const child = prog.u64(addr + tnodeOff + i * ptrSize, `${kv.path}.tnode[${i}]`);
      if (child !== 0n) yield* walk(child, pos, depth + 1);
    }
  };
  if (root !== 0n) yield* walk(root, 32, 0);
}

/** The nonzero RTAX metrics of a route (fib_info->fib_metrics->metrics[], index i is RTAX i + 1). */
function metrics(fi: KObject): Map<number, number> {
  const out = new Map<number, number>();
  const ptr = fi.member('fib_metrics').value();
  if (ptr === 0n) return out;
  const arr = KObject.struct(fi.prog, 'dst_metrics', ptr).member('metrics');
  const t = arr.type;
  const n = t.kind === 'array' ? t.nelems : 0;
  for (let i = 0; i < n; i++) {
    const v = arr.index(i).num();
    if (v !== 0) out.set(i + 1, v);
  }
  return out;
}

/**
 * The routes of the main table (RT_TABLE_MAIN) in the order
 * inet_dump_fib gives them: leaves by key, then each leaf's aliases of
 * that table. Without custom rules the local table shares the trie
 * (fib_new_table's alias); its aliases carry tb_id 255 and are skipped.
 * Multipath routes, nexthop objects and lwtunnel encaps are refused.
 */
export function mainRoutes4(net: KObject): Route4[] {
  const table = mainTable(net);
  const tbId = table.member('tb_id').num();
  if (tbId !== RT_TABLE_MAIN) throw new BadDataError(`${table.path}.tb_id = ${tbId}, not the main table`);
  const out: Route4[] = [];
  for (const leaf of trieLeaves(table)) {
    const key = leaf.member('key').num();
    for (const fa of hlistForEach(leaf.prog, leaf.member('leaf').address, 'fib_alias', 'fa_list', MAX_ALIASES)) {
      if (fa.member('tb_id').num() !== tbId) continue;
      const fi = fa.member('fa_info').deref();
      const what = `route ${be32(key).join('.')}/${32 - fa.member('fa_slen').num()}`;
      if (fi.has('nh') && fi.member('nh').value() !== 0n) throw new UnsupportedError(`${what} uses a nexthop object (not supported yet)`);
      const nhs = fi.member('fib_nhs').num();
      if (nhs !== 1) throw new UnsupportedError(`${what} has ${nhs} nexthops (multipath routes are not supported yet)`);
      const nh = fi.member('fib_nh').flexIndex(0, 1);
      const nhc = nh.member('nh_common');
      if (nhc.member('nhc_lwtstate').value() !== 0n) throw new UnsupportedError(`${what} has a lightweight tunnel encap (not supported yet)`);
      const gwFamily = nhc.member('nhc_gw_family').num();
      if (gwFamily !== 0 && gwFamily !== 2) throw new UnsupportedError(`${what} has an IPv6 gateway (not supported yet)`);
      const dev = nhc.member('nhc_dev').value();
      const dstLen = 32 - fa.member('fa_slen').num();
      if (dstLen < 0 || dstLen > 32) throw new BadDataError(`${fa.path}.fa_slen is over 32`);
      // fa_tos became fa_dscp in 6.1 (commit 32ccf1107980, "ipv4: Use dscp_t in struct fib_alias").
      const tos = fa.has('fa_dscp') ? fa.member('fa_dscp').num() : fa.member('fa_tos').num();
      const prefsrc = fi.member('fib_prefsrc').num();
      out.push({
        table: tbId,
        dst: be32(key),
        dstLen,
        tos,
        type: fa.member('fa_type').num(),
        protocol: fi.member('fib_protocol').num(),
        scope: fi.member('fib_scope').num(),
        priority: fi.member('fib_priority').num(),
        prefsrc: prefsrc === 0 ? Buffer.alloc(0) : le32(fi.member('fib_prefsrc')),
        gateway: gwFamily === 2 ? le32(nhc.member('nhc_gw.ipv4')) : Buffer.alloc(0),
        oif: dev === 0n ? 0 : KObject.struct(fa.prog, 'net_device', dev).member('ifindex').num(),
        nhFlags: nhc.member('nhc_flags').num(),
        classid: nh.has('nh_tclassid') ? nh.member('nh_tclassid').num() : 0,
        metrics: metrics(fi),
      });
    }
  }
  return out;
}
