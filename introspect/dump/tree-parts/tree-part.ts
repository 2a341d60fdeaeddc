import { DumpContext, TaskDump } from '../context.js';
import { Dumped } from '../planned-image.js';

/** An image of the whole tree, dumped once every process has been (criu/cr-dump.c cr_dump_tasks, after dump_one_task). */
export interface TreePart {
  name: string;
  dump(ctx: DumpContext, tasks: readonly TaskDump[]): Dumped;
}
