import { NsDumper } from './ns-dumper.js';

/** The container's own pid namespace needs no image; a joined one is external (runc's extRootPidNS). */
export const pidNs: NsDumper = {
  kind: 'pid',
  dump(_ctx, ns) {
    return ns.spec.joinedNamespaces.has('pid') ? { images: [{ kind: 'PIDNS', id: ns.id, entries: [{ ext_key: 'extRootPidNS' }] }] } : {};
  },
};
