import { cgroupImage } from './cgroup.js';
import { descriptorsFile } from './descriptors.js';
import { fileLocksImage } from './file-locks.js';
import { filesImages } from './files.js';
import { inventoryImage } from './inventory.js';
import { memfdImage } from './memfd.js';
import { namespaceImages } from './namespaces.js';
import { pstreeImage } from './pstree.js';
import { seccompImage } from './seccomp.js';
import { TreePart } from './tree-part.js';

export { TreePart } from './tree-part.js';

/** What is dumped of the whole tree, after every process (task-parts/index.ts). Pages and stats-dump follow in dump.ts. */
export const TREE_PARTS: readonly TreePart[] = [inventoryImage, pstreeImage, filesImages, seccompImage, cgroupImage, namespaceImages, descriptorsFile,
  fileLocksImage,
  memfdImage,
];
