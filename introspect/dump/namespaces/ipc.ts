import { OvmError } from '../../../common/errors.js';
import { ipcIds, ipcSysctls } from '../../linux/ipc-namespace.js';
import { fileSuperblock, shmSuperblock } from '../../linux/vma-state.js';
import { sysvMsgQueues, sysvSems, sysvShms } from '../../linux/sysv-ipc.js';
import { PlannedImage } from '../planned-image.js';
import { DumpProblem } from '../problem.js';
import { NsDumper } from './ns-dumper.js';
import { msgImage, semImage, shmEntry } from './sysv-images.js';

const U32 = 0xffffffff;

/**
 * The IPC namespace (criu/ipc_ns.c dump_ipc_data): ipcns-var-ID.img (the
 * sysctls), then ipcns-shm-ID.img (segments, their pages in
 * pagemap-shmem-ID.img), ipcns-msg-ID.img and ipcns-sem-ID.img, all read
 * from the namespace's ipc_ids; CRIU leaves out the empty ones. A plain process tree may have one of its
 * own too: criu dump carries it the same way.
 */
export const ipcNs: NsDumper = {
  kind: 'ipc',
  plainTree: true,
  dump(ctx, ns) {
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
    for (const { kind, nextId } of ipcIds(ns.nsproxy)) {
      // kernel.{sem,msg,shm}_next_id: -1 unless set, and CRIU writes them only when set.
      if (nextId !== -1 && nextId !== U32) entry[`${kind}_next_id`] = nextId;
    }
    const images: PlannedImage[] = [{ kind: 'IPCNS_VAR', id: ns.id, entries: [entry] }];
    const problems: DumpProblem[] = [];
    const ipc = ns.nsproxy.member('ipc_ns').deref();
    const problem = (kind: string, err: unknown) => {
      if (!(err instanceof OvmError)) throw err;
      problems.push(new DumpProblem(ns.who, kind, `its IPC namespace's SysV objects cannot be read: ${err.message}`));
    };
    try {
      const shms = sysvShms(ipc);
      const shmSb = shmSuperblock(ns.root);
      for (const shm of shms) {
        // SHM_HUGETLB segments live on hugetlbfs, not shm_mnt: refused, as hugetlb mappings are.
        if (fileSuperblock(shm.file) !== shmSb) problems.push(new DumpProblem(ns.who, 'hugetlb', `SysV segment ${shm.desc.id} is not on shmem (hugetlb is not supported yet)`));
        else ctx.files.shmem.sysvPagesId(shm.file, ns.who);
      }
      if (shms.length) images.push({ kind: 'IPCNS_SHM', id: ns.id, entries: shms.map((shm) => shmEntry(shm.desc, shm.size)) });
    } catch (err) {
      problem('sysv-shm', err);
    }
    try {
      const queues = sysvMsgQueues(ipc);
      if (queues.length) images.push(msgImage(ns.id, queues));
    } catch (err) {
      problem('sysv-msg', err);
    }
    try {
      const sets = sysvSems(ipc);
      if (sets.length) images.push(semImage(ns.id, sets));
    } catch (err) {
      problem('sysv-sem', err);
    }
    return { images, problems };
  },
};
