import { seccompFilters } from '../seccomp-filters.js';
import { TreePart } from './tree-part.js';

/**
 * seccomp.img: one entry holding every filter of the tree (criu/seccomp.c
 * dump_seccomp_filters), empty when no task runs under seccomp. The core
 * images name their threads' first filter to install by its index here.
 */
export const seccompImage: TreePart = {
  name: 'seccomp',
  dump(ctx) {
    const seccomp_filters = seccompFilters(ctx.tree).filters;
    return { images: [{ kind: 'SECCOMP', entries: [seccomp_filters.length ? { seccomp_filters } : {}] }] };
  },
};
