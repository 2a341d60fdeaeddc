import { NsDumper } from './ns-dumper.js';
import { dumpOwnNetNs } from './net-contents.js';

/**
 * A network namespace the container joined by path is external (runc's
 * extRootNetNS). Its own one is, as runc has CRIU do it, left out: runc
 * passes empty_ns CLONE_NEWNET on every checkpoint and restore (runc
 * checkpoint.go/restore.go setEmptyNsMask, "runc doesn't manage network
 * devices"), so CRIU writes nothing for it and restores an empty one.
 * Asked to (`--net-ns`), its links, addresses, routes, rules, firewall and
 * sysctls are dumped as `criu dump` without --empty-ns writes them, for
 * `criu restore` to rebuild it.
 */
export const netNs: NsDumper = {
  kind: 'net',
  dump(ctx, ns) {
    if (ns.spec.joinedNamespaces.has('network')) return { images: [{ kind: 'NETNS', id: ns.id, entries: [{ ext_key: 'extRootNetNS' }] }] };
    return ctx.netNsContents ? dumpOwnNetNs(ctx, ns) : {};
  },
};
