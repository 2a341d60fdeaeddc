import { FakeKernel } from './fake-program.js';
import { StructDecls } from './kernel-types.js';
import { xarray } from './fake-tmpfs.js';

/** The IPC namespace's SysV structures (ipc/util.h, shm.c, sem.c, msg.c), with members in an order of their own. */
export const SYSV_STRUCTS: StructDecls = {
  // An idr's tree is an xarray (radix_tree_root); the event structs' placeholder is replaced.
  idr: [['idr_rt', 'xarray'], ['idr_base', 'u32'], ['idr_next', 'u32']],
  ipc_ids: [['in_use', 's32'], ['seq', 'u16'], ['ipcs_idr', 'idr'], ['max_idx', 's32'], ['last_idx', 's32'], ['next_id', 's32']],
  ipc_namespace: [['ids', 'ipc_ids[3]'], ['sem_ctls', 's32[4]'], ['used_sems', 's32'], ['msg_ctlmax', 'u32'], ['msg_ctlmnb', 'u32']],
  kern_ipc_perm: [['lock', 'u32'], ['deleted', 'bool'], ['id', 's32'], ['key', 's32'], ['uid', 'kuid_t'], ['gid', 'kgid_t'],
    ['cuid', 'kuid_t'], ['cgid', 'kgid_t'], ['mode', 'u16'], ['seq', 'u64'], ['security', 'ptr']],
  shmid_kernel: [['shm_perm', 'kern_ipc_perm'], ['shm_file', '*file'], ['shm_nattch', 'u64'], ['shm_segsz', 'u64'], ['shm_atim', 's64']],
  sem: [['semval', 's32'], ['sempid', 'ptr'], ['lock', 'u32'], ['pending_alter', 'list_head'], ['sem_otime', 's64']],
  sem_array: [['sem_perm', 'kern_ipc_perm'], ['sem_ctime', 's64'], ['pending_alter', 'list_head'], ['sem_nsems', 's32'],
    ['complex_count', 's32'], ['sems', 'sem[0]']],
  msg_queue: [['q_perm', 'kern_ipc_perm'], ['q_stime', 's64'], ['q_cbytes', 'u64'], ['q_qnum', 'u64'], ['q_qbytes', 'u64'],
    ['q_messages', 'list_head'], ['q_receivers', 'list_head']],
  msg_msg: [['m_list', 'list_head'], ['m_type', 's64'], ['m_ts', 'u64'], ['next', '*msg_msgseg'], ['security', 'ptr']],
  msg_msgseg: [['next', '*msg_msgseg']],
  shm_file_data: [['id', 's32'], ['ns', '*ipc_namespace'], ['file', '*file'], ['vm_ops', 'ptr']],
};

const PAGE = 4096;

/** A message allocated as ipc/msgutil.c alloc_msg lays it out: its text after the msg_msg, the rest in segment pages. */
function message(k: FakeKernel, mtype: bigint, text: Buffer): bigint {
  const hdr = k.types.sizeof('msg_msg');
  const segHdr = k.types.sizeof('msg_msgseg');
  const first = k.allocPage().va;
  k.write(first, 'msg_msg', { m_type: mtype, m_ts: text.length });
  k.put(first + BigInt(hdr), text.subarray(0, PAGE - hdr));
  let link = k.addr('msg_msg', first, 'next');
  for (let done = PAGE - hdr; done < text.length; done += PAGE - segHdr) {
    const seg = k.allocPage().va;
    k.put(seg + BigInt(segHdr), text.subarray(done, done + PAGE - segHdr));
    k.u64(link, seg);
    link = k.addr('msg_msgseg', seg, 'next');
  }
  return first;
}

export interface FakeSysv {
  ipcNs: bigint;
}

/**
 * An IPC namespace holding: shm ids 0 (key 0x5157, 20000 bytes) and
 * 32769 (index 1, sequence 1: removed while attached, key 0, SHM_DEST) on
 * the given shmem files; a set of semaphores 3,1,4 (id 0); a queue (id 2,
 * index 2 under a two-level idr) with "hello" (type 10) and a 5000-byte
 * message (type 12) spanning a segment.
 */
export function fakeSysv(k: FakeKernel, shmFiles: [bigint, bigint]): FakeSysv {
  const ipcNs = k.new('ipc_namespace');
  const idsOff = (kind: number) => ipcNs + BigInt(kind * k.types.sizeof('ipc_ids'));
  const perm = (id: number, key: number, mode: number) => ({ id, key, mode, 'uid.val': 70, 'gid.val': 71, 'cuid.val': 72, 'cgid.val': 73 });
  const setIds = (kind: number, entries: Map<bigint, bigint>, rootShift?: number) => {
    const head = rootShift === undefined ? [...entries.values()][0] : xarray(k, entries, rootShift);
    k.write(idsOff(kind), 'ipc_ids', { in_use: entries.size, next_id: -1, 'ipcs_idr.idr_rt.xa_head': head });
  };
  const shm = [
    k.new('shmid_kernel', { ...prefixed('shm_perm', perm(0, 0x5157, 0o640)), shm_file: shmFiles[0], shm_nattch: 1, shm_segsz: 20000 }),
    k.new('shmid_kernel', { ...prefixed('shm_perm', perm(32769, 0, 0o1600)), shm_file: shmFiles[1], shm_nattch: 1, shm_segsz: 3 * PAGE }),
  ];
  setIds(2, new Map([[0n, shm[0]], [1n, shm[1]]]), 0);
  const semSize = k.types.sizeof('sem');
  const sma = k.alloc(k.types.sizeof('sem_array') + 3 * semSize, 64);
  k.write(sma, 'sem_array', { ...prefixed('sem_perm', perm(0, 0x5e3, 0o660)), sem_nsems: 3 });
  const semsAt = k.addr('sem_array', sma, 'sems');
  [3, 1, 4].forEach((v, i) => k.write(semsAt + BigInt(i * semSize), 'sem', { semval: v }));
  setIds(0, new Map([[0n, sma]]));
  const long = Buffer.alloc(5000, 'x');
  const msgs = [message(k, 10n, Buffer.from('hello')), message(k, 12n, long)];
  const q = k.new('msg_queue', { ...prefixed('q_perm', perm(2, 0x3e55, 0o620)), q_cbytes: 5005, q_qnum: 2, q_qbytes: 16384 });
  k.link(k.addr('msg_queue', q, 'q_messages'), msgs.map((m) => k.addr('msg_msg', m, 'm_list')));
  setIds(1, new Map([[2n, q]]), 6);
  return { ipcNs };
}

function prefixed(prefix: string, values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).map(([key, v]) => [`${prefix}.${key}`, v]));
}
