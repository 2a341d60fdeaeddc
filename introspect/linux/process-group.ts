import { KObject } from '../kernel/object.js';
import { pidNumbers } from './tasks.js';

/** include/linux/pid.h enum pid_type { PIDTYPE_PID, PIDTYPE_TGID, PIDTYPE_PGID, PIDTYPE_SID }. */
const PIDTYPE_PGID = 2;
const PIDTYPE_SID = 3;

/** The struct pids of a process's group and session (signal->pids[PIDTYPE_PGID], [PIDTYPE_SID]); undefined when unset. */
export function processGroupPids(task: KObject): { pgid?: KObject; sid?: KObject } {
  const pids = task.member('signal').deref().member('pids');
  const at = (type: number) => {
    const pid = pids.index(type);
    return pid.value() === 0n ? undefined : pid.deref();
  };
  return { pgid: at(PIDTYPE_PGID), sid: at(PIDTYPE_SID) };
}

/** Process group and session ids in the initial pid namespace. */
export function processGroup(task: KObject): { pgid: number; sid: number } {
  const { pgid, sid } = processGroupPids(task);
  return { pgid: pgid ? pidNumbers(pgid)[0] : 0, sid: sid ? pidNumbers(sid)[0] : 0 };
}
