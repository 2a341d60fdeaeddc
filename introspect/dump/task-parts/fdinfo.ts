import { DumpContext, TaskDump } from '../context.js';
import { Dumped } from '../planned-image.js';
import { TaskPart } from './task-part.js';

/** fdinfo-ID.img of a files table, written once however many processes share it (CLONE_FILES); the files go to files.img. */
export const fdinfoImage: TaskPart = {
  name: 'fdinfo',
  dump(ctx: DumpContext, task: TaskDump): Dumped {
    if (!task.newFilesTable) return {};
    return { images: [{ kind: 'FDINFO', id: task.ids.files_id as number, entries: ctx.files.fdinfo(task.proc.leader, task.who) }] };
  },
};
