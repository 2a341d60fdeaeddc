import { UnsupportedError } from '../../common/errors.js';
import { KObject, listForEach } from '../kernel/object.js';

/** More policy rules than any container has: a longer list is corrupt RAM. */
const MAX_RULES = 4096;

/** An IPv4 policy routing rule (struct fib4_rule), the fields fib_nl_fill_rule puts in RTM_NEWRULE. */
export interface Rule4 {
  table: number;
  pref: number;
  action: number;
  flags: number;
  proto: number;
  suppressPrefixlen: number;
}

/**
 * The IPv4 rules of a namespace (net->ipv4.rules_ops->rules_list) in list
 * order, what `ip rule save` prints. Only rules that select on nothing
 * (the three the kernel adds, and the like) are read: a rule with a
 * selector (from/to, iif/oif, fwmark, tos, uid, ports, goto, ...) is
 * refused by name.
 */
export function rules4(net: KObject): Rule4[] {
  const ops = net.member('ipv4.rules_ops').deref();
  const out: Rule4[] = [];
  for (const r4 of listForEach(net.prog, ops.member('rules_list').address, 'fib4_rule', 'common.list', MAX_RULES)) {
    const r = r4.member('common');
    const pref = r.member('pref').num();
    const selectors: [string, boolean][] = [
      ['iif', r.member('iifname').string() !== ''], ['oif', r.member('oifname').string() !== ''],
      ['fwmark', r.member('mark').num() !== 0 || r.member('mark_mask').num() !== 0], ['goto', r.member('target').num() !== 0],
      ['tun_id', r.member('tun_id').value() !== 0n], ['suppress_ifgroup', Number(BigInt.asIntN(32, r.member('suppress_ifgroup').value())) !== -1],
      ['l3mdev', r.member('l3mdev').num() !== 0], ['ipproto', r.member('ip_proto').num() !== 0],
      ['sport', r.member('sport_range.start').num() !== 0 || r.member('sport_range.end').num() !== 0],
      ['dport', r.member('dport_range.start').num() !== 0 || r.member('dport_range.end').num() !== 0],
      ['from', r4.member('src_len').num() !== 0], ['to', r4.member('dst_len').num() !== 0],
      ['tos', (r4.has('dscp') ? r4.member('dscp').num() : r4.member('tos').num()) !== 0],
      ['realms', r4.has('tclassid') && r4.member('tclassid').num() !== 0],
    ];
    const uid = r.member('uid_range');
    // uid_range_set(): anything but the full range 0..~0 the kernel puts in a rule without one.
    if (uid.member('start.val').num() !== 0 || uid.member('end.val').num() !== 0xffffffff) selectors.push(['uidrange', true]);
    const used = selectors.filter(([, on]) => on).map(([n]) => n);
    if (used.length) throw new UnsupportedError(`IPv4 rule ${pref} selects on ${used.join(', ')} (not supported yet)`);
    out.push({
      table: r.member('table').num(),
      pref,
      action: r.member('action').num(),
      flags: r.member('flags').num(),
      proto: r.member('proto').num(),
      suppressPrefixlen: r.member('suppress_prefixlen').num(),
    });
  }
  return out;
}
