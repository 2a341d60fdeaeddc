import { ipcIds, ipcSysctls } from '../../linux/ipc-namespace.js';
import { DumpProblem } from '../problem.js';
import { NsDumper } from './ns-dumper.js';

const U32 = 0xffffffff;

/**
 * ipcns-var-ID.img (criu/ipc_ns.c dump_ipc_var): the namespace's IPC
 * sysctls. SysV objects in the namespace would need ipcns-shm/msg/sem
 * images too: those are refused.
 */
export const ipcNs: NsDumper = {
  kind: 'ipc',
  dump(_ctx, ns) {
    const s = ipcSysctls(ns.nsproxy);
    const entry: Record<string, unknown> = {
      sem_ctls: s.semCtls,
      msg_ctlmax: s.msgCtlmax,
      msg_ctlmnb: s.msgCtlmnb,
      msg_ctlmni: s.msgCtlmni,
      // kernel.auto_msgmni has been a dummy reading 0 since 4.1.
      auto_msgmni: 0,
      shm_ctlmax: s.shmCtlmax,
      shm_ctlall: s.shmCtlall,
      shm_ctlmni: s.shmCtlmni,
      shm_rmid_forced: s.shmRmidForced,
      mq_queues_max: s.mqQueuesMax,
      mq_msg_max: s.mqMsgMax,
      mq_msgsize_max: s.mqMsgsizeMax,
      mq_msg_default: s.mqMsgDefault,
      mq_msgsize_default: s.mqMsgsizeDefault,
    };
    const problems: DumpProblem[] = [];
    for (const { kind, inUse, nextId } of ipcIds(ns.nsproxy)) {
      if (inUse) problems.push(new DumpProblem(ns.who, `sysv-${kind}`, `its IPC namespace holds ${inUse} SysV ${kind} object(s) (not supported yet)`));
      // kernel.{sem,msg,shm}_next_id: -1 unless set, and CRIU writes them only when set.
      if (nextId !== -1 && nextId !== U32) entry[`${kind}_next_id`] = nextId;
    }
    return { images: [{ kind: 'IPCNS_VAR', id: ns.id, entries: [entry] }], problems };
  },
};
