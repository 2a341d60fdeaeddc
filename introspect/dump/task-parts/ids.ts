import { namespaces } from '../../linux/namespaces.js';
import { TASK_OBJECT_MEMBERS, taskObjects } from '../../linux/task-objects.js';
import { DumpContext, TaskDump } from '../context.js';
import { KobjKind, NS_KINDS } from '../ids.js';
import { Dumped } from '../planned-image.js';
import { DumpProblem } from '../problem.js';
import { TaskPart } from './task-part.js';

/** The ids image's kinds of shared object, by the task_struct member that points at each. */
export const KOBJ: readonly [KobjKind, (typeof TASK_OBJECT_MEMBERS)[number]][] = [['vm', 'mm'], ['files', 'files'], ['fs', 'fs'], ['sighand', 'sighand']];

/**
 * ids-PID.img (criu/cr-dump.c dump_task_ids): the ids of the process's
 * shared objects and namespaces. A files table may be shared (it is dumped
 * once); the others may not.
 */
export const idsImage: TaskPart = {
  name: 'ids',
  dump(ctx: DumpContext, task: TaskDump): Dumped {
    const problems: DumpProblem[] = [];
    const objects = taskObjects(task.proc.leader);
    for (const [kind, member] of KOBJ) {
      const { id, fresh } = ctx.ids.kobjId(kind, objects[member]);
      task.ids[`${kind}_id`] = id;
      if (kind === 'files') task.newFilesTable = fresh;
      else if (!fresh) {
        problems.push(new DumpProblem(task.who, kind, `shares its ${member} with another process (CLONE_${kind === 'vm' ? 'VM' : kind.toUpperCase()}): not supported`,
          { sentence: true }));
      }
    }
    const ns = namespaces(task.proc.leader);
    for (const kind of NS_KINDS) {
      const inum = ns[kind];
      if (inum !== undefined) task.ids[`${kind}_ns_id`] = ctx.ids.nsId(BigInt(inum));
    }
    return { images: [{ kind: 'IDS', id: task.proc.vpid, entries: [task.ids] }], problems };
  },
};
