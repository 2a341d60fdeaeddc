import { cgroupSet } from './cgroup-set.js';
import { coreImages } from './core.js';
import { fdinfoImage } from './fdinfo.js';
import { fsImage } from './fs.js';
import { idsImage } from './ids.js';
import { mmImage } from './mm.js';
import { TaskPart } from './task-part.js';
import { zombieCore } from './zombie.js';

export { KOBJ } from './ids.js';
export { TaskPart } from './task-part.js';
export { zombieProblems } from './zombie.js';

/**
 * What is dumped of each process, in CRIU's order: ids first, then the cgroup
 * set the core image names; file ids are handed out by mm (exe, mapped
 * files), then fdinfo, then fs (cwd, root), as criu/cr-dump.c does.
 */
export const TASK_PARTS: readonly TaskPart[] = [idsImage, cgroupSet, coreImages, mmImage, fdinfoImage, fsImage];

/** What is dumped of a zombie: its core image alone (criu/cr-dump.c dump_zombies); it takes no ids. */
export const ZOMBIE_PARTS: readonly TaskPart[] = [zombieCore];
