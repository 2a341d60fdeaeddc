import { TASK_DEAD } from '../../criu/index.js';
import { taskIdentity } from '../../linux/task-tree.js';
import { DumpContext, TaskDump } from '../context.js';
import { Dumped } from '../planned-image.js';
import { DumpProblem } from '../problem.js';
import { DumpTree } from '../tree.js';
import { TaskPart } from './task-part.js';


/**
 * What CRIU refuses of zombies (criu/seize.c collect_threads,
 * collect_task; criu/cr-dump.c dump_zombies), checked before any part
 * runs: the parts after assume a zombie is a leaf of one thread.
 */
export function zombieProblems(tree: DumpTree): DumpProblem[] {
  const problems: DumpProblem[] = [];
  for (const proc of tree.processes) {
    if (!proc.zombie) continue;
    const who = `pid ${proc.pid} (${taskIdentity(proc.leader).comm})`;
    const say = (detail: string) => problems.push(new DumpProblem(who, 'zombie', detail, { sentence: true }));
    if (proc === tree.root) {
      say('is a zombie: the root of the tree has exited (criu refuses a dead root too)');
      continue;
    }
    // The main thread called pthread_exit (the leader waits as a zombie for its threads, delay_group_leader).
    if (proc.threads.length > 1) say(`is a zombie whose other threads (${proc.tids.slice(1).join(', ')}) still run: not supported, as by criu`);
    // exit_notify hands a dying task's children to a reaper: a zombie with children is a corrupt tree.
    if (proc.children.length) say(`is a zombie with children (${proc.children.map((c) => c.pid).join(', ')})`);
    if (proc.vsid === 0) say("is a zombie whose session leader is outside the tree's pid namespace: restore could not make its session");
  }
  return problems;
}

/**
 * core-PID.img of a zombie (criu/cr-dump.c dump_one_zombie): the core
 * CRIU's core_entry_alloc(0, 1) makes, a task core and no thread parts,
 * with its name, TASK_DEAD and the exit code restore exits (or dies) with.
 * A zombie has no memory, files, fs, cgroup or ids: nothing else is
 * written for it, and pstree.img lists it with the others.
 */
export const zombieCore: TaskPart = {
  name: 'zombie-core',
  dump(_ctx: DumpContext, task: TaskDump): Dumped {
    const { proc } = task;
    const tc = {
      task_state: TASK_DEAD,
      exit_code: proc.zombie?.exitCode ?? 0,
      // Required fields core_entry_alloc leaves at their protobuf defaults.
      personality: 0,
      flags: 0,
      blk_sigset: 0,
      comm: taskIdentity(proc.leader).comm,
    };
    return { images: [{ kind: 'CORE', id: proc.vpid, entries: [{ mtype: 'X86_64', tc }] }] };
  },
};
