import { TreePart } from './tree-part.js';

/** seccomp.img: empty, as no task of a dumpable tree runs under seccomp (task-parts/core.ts refuses those). */
export const seccompImage: TreePart = {
  name: 'seccomp',
  dump() {
    return { images: [{ kind: 'SECCOMP', entries: [{}] }] };
  },
};
