import { KObject } from '../kernel/object.js';
import { PathRoot, dPath } from './d-path.js';

/** A task's fs_struct: cwd and root as struct path objects, and the umask. */
export interface TaskFs {
  pwd: KObject;
  root: KObject;
  umask: number;
}

export function taskFs(task: KObject): TaskFs {
  const fs = task.member('fs').deref();
  return { pwd: fs.member('pwd'), root: fs.member('root'), umask: fs.member('umask').num() };
}

/** cwd and root as readlink /proc/PID/cwd and /proc/PID/root show them. */
export function fsPaths(task: KObject, root: PathRoot): { cwd: string; root: string } {
  const fs = taskFs(task);
  return { cwd: dPath(fs.pwd, root), root: dPath(fs.root, root) };
}
