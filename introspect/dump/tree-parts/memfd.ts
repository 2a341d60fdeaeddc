import { TreePart } from './tree-part.js';

/** memfd.img (criu/memfd.c): every memfd inode an fd or mapping named, once; written only when there is one. */
export const memfdImage: TreePart = {
  name: 'memfd',
  dump(ctx) {
    const inodes = ctx.files.shmem.memfdInodes();
    return { images: inodes.length ? [{ kind: 'MEMFD_INODE', entries: inodes }] : [] };
  },
};
