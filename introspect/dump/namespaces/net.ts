import { NsDumper } from './ns-dumper.js';

/** A network namespace the container joined by path is external (runc's extRootNetNS); its own one is not dumped (runc: --empty-ns network). */
export const netNs: NsDumper = {
  kind: 'net',
  dump(_ctx, ns) {
    return ns.spec.joinedNamespaces.has('network') ? { images: [{ kind: 'NETNS', id: ns.id, entries: [{ ext_key: 'extRootNetNS' }] }] } : {};
  },
};
