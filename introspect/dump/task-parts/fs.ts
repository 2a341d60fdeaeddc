import { taskFs } from '../../linux/fs-paths.js';
import { DumpContext, TaskDump } from '../context.js';
import { Dumped } from '../planned-image.js';
import { TaskPart } from './task-part.js';

/** fs-PID.img (criu/cr-dump.c dump_task_fs): cwd and root as file ids, and the umask. */
export const fsImage: TaskPart = {
  name: 'fs',
  dump(ctx: DumpContext, task: TaskDump): Dumped {
    const fs = taskFs(task.proc.leader);
    const entry = {
      cwd_id: ctx.files.special(fs.pwd, task.who, 'cwd'),
      root_id: ctx.files.special(fs.root, task.who, 'root'),
      umask: fs.umask,
    };
    return { images: [{ kind: 'FS', id: task.proc.vpid, entries: [entry] }] };
  },
};
