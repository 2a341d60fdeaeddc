import { EnumDecls, StructDecls } from './kernel-types.js';
import { FakeKernel } from './fake-program.js';

/**
 * A network namespace's kernel objects, as 6.1 names them (layout the
 * builder's): devices, IPv4/IPv6 addresses, the IPv4 fib trie, the IPv6
 * fib6 tree, IPv4 rules, devconfs, netfilter hooks.
 */
export const NET_STRUCTS: StructDecls = {
  hlist_head: [['first', '*hlist_node']],
  hlist_node: [['next', '*hlist_node'], ['pprev', 'ptr']],
  kuid_t: [['val', 'u32']],
  in6_addr: [['s6_addr', 'u8[16]']],
  ns_common: [['inum', 'u32']],
  rtnl_link_ops: [['kind', 'ptr']],
  ipv4_devconf: [['sysctl', 'ptr'], ['data', 's32[33]']],
  ipv6_stable_secret: [['initialized', 'bool'], ['secret', 'in6_addr']],
  ipv6_devconf: [
    ...['forwarding', 'hop_limit', 'mtu6', 'accept_ra', 'accept_redirects', 'autoconf', 'dad_transmits', 'rtr_solicits', 'rtr_solicit_interval',
      'rtr_solicit_delay', 'force_mld_version', 'mldv1_unsolicited_report_interval', 'mldv2_unsolicited_report_interval', 'use_tempaddr',
      'temp_valid_lft', 'temp_prefered_lft', 'regen_max_retry', 'max_desync_factor', 'max_addresses', 'accept_ra_defrtr',
      'accept_ra_min_hop_limit', 'accept_ra_pinfo', 'ignore_routes_with_linkdown', 'accept_ra_rtr_pref', 'rtr_probe_interval',
      'accept_ra_rt_info_max_plen', 'proxy_ndp', 'accept_source_route', 'accept_ra_from_local', 'optimistic_dad', 'use_optimistic',
      'disable_ipv6', 'drop_unicast_in_l2_multicast', 'accept_dad', 'force_tllao', 'ndisc_notify', 'suppress_frag_ndisc', 'accept_ra_mtu',
      'drop_unsolicited_na', 'use_oif_addrs_only', 'keep_addr_on_down'].map((n) => [n, 's32'] as [string, string]),
    ['stable_secret', 'ipv6_stable_secret'],
  ],
  in_device: [['dev', 'ptr'], ['ifa_list', 'ptr'], ['cnf', 'ipv4_devconf']],
  in_ifaddr: [
    ['hash', 'hlist_node'], ['ifa_next', 'ptr'], ['ifa_dev', 'ptr'], ['ifa_local', 'u32'], ['ifa_address', 'u32'], ['ifa_mask', 'u32'],
    ['ifa_rt_priority', 'u32'], ['ifa_broadcast', 'u32'], ['ifa_scope', 'u8'], ['ifa_prefixlen', 'u8'], ['ifa_proto', 'u8'], ['ifa_flags', 'u32'],
    ['ifa_label', 'char[16]'], ['ifa_valid_lft', 'u32'], ['ifa_preferred_lft', 'u32'], ['ifa_cstamp', 'u64'], ['ifa_tstamp', 'u64'],
  ],
  inet6_dev: [['dev', 'ptr'], ['addr_list', 'list_head'], ['cnf', 'ipv6_devconf']],
  inet6_ifaddr: [
    ['addr', 'in6_addr'], ['prefix_len', 'u32'], ['rt_priority', 'u32'], ['valid_lft', 'u32'], ['prefered_lft', 'u32'], ['flags', 'u32'],
    ['scope', 'u16'], ['cstamp', 'u64'], ['tstamp', 'u64'], ['idev', 'ptr'], ['if_list', 'list_head'], ['peer_addr', 'in6_addr'], ['ifa_proto', 'u8'],
  ],
  net_device: [
    ['name', 'char[16]'], ['dev_list', 'list_head'], ['state', 'u64'], ['flags', 'u32'], ['gflags', 'u16'], ['operstate', 'u8'], ['mtu', 'u32'],
    ['type', 'u16'], ['addr_len', 'u8'], ['ifindex', 's32'], ['rtnl_link_ops', 'ptr'], ['ip_ptr', 'ptr'], ['ip6_ptr', 'ptr'], ['dev_addr', 'ptr'],
    ['nd_net', 'possible_net_t'], ['pad', 'u8[24]'],
  ],
  key_vector: [['key', 'u32'], ['pos', 'u8'], ['bits', 'u8'], ['slen', 'u8'], ['leaf', 'hlist_head'], ['tnode', 'ptr[0]']],
  trie: [['kv', 'key_vector[1]']],
  fib_table: [['tb_id', 'u32'], ['tb_data', 'ptr']],
  dst_metrics: [['metrics', 'u32[17]']],
  fib_nh_common: [['nhc_dev', 'ptr'], ['nhc_oif', 's32'], ['nhc_scope', 'u8'], ['nhc_family', 'u8'], ['nhc_gw_family', 'u8'], ['nhc_flags', 'u8'],
    ['nhc_lwtstate', 'ptr'], ['nhc_gw', 'nhc_gw_union']],
  nhc_gw_union: { union: true, fields: [['ipv4', 'u32'], ['ipv6', 'in6_addr']] },
  fib_nh: [['nh_common', 'fib_nh_common'], ['nh_tclassid', 'u32']],
  fib_info: [['fib_flags', 'u32'], ['fib_protocol', 'u8'], ['fib_scope', 'u8'], ['fib_type', 'u8'], ['fib_prefsrc', 'u32'], ['fib_priority', 'u32'],
    ['fib_metrics', 'ptr'], ['fib_nhs', 'u32'], ['nh', 'ptr'], ['fib_nh', 'fib_nh[0]']],
  fib_alias: [['fa_list', 'hlist_node'], ['fa_info', '*fib_info'], ['fa_dscp', 'u8'], ['fa_type', 'u8'], ['fa_slen', 'u8'], ['tb_id', 'u32']],
  rt6key: [['addr', 'in6_addr'], ['plen', 's32']],
  fib6_nh: [['nh_common', 'fib_nh_common']],
  fib6_info: [['fib6_next', 'ptr'], ['fib6_nsiblings', 'u32'], ['fib6_metrics', 'ptr'], ['fib6_dst', 'rt6key'], ['fib6_flags', 'u32'],
    ['fib6_src', 'rt6key'], ['fib6_prefsrc', 'rt6key'], ['fib6_metric', 'u32'], ['fib6_protocol', 'u8'], ['fib6_type', 'u8'], ['nh', 'ptr'], ['fib6_nh', 'fib6_nh[0]']],
  fib6_node: [['parent', 'ptr'], ['left', 'ptr'], ['right', 'ptr'], ['subtree', 'ptr'], ['leaf', 'ptr'], ['fn_bit', 'u16'], ['fn_flags', 'u16']],
  fib6_table: [['tb6_id', 'u32'], ['tb6_root', 'fib6_node']],
  fib_kuid_range: [['start', 'kuid_t'], ['end', 'kuid_t']],
  fib_rule_port_range: [['start', 'u16'], ['end', 'u16']],
  fib_rule: [
    ['list', 'list_head'], ['iifindex', 's32'], ['oifindex', 's32'], ['mark', 'u32'], ['mark_mask', 'u32'], ['flags', 'u32'], ['table', 'u32'],
    ['action', 'u8'], ['l3mdev', 'u8'], ['proto', 'u8'], ['ip_proto', 'u8'], ['target', 'u32'], ['tun_id', 'u64'], ['pref', 'u32'],
    ['suppress_ifgroup', 's32'], ['suppress_prefixlen', 's32'], ['iifname', 'char[16]'], ['oifname', 'char[16]'], ['uid_range', 'fib_kuid_range'],
    ['sport_range', 'fib_rule_port_range'], ['dport_range', 'fib_rule_port_range'],
  ],
  fib4_rule: [['common', 'fib_rule'], ['dst_len', 'u8'], ['src_len', 'u8'], ['dscp', 'u8'], ['src', 'u32'], ['dst', 'u32'], ['tclassid', 'u32']],
  fib_rules_ops: [['family', 's32'], ['rules_list', 'list_head']],
  nf_hook_entry: [['hook', 'ptr'], ['priv', 'ptr']],
  nf_hook_entries: [['num_hook_entries', 'u16'], ['hooks', 'nf_hook_entry[0]']],
  netns_nf: [['hooks_ipv4', 'ptr[5]'], ['hooks_ipv6', 'ptr[5]']],
  netns_ipv4: [['devconf_all', '*ipv4_devconf'], ['devconf_dflt', '*ipv4_devconf'], ['rules_ops', '*fib_rules_ops'], ['fib_main', '*fib_table']],
  netns_ipv6: [['devconf_all', '*ipv6_devconf'], ['devconf_dflt', '*ipv6_devconf'], ['fib6_null_entry', '*fib6_info'], ['fib6_main_tbl', '*fib6_table']],
  netns_unix: [['sysctl_max_dgram_qlen', 's32']],
  net: [['ns', 'ns_common'], ['dev_base_head', 'list_head'], ['ipv4', 'netns_ipv4'], ['ipv6', 'netns_ipv6'], ['unx', 'netns_unix'], ['nf', 'netns_nf']],
};

export const NET_ENUMS: EnumDecls = {
  netdev_state_t: [['__LINK_STATE_START', 0], ['__LINK_STATE_PRESENT', 1], ['__LINK_STATE_NOCARRIER', 2], ['__LINK_STATE_LINKWATCH_PENDING', 3], ['__LINK_STATE_DORMANT', 4]],
};

const IFF_UP = 0x1, IFF_LOOPBACK = 0x8, IFF_BROADCAST = 0x2, IFF_MULTICAST = 0x1000;
/** LINK_STATE_START | LINK_STATE_PRESENT: up, carrier on. */
const RUNNING = 0b11n;

const be = (s: string) => Buffer.from(s.split('.').map(Number)).readUInt32LE(0);
function v6(hex: string): Buffer {
  return Buffer.from(hex.padEnd(32, '0'), 'hex');
}

/**
 * A container's namespace: lo (127.0.0.1/8, ::1/128) and a veth ve0 whose
 * peer is in another namespace (10.97.0.2/24, fd00::2/64), a default route
 * via 10.97.0.1 and the connected 10.97.0.0/24, the IPv6 main table's
 * fd00::/64, the three default rules. HZ 250 (tick_nsec). Returns the
 * struct net.
 */
export function fakeNetNs(k: FakeKernel): { net: bigint; other: bigint } {
  const net = k.new('net', { 'ns.inum': 4026532300, 'unx.sysctl_max_dgram_qlen': 10 });
  const other = k.new('net', { 'ns.inum': 4026531840 });
  const conf4 = (fwd: number) => k.new('ipv4_devconf', { 'data[0]': fwd, 'data[3]': 1, 'data[26]': 10000, 'data[27]': 1000 });
  const conf6 = () => k.new('ipv6_devconf', { hop_limit: 64, mtu6: 1500, accept_ra: 1, rtr_solicit_interval: 1000, rtr_solicit_delay: 250,
    rtr_probe_interval: 15000, mldv1_unsolicited_report_interval: 2500, mldv2_unsolicited_report_interval: 250, rtr_solicits: -1 });
  k.write(net, 'net', { 'ipv4.devconf_all': conf4(0), 'ipv4.devconf_dflt': conf4(0), 'ipv6.devconf_all': conf6(), 'ipv6.devconf_dflt': conf6() });
  const vethOps = k.new('rtnl_link_ops', { kind: k.cstr('veth') });
  const devSize = k.types.sizeof('net_device');
  const priv = BigInt(Math.ceil(devSize / 32) * 32);
  const device = (name: string, ifindex: number, type: number, flags: number, mtu: number, addr: Buffer, ns: bigint, ops = 0n) => {
    const dev = k.alloc(Number(priv) + 64, 64);
    const a = k.alloc(Math.max(addr.length, 1), 8);
    k.put(a, addr);
    k.write(dev, 'net_device', { name, ifindex, type, flags, mtu, state: RUNNING, operstate: 6, addr_len: addr.length, dev_addr: a, 'nd_net.net': ns, rtnl_link_ops: ops });
    return dev;
  };
  const lo = device('lo', 1, 772, IFF_UP | IFF_LOOPBACK, 65536, Buffer.alloc(6), net);
  const ve0 = device('ve0', 2, 1, IFF_UP | IFF_BROADCAST | IFF_MULTICAST, 1500, Buffer.from('02f90d8b2b53', 'hex'), net, vethOps);
  const peer = device('vh0', 7, 1, IFF_UP | IFF_BROADCAST | IFF_MULTICAST, 1500, Buffer.from('02f90d8b2b54', 'hex'), other, vethOps);
  k.u64(ve0 + priv, peer);
  k.u64(peer + priv, ve0);
  k.link(k.addr('net', net, 'dev_base_head'), [lo, ve0].map((d) => k.addr('net_device', d, 'dev_list')));

  // Addresses: permanent (IFA_F_PERMANENT), created 100 s after boot (jiffies from INITIAL_JIFFIES = -300 s at HZ 250).
  const jiffies = (s: number) => BigInt.asUintN(64, BigInt(s - 300) * 250n);
  for (const [dev, local, plen, scope, label, conf] of [[lo, '127.0.0.1', 8, 254, 'lo', conf4(0)], [ve0, '10.97.0.2', 24, 0, 've0', conf4(0)]] as const) {
    const inDev = k.new('in_device', { dev });
    k.put(k.addr('in_device', inDev, 'cnf'), k.read(conf, k.types.sizeof('ipv4_devconf')));
    const ifa = k.new('in_ifaddr', { ifa_dev: inDev, ifa_local: be(local), ifa_address: be(local), ifa_prefixlen: plen, ifa_scope: scope, ifa_flags: 0x80,
      ifa_label: label, ifa_valid_lft: 0xffffffff, ifa_preferred_lft: 0xffffffff, ifa_cstamp: jiffies(100), ifa_tstamp: jiffies(100) });
    k.write(inDev, 'in_device', { ifa_list: ifa });
    k.write(dev, 'net_device', { ip_ptr: inDev });
  }
  for (const [dev, addr, plen, scope, proto] of [[lo, v6('00000000000000000000000000000001'), 128, 0x10, 1], [ve0, v6('fd000000000000000000000000000002'), 64, 0, 0]] as const) {
    const idev = k.new('inet6_dev', { dev });
    k.put(k.addr('inet6_dev', idev, 'cnf'), k.read(conf6(), k.types.sizeof('ipv6_devconf')));
    const ifa = k.new('inet6_ifaddr', { addr, prefix_len: plen, scope, flags: 0x80, ifa_proto: proto, idev, valid_lft: 0xffffffff, prefered_lft: 0xffffffff,
      cstamp: jiffies(100), tstamp: jiffies(100) });
    k.link(k.addr('inet6_dev', idev, 'addr_list'), [k.addr('inet6_ifaddr', ifa, 'if_list')]);
    k.write(dev, 'net_device', { ip6_ptr: idev });
  }

  // IPv4 main table: a tnode at bit 27 with the default route (key 0) and 10.97.0.0/24 as leaves.
  const metrics = k.new('dst_metrics');
  const route4 = (key: number, slen: number, info: Record<string, bigint | number>) => {
    const fi = k.alloc(k.types.sizeof('fib_info') + k.types.sizeof('fib_nh'), 64);
    k.write(fi, 'fib_info', { fib_nhs: 1, fib_metrics: metrics, ...info });
    const fa = k.new('fib_alias', { fa_info: fi, fa_type: 1, fa_slen: slen, tb_id: 254 });
    const leaf = k.new('key_vector', { key, pos: 0, bits: 0, slen, 'leaf.first': k.addr('fib_alias', fa, 'fa_list') });
    return leaf;
  };
  const dflt = route4(0, 32, { fib_protocol: 3, fib_scope: 0, 'fib_nh[0].nh_common.nhc_dev': ve0, 'fib_nh[0].nh_common.nhc_gw_family': 2,
    'fib_nh[0].nh_common.nhc_gw.ipv4': be('10.97.0.1') });
  const connected = route4(0x0a610000, 8, { fib_protocol: 2, fib_scope: 253, fib_prefsrc: be('10.97.0.2'), 'fib_nh[0].nh_common.nhc_dev': ve0 });
  const tnode = k.alloc(k.types.sizeof('key_vector') + 16, 64);
  k.write(tnode, 'key_vector', { pos: 27, bits: 1 });
  k.u64(k.addr('key_vector', tnode, 'tnode'), dflt);
  k.u64(k.addr('key_vector', tnode, 'tnode') + 8n, connected);
  const trie = k.alloc(k.types.sizeof('trie') + 16, 64);
  k.write(trie, 'key_vector', { pos: 32 });
  k.u64(k.addr('key_vector', trie, 'tnode'), tnode);
  k.write(net, 'net', { 'ipv4.fib_main': k.new('fib_table', { tb_id: 254, tb_data: trie }) });

  // IPv6 main table: the root (null entry) with fd00::/64 on its right.
  const nullEntry = k.new('fib6_info');
  const table6 = k.new('fib6_table', { tb6_id: 254, 'tb6_root.leaf': nullEntry, 'tb6_root.fn_flags': 7 });
  const root6 = k.addr('fib6_table', table6, 'tb6_root');
  const rt6 = k.alloc(k.types.sizeof('fib6_info') + k.types.sizeof('fib6_nh'), 64);
  k.write(rt6, 'fib6_info', { 'fib6_dst.addr': v6('fd00'), 'fib6_dst.plen': 64, fib6_metric: 256, fib6_protocol: 2, fib6_type: 1, fib6_metrics: metrics,
    'fib6_nh[0].nh_common.nhc_dev': ve0 });
  const node6 = k.new('fib6_node', { parent: root6, leaf: rt6, fn_bit: 64, fn_flags: 4 });
  k.write(root6, 'fib6_node', { right: node6 });
  k.write(net, 'net', { 'ipv6.fib6_main_tbl': table6, 'ipv6.fib6_null_entry': nullEntry });

  // The three rules fib4_rules_init adds.
  const ops = k.new('fib_rules_ops', { family: 2 });
  const rules = [[0, 255], [32766, 254], [32767, 253]].map(([pref, table]) => k.new('fib4_rule', {
    'common.pref': pref, 'common.table': table, 'common.action': 1, 'common.proto': 2, 'common.suppress_prefixlen': -1, 'common.suppress_ifgroup': -1,
    'common.uid_range.end.val': 0xffffffff,
  }));
  k.link(k.addr('fib_rules_ops', ops, 'rules_list'), rules.map((r) => k.addr('fib4_rule', r, 'common.list')));
  k.write(net, 'net', { 'ipv4.rules_ops': ops });
  return { net, other };
}
