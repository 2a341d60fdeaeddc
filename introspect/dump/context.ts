import { KObject } from '../kernel/object.js';
import { Program } from '../kernel/program.js';
import { PageInfo } from '../linux/pages.js';
import { DumpBudget } from './budget.js';
import { ContainerSpec } from './container.js';
import { FileTable } from './files.js';
import { IdAllocator } from './ids.js';
import { MemoryPlan } from './memory.js';
import { DumpProcess, DumpTree } from './tree.js';

/** Ids of a task's shared objects and namespaces, as ids-PID.img holds them (vm_id, ns ids, ...). */
export type TaskIds = Record<string, unknown>;

/** A set of cgroups a task is in (one on cgroup v2), and the part of its path the task's cgroup namespace hides. */
export interface CgroupSet {
  path: string;
  kn: KObject;
  cgnsPrefix: number;
}

/** What every dumper of one dump shares: the tree, the id counters, the files table. */
export interface DumpContext {
  prog: Program;
  tree: DumpTree;
  ids: IdAllocator;
  pages: PageInfo;
  files: FileTable;
  /** The dumper's own objects and namespaces (inventory root_ids). */
  rootIds: TaskIds;
  /** Dumping a runc container: its bundle's view of mounts and namespaces. */
  spec?: ContainerSpec;
  /** The part of the root's cgroup path its cgroup namespace hides (criu/proc_parse.c), 0 when none. */
  cgnsPrefix: number;
  /** The cgroup sets met, by id, for cgroup.img. */
  cgSets: Map<number, CgroupSet>;
  /** What this dump may cost (budget.ts). */
  budget: DumpBudget;
  /** Dump the tree's own network namespace's contents (links, addresses, routes) rather than leave it empty as runc does. */
  netNsContents?: boolean;
}

/** One process being dumped, filled in by the task parts in table order. */
export interface TaskDump {
  proc: DumpProcess;
  /** "pid 12 (sh)", how problems name it. */
  who: string;
  ids: TaskIds;
  /** Its files table was not met before (CLONE_FILES shares one): its fdinfo image is written. */
  newFilesTable: boolean;
  cgSet: number;
  memory?: MemoryPlan;
  /** Number of its pages-N.img, 0 when it has no memory. */
  pagesId: number;
}
