import { TreePart } from './tree-part.js';

/**
 * pstree.img: every process with its numbers in the tree's pid namespace,
 * in preorder, zombies too. A zombie's one thread is its pid: CRIU leaves
 * that number unset (0) for zombies, and restore skips the leader's
 * (criu/pstree.c read_pstree_item).
 */
export const pstreeImage: TreePart = {
  name: 'pstree',
  dump(_ctx, tasks) {
    const entries = tasks.map(({ proc }) => ({ pid: proc.vpid, ppid: proc.vppid, pgid: proc.vpgid, sid: proc.vsid, threads: proc.vtids }));
    return { images: [{ kind: 'PSTREE', entries }] };
  },
};
