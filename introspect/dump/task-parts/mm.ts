import { taskMm } from '../../linux/mm-state.js';
import { DumpContext, TaskDump } from '../context.js';
import { planMemory } from '../memory.js';
import { Dumped } from '../planned-image.js';
import { TaskPart } from './task-part.js';

/**
 * mm-PID.img and the plan of its pages (criu/mem.c): the pages themselves
 * are planned (memory.ts planPages) and copied after every part has run, while the guest runs (pages.ts).
 */
export const mmImage: TaskPart = {
  name: 'mm',
  dump(ctx: DumpContext, task: TaskDump): Dumped {
    const mm = taskMm(task.proc.leader);
    if (!mm) return {};
    task.memory = planMemory(task.proc.leader, mm, ctx.files, task.who);
    return { images: [{ kind: 'MM', id: task.proc.vpid, entries: [task.memory.mm] }], problems: task.memory.problems };
  },
};
