import { utsNames } from '../../linux/uts-namespace.js';
import { NsDumper } from './ns-dumper.js';

/** utsns-ID.img (criu/namespaces.c dump_uts_ns): the names uname(2) gives inside the namespace. */
export const utsNs: NsDumper = {
  kind: 'uts',
  dump(_ctx, ns) {
    return { images: [{ kind: 'UTSNS', id: ns.id, entries: [utsNames(ns.nsproxy)] }] };
  },
};
