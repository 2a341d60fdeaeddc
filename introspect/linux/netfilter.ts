import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/** More hook functions on one hook point than netfilter allows (MAX_HOOK_COUNT, net/netfilter/core.c). */
const MAX_HOOK_COUNT = 1024;

/**
 * Hook functions security modules register in every namespace (AppArmor's
 * and SELinux's secmark/labeling hooks, security/apparmor/lsm.c,
 * security/selinux/hooks.c): no firewall of the namespace, nothing CRIU
 * dumps.
 */
const LSM_HOOKS = [
  'apparmor_ip_postroute', 'apparmor_ipv4_postroute', 'apparmor_ipv6_postroute',
  'selinux_ip_postroute', 'selinux_ip_forward', 'selinux_ip_output', 'selinux_ipv4_postroute', 'selinux_ipv6_postroute',
  'selinux_ipv4_forward', 'selinux_ipv6_forward', 'selinux_ipv4_output', 'selinux_ipv6_output',
];

/**
 * The netfilter hooks a network namespace has registered (net->nf.hooks_*:
 * one nf_hook_entries per hook point, NULL while none), security modules'
 * left out. iptables tables, nftables base chains and connection tracking
 * all register hooks there; a namespace with none has an empty firewall,
 * what `iptables-save` and `nft list ruleset` print as nothing. Returns
 * "ipv4 hook 1" and the like.
 */
export function netfilterHooks(net: KObject): string[] {
  const lsm = new Set(LSM_HOOKS.flatMap((n) => net.prog.symbols.lookup(n)?.address ?? []));
  const nf = net.member('nf');
  const out: string[] = [];
  for (const family of ['ipv4', 'ipv6', 'arp', 'bridge']) {
    const member = `hooks_${family}`;
    if (!nf.has(member)) continue;
    const arr = nf.member(member);
    const t = arr.type;
    for (let i = 0; i < (t.kind === 'array' ? t.nelems : 0); i++) {
      const p = arr.index(i).value();
      if (p === 0n) continue;
      const entries = KObject.struct(net.prog, 'nf_hook_entries', p);
      const n = entries.member('num_hook_entries').num();
      if (n > MAX_HOOK_COUNT) throw new BadDataError(`${entries.path}.num_hook_entries = ${n}`);
      const hooks = entries.member('hooks');
      for (let j = 0; j < n; j++) {
        if (!lsm.has(hooks.flexIndex(j, n).member('hook').value())) {
          out.push(`${family} hook ${i}`);
          break;
        }
      }
    }
  }
  // nftables' netdev family (ingress/egress) hooks hang off the devices, not here: CRIU would dump them with the ruleset.
  return out;
}
