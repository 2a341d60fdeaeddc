import { KObject } from '../kernel/object.js';
import { pidNumbers } from './tasks.js';

/** Process group and session ids in the initial pid namespace (signal->pids[PIDTYPE_PGID], [PIDTYPE_SID]). */
export function processGroup(task: KObject): { pgid: number; sid: number } {
  const pids = task.member('signal').deref().member('pids');
  const nr = (type: number) => {
    const pid = pids.index(type);
    return pid.value() === 0n ? 0 : pidNumbers(pid.deref())[0];
  };
  // enum pid_type { PIDTYPE_PID, PIDTYPE_TGID, PIDTYPE_PGID, PIDTYPE_SID }
  return { pgid: nr(2), sid: nr(3) };
}
