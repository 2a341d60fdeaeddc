import { KObject } from '../kernel/object.js';

/** The objects clone(2) may share between processes (CLONE_VM, CLONE_FILES, CLONE_FS, CLONE_SIGHAND), by address. */
export interface TaskObjects {
  mm: bigint;
  files: bigint;
  fs: bigint;
  sighand: bigint;
}

export const TASK_OBJECT_MEMBERS = ['mm', 'files', 'fs', 'sighand'] as const;

export function taskObjects(task: KObject): TaskObjects {
  return { mm: task.member('mm').value(), files: task.member('files').value(), fs: task.member('fs').value(), sighand: task.member('sighand').value() };
}
