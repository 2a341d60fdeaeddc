import { DumpContext, TaskDump } from '../context.js';
import { Dumped } from '../planned-image.js';

/**
 * One part of what CRIU dumps per process (criu/cr-dump.c dump_one_task):
 * run for each process in the table's order, which is the order CRIU
 * hands out ids in. A part may fill in the TaskDump for later parts.
 */
export interface TaskPart {
  name: string;
  dump(ctx: DumpContext, task: TaskDump): Dumped;
}
