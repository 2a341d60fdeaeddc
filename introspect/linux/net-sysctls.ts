import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/**
 * The per-device sysctls of net/ipv4/conf/DEV and net/ipv6/conf/DEV that
 * CRIU 3.17 records (criu/net.c devconfs4/devconfs6), in its order, read
 * as their proc handlers print them.
 */

/** IPV4_DEVCONF_* (include/uapi/linux/ip.h, ABI): the sysctl is ipv4_devconf.data[n - 1]. */
const IPV4_DEVCONF: Record<string, number> = {
  forwarding: 1, mc_forwarding: 2, proxy_arp: 3, accept_redirects: 4, secure_redirects: 5, send_redirects: 6, shared_media: 7,
  rp_filter: 8, accept_source_route: 9, bootp_relay: 10, log_martians: 11, tag: 12, arp_filter: 13, medium_id: 14, disable_xfrm: 15,
  disable_policy: 16, force_igmp_version: 17, arp_announce: 18, arp_ignore: 19, promote_secondaries: 20, arp_accept: 21, arp_notify: 22,
  accept_local: 23, src_valid_mark: 24, proxy_arp_pvlan: 25, route_localnet: 26, igmpv2_unsolicited_report_interval: 27,
  igmpv3_unsolicited_report_interval: 28, ignore_routes_with_linkdown: 29, drop_unicast_in_l2_multicast: 30, drop_gratuitous_arp: 31,
};

/** criu/net.c devconfs4, in its order. */
export const DEVCONFS4 = [
  'accept_local', 'accept_redirects', 'accept_source_route', 'arp_accept', 'arp_announce', 'arp_filter', 'arp_ignore', 'arp_notify',
  'bootp_relay', 'disable_policy', 'disable_xfrm', 'force_igmp_version', 'forwarding', 'igmpv2_unsolicited_report_interval',
  'igmpv3_unsolicited_report_interval', 'log_martians', 'medium_id', 'promote_secondaries', 'proxy_arp', 'proxy_arp_pvlan',
  'route_localnet', 'rp_filter', 'secure_redirects', 'send_redirects', 'shared_media', 'src_valid_mark', 'tag',
  'ignore_routes_with_linkdown', 'drop_gratuitous_arp', 'drop_unicast_in_l2_multicast',
] as const;

/**
 * criu/net.c devconfs6, in its order, with the struct ipv6_devconf member
 * behind each (net/ipv6/addrconf.c addrconf_sysctl) and how proc prints it:
 * `s` jiffies as seconds (proc_dointvec_jiffies), `ms` jiffies as
 * milliseconds (proc_dointvec_ms_jiffies), else the int itself.
 */
export const DEVCONFS6: readonly [string, string, ('s' | 'ms' | 'secret')?][] = [
  ['accept_dad', 'accept_dad'], ['accept_ra', 'accept_ra'], ['accept_ra_defrtr', 'accept_ra_defrtr'],
  ['accept_ra_from_local', 'accept_ra_from_local'], ['accept_ra_min_hop_limit', 'accept_ra_min_hop_limit'],
  ['accept_ra_mtu', 'accept_ra_mtu'], ['accept_ra_pinfo', 'accept_ra_pinfo'], ['accept_ra_rt_info_max_plen', 'accept_ra_rt_info_max_plen'],
  ['accept_ra_rtr_pref', 'accept_ra_rtr_pref'], ['accept_redirects', 'accept_redirects'], ['accept_source_route', 'accept_source_route'],
  ['autoconf', 'autoconf'], ['dad_transmits', 'dad_transmits'], ['disable_ipv6', 'disable_ipv6'],
  ['drop_unicast_in_l2_multicast', 'drop_unicast_in_l2_multicast'], ['drop_unsolicited_na', 'drop_unsolicited_na'],
  ['force_mld_version', 'force_mld_version'], ['force_tllao', 'force_tllao'], ['forwarding', 'forwarding'], ['hop_limit', 'hop_limit'],
  ['ignore_routes_with_linkdown', 'ignore_routes_with_linkdown'], ['keep_addr_on_down', 'keep_addr_on_down'],
  ['max_addresses', 'max_addresses'], ['max_desync_factor', 'max_desync_factor'],
  ['mldv1_unsolicited_report_interval', 'mldv1_unsolicited_report_interval', 'ms'],
  ['mldv2_unsolicited_report_interval', 'mldv2_unsolicited_report_interval', 'ms'], ['mtu', 'mtu6'], ['ndisc_notify', 'ndisc_notify'],
  ['optimistic_dad', 'optimistic_dad'], ['proxy_ndp', 'proxy_ndp'], ['regen_max_retry', 'regen_max_retry'],
  ['router_probe_interval', 'rtr_probe_interval', 's'], ['router_solicitation_delay', 'rtr_solicit_delay', 's'],
  ['router_solicitation_interval', 'rtr_solicit_interval', 's'], ['router_solicitations', 'rtr_solicits'],
  ['stable_secret', 'stable_secret', 'secret'], ['suppress_frag_ndisc', 'suppress_frag_ndisc'], ['temp_prefered_lft', 'temp_prefered_lft'],
  ['temp_valid_lft', 'temp_valid_lft'], ['use_oif_addrs_only', 'use_oif_addrs_only'], ['use_optimistic', 'use_optimistic'],
  ['use_tempaddr', 'use_tempaddr'],
];

/** A sysctl as CRIU's sysctl_entry holds it: an int, a string, or (a string that reads EIO) nothing. */
export type Sysctl = { type: 'int'; value: number } | { type: 'str'; value?: string };

function s32(obj: KObject): number {
  return Number(BigInt.asIntN(32, obj.value()));
}

/** net/ipv4/conf/DEV/* of a struct ipv4_devconf (an in_device's cnf, or the namespace's all/default). */
export function ipv4DevConf(conf: KObject): Sysctl[] {
  const data = conf.member('data');
  return DEVCONFS4.map((name) => ({ type: 'int', value: s32(data.index(IPV4_DEVCONF[name] - 1)) }));
}

/** proc_dointvec_jiffies / _ms_jiffies of a value (kernel/sysctl.c do_proc_dointvec_*_conv: truncating division). */
function fromJiffies(j: number, unit: 's' | 'ms', hz: bigint): number {
  const v = BigInt(j);
  return Number(unit === 's' ? v / hz : (v * 1000n) / hz);
}

/** stable_secret: EIO until set, then the address as %pI6 prints it (8 groups of 4 hex digits). */
function stableSecret(conf: KObject): Sysctl {
  const s = conf.member('stable_secret');
  if (!s.member('initialized').value()) return { type: 'str' };
  const b = conf.prog.read(s.member('secret').address, 16, `${s.path}.secret`);
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16).padStart(4, '0'));
  return { type: 'str', value: groups.join(':') };
}

/** net/ipv6/conf/DEV/* of a struct ipv6_devconf; a member this kernel lacks is refused (CRIU would write it absent). */
export function ipv6DevConf(conf: KObject, hz: bigint): Sysctl[] {
  return DEVCONFS6.map(([name, member, unit]) => {
    if (unit === 'secret') return stableSecret(conf);
    if (!conf.has(member)) throw new BadDataError(`this kernel's ipv6_devconf has no ${member} (net.ipv6.conf.*.${name})`);
    const v = s32(conf.member(member));
    return { type: 'int', value: unit ? fromJiffies(v, unit, hz) : v };
  });
}

/** The namespace's own conf/all and conf/default of IPv4 and IPv6, and net.unix.max_dgram_qlen. */
export function netnsSysctls(net: KObject, hz: bigint): { all4: Sysctl[]; def4: Sysctl[]; all6: Sysctl[]; def6: Sysctl[]; unixMaxDgramQlen: number } {
  const ipv4 = net.member('ipv4');
  const ipv6 = net.member('ipv6');
  return {
    all4: ipv4DevConf(ipv4.member('devconf_all').deref()),
    def4: ipv4DevConf(ipv4.member('devconf_dflt').deref()),
    all6: ipv6DevConf(ipv6.member('devconf_all').deref(), hz),
    def6: ipv6DevConf(ipv6.member('devconf_dflt').deref(), hz),
    unixMaxDgramQlen: net.member('unx.sysctl_max_dgram_qlen').num(),
  };
}

/** A device's own conf (in_device->cnf, inet6_dev->cnf); a device without IPv4 or IPv6 has none to read. */
export function deviceSysctls(dev: KObject, hz: bigint): { conf4: Sysctl[]; conf6: Sysctl[] } {
  const in4 = dev.member('ip_ptr').value();
  const in6 = dev.member('ip6_ptr').value();
  if (in4 === 0n || in6 === 0n) throw new BadDataError(`${dev.path} has no ${in4 === 0n ? 'in_device' : 'inet6_dev'}`);
  return {
    conf4: ipv4DevConf(KObject.struct(dev.prog, 'in_device', in4).member('cnf')),
    conf6: ipv6DevConf(KObject.struct(dev.prog, 'inet6_dev', in6).member('cnf'), hz),
  };
}
