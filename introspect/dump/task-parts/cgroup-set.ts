import { taskCgroupNode } from '../../linux/kernfs.js';
import { cgroupPath } from '../../linux/tasks.js';
import { DumpContext, TaskDump } from '../context.js';
import { Dumped } from '../planned-image.js';
import { DumpProblem } from '../problem.js';
import { TaskPart } from './task-part.js';

/** The cgroup set of a process (criu/cgroup.c dump_task_cgroup), for its core image and cgroup.img; its threads must share it. */
export const cgroupSet: TaskPart = {
  name: 'cgroup',
  dump(ctx: DumpContext, task: TaskDump): Dumped {
    const { proc, who } = task;
    const path = cgroupPath(proc.leader);
    // Only the root task's set is looked up with its cgroup namespace prefix; the others are looked up with none and
    // then given the root's, so under a prefix each lands in a set of its own.
    const cg = proc === ctx.tree.root || !ctx.cgnsPrefix ? ctx.ids.cgSetId(`${path}:${ctx.cgnsPrefix}`) : ctx.ids.newCgSetId();
    if (cg.fresh) ctx.cgSets.set(cg.id, { path, kn: taskCgroupNode(proc.leader), cgnsPrefix: ctx.cgnsPrefix });
    task.cgSet = cg.id;
    const problems = proc.threads.flatMap((t, i) => (cgroupPath(t) === path ? []
      : [new DumpProblem(`thread ${proc.tids[i]} of ${who}`, 'cgroup', 'is in another cgroup than its process', { sentence: true })]));
    return { problems };
  },
};
