import { KObject } from '../kernel/object.js';

/** ipc/util.h: ipc_namespace.ids[] order. */
export const IPC_ID_KINDS = ['sem', 'msg', 'shm'] as const;
export type IpcIdKind = (typeof IPC_ID_KINDS)[number];

/** The IPC sysctls of a namespace (kernel.sem, msg*, shm*, fs.mqueue.*), straight from struct ipc_namespace. */
export interface IpcSysctls {
  semCtls: number[];
  msgCtlmax: number;
  msgCtlmnb: number;
  msgCtlmni: number;
  shmCtlmax: bigint;
  shmCtlall: bigint;
  shmCtlmni: number;
  shmRmidForced: number;
  mqQueuesMax: number;
  mqMsgMax: number;
  mqMsgsizeMax: number;
  mqMsgDefault: number;
  mqMsgsizeDefault: number;
}

/** SysV objects of one kind in a namespace: how many exist, and kernel.<kind>_next_id as read (-1 or 0xffffffff unless set). */
export interface IpcIds {
  kind: IpcIdKind;
  inUse: number;
  nextId: number;
}

export function ipcSysctls(nsproxy: KObject): IpcSysctls {
  const ns = nsproxy.member('ipc_ns').deref();
  return {
    semCtls: [0, 1, 2, 3].map((i) => ns.member('sem_ctls').index(i).num()),
    msgCtlmax: ns.member('msg_ctlmax').num(),
    msgCtlmnb: ns.member('msg_ctlmnb').num(),
    msgCtlmni: ns.member('msg_ctlmni').num(),
    shmCtlmax: ns.member('shm_ctlmax').value(),
    shmCtlall: ns.member('shm_ctlall').value(),
    shmCtlmni: ns.member('shm_ctlmni').num(),
    shmRmidForced: ns.member('shm_rmid_forced').num(),
    mqQueuesMax: ns.member('mq_queues_max').num(),
    mqMsgMax: ns.member('mq_msg_max').num(),
    mqMsgsizeMax: ns.member('mq_msgsize_max').num(),
    mqMsgDefault: ns.member('mq_msg_default').num(),
    mqMsgsizeDefault: ns.member('mq_msgsize_default').num(),
  };
}

export function ipcIds(nsproxy: KObject): IpcIds[] {
  const ids = nsproxy.member('ipc_ns').deref().member('ids');
  return IPC_ID_KINDS.map((kind, i) => ({ kind, inUse: ids.index(i).member('in_use').num(), nextId: ids.index(i).member('next_id').num() }));
}
