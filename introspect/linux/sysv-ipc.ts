import { BadDataError } from '../../common/errors.js';
import { KObject, containerOf, listForEach } from '../kernel/object.js';
import { IPC_ID_KINDS, IpcIdKind } from './ipc-namespace.js';
import { idrEntries } from './idr.js';

/**
 * The SysV objects of an IPC namespace, read from its ipc_ids (ipc/util.c:
 * an idr of kern_ipc_perm per kind, embedded first in shmid_kernel,
 * sem_array and msg_queue). What criu/ipc_ns.c gets from *_STAT and
 * semctl(GETALL) / msgrcv(MSG_COPY), read here from RAM.
 */

/** The ipc_perm of one object as IPC_STAT shows it (ipc/util.c kernel_to_ipc64_perm). */
export interface IpcDesc {
  /** The full id (index + sequence << ipcmni_seq_shift). */
  id: number;
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  /** Permission bits and, for shm, SHM_DEST / SHM_LOCKED. */
  mode: number;
}

export interface SysvShm {
  desc: IpcDesc;
  /** shm_segsz in bytes. */
  size: bigint;
  nattch: bigint;
  /** The segment's shmem file (shm_file): its inode holds the pages, its i_ino is the id (newseg). */
  file: KObject;
}

export interface SysvSem {
  desc: IpcDesc;
  /** semval of each semaphore, in order. */
  values: number[];
}

export interface SysvMsg {
  mtype: bigint;
  data: Buffer;
}

export interface SysvMsgQueue {
  desc: IpcDesc;
  qbytes: bigint;
  messages: SysvMsg[];
}

/** ipc/util.h: IPCMNI without ipcmni_extend is 32768; with it, 1 << 24: no namespace holds more objects of a kind. */
const MAX_IDS = 1 << 24;
/** include/uapi/linux/sem.h SEMMSL's upper bound (semctl SETALL refuses more than SEMMSL_FAST... sem_ctls[0] is at most this). */
const MAX_NSEMS = 32000;
/** A message is at most kernel.msgmax, a queue at most kernel.msgmnb: both are ints; 16 MiB bounds a queue read from RAM. */
const MAX_QUEUE_BYTES = 16 << 20;
/** All queues of a namespace together (msgmni queues of msgmnb bytes: 32000 x 16 KiB by default). */
const MAX_NS_BYTES = 4 * MAX_QUEUE_BYTES;
const PAGE = 4096;

/** The kern_ipc_perm of each object of a kind in a namespace, in index order, checked against the namespace's count. */
function* ipcObjects(ipcNs: KObject, kind: IpcIdKind): Generator<KObject> {
  const ids = ipcNs.member('ids').index(IPC_ID_KINDS.indexOf(kind));
  const inUse = ids.member('in_use').num();
  if (inUse < 0 || inUse > MAX_IDS) throw new BadDataError(`${ids.path}.in_use is ${inUse}`);
  let n = 0;
  for (const { index, entry } of idrEntries(ids.member('ipcs_idr'), inUse)) {
    const perm = KObject.struct(ipcNs.prog, 'kern_ipc_perm', entry);
    const id = perm.member('id').num();
    // ipc_idr_alloc: id = idx + (seq << shift), shift 15 or 24 (ipcmni_extend); the low 15 bits are the index either way.
    if (id < 0 || (id & 0x7fff) !== (index & 0x7fff)) throw new BadDataError(`${perm.path}: id ${id} is not at its idr index ${index}`);
    n++;
    yield perm;
  }
  if (n !== inUse) throw new BadDataError(`${ids.path}: the idr holds ${n} ${kind} objects, in_use says ${inUse}`);
}

function desc(perm: KObject): IpcDesc {
  return {
    id: perm.member('id').num(),
    key: Number(perm.member('key').value() & 0xffffffffn),
    uid: perm.member('uid.val').num(),
    gid: perm.member('gid.val').num(),
    cuid: perm.member('cuid.val').num(),
    cgid: perm.member('cgid.val').num(),
    mode: perm.member('mode').num(),
  };
}

/** `ipcNs`: a struct ipc_namespace. */
export function sysvShms(ipcNs: KObject): SysvShm[] {
  return [...ipcObjects(ipcNs, 'shm')].map((perm) => {
    const shp = containerOf(perm.prog, perm.address, 'shmid_kernel', 'shm_perm');
    return {
      desc: desc(perm),
      size: shp.member('shm_segsz').value(),
      nattch: shp.member('shm_nattch').value(),
      file: shp.member('shm_file').deref(),
    };
  });
}

/** `ipcNs`: a struct ipc_namespace. */
export function sysvSems(ipcNs: KObject): SysvSem[] {
  return [...ipcObjects(ipcNs, 'sem')].map((perm) => {
    const sma = containerOf(perm.prog, perm.address, 'sem_array', 'sem_perm');
    const nsems = sma.member('sem_nsems').num();
    if (nsems < 0 || nsems > MAX_NSEMS) throw new BadDataError(`${sma.path}.sem_nsems is ${nsems}`);
    const sems = sma.member('sems');
    const values: number[] = [];
    for (let i = 0; i < nsems; i++) {
      const v = sems.flexIndex(i, nsems).member('semval').num();
      // SEMVMX is 32767: semctl SETVAL/SETALL refuse more, and CRIU keeps u16.
      if (v < 0 || v > 32767) throw new BadDataError(`${sma.path}.sems[${i}].semval is ${v}`);
      values.push(v);
    }
    return { desc: desc(perm), values };
  });
}

/**
 * Each queue with its messages in queue order (what msgrcv(MSG_COPY, n)
 * returns for n = 0, 1, ...). A message's text follows its msg_msg in the
 * same page, the rest in a chain of msg_msgseg pages (ipc/msgutil.c
 * alloc_msg); the sizes must add up to the queue's q_cbytes.
 */
/** `ipcNs`: a struct ipc_namespace. */
export function sysvMsgQueues(ipcNs: KObject): SysvMsgQueue[] {
  const prog = ipcNs.prog;
  const msgHdr = prog.btf.sizeof(prog.btf.struct('msg_msg').id);
  const segHdr = prog.btf.sizeof(prog.btf.struct('msg_msgseg').id);
  let all = 0n;
  return [...ipcObjects(ipcNs, 'msg')].map((perm) => {
    const q = containerOf(prog, perm.address, 'msg_queue', 'q_perm');
    const cbytes = q.member('q_cbytes').value();
    all += cbytes;
    if (all > BigInt(MAX_NS_BYTES)) throw new BadDataError(`${q.path}: the namespace's queues hold more than ${MAX_NS_BYTES} bytes`);
    const qnum = q.member('q_qnum').value();
    if (cbytes > BigInt(MAX_QUEUE_BYTES) || qnum > BigInt(MAX_QUEUE_BYTES)) throw new BadDataError(`${q.path} holds ${qnum} messages of ${cbytes} bytes`);
    const messages: SysvMsg[] = [];
    let total = 0;
    for (const m of listForEach(prog, q.member('q_messages').address, 'msg_msg', 'm_list', Number(qnum))) {
      const size = m.member('m_ts').value();
      if (size > BigInt(MAX_QUEUE_BYTES - total)) throw new BadDataError(`${m.path}.m_ts ${size} runs past ${q.path}.q_cbytes ${cbytes}`);
      const data = Buffer.alloc(Number(size));
      let done = Math.min(data.length, PAGE - msgHdr);
      prog.read(m.address + BigInt(msgHdr), done, `${m.path} text`).copy(data);
      let seg = m.member('next').value();
      for (let hops = 0; done < data.length; hops++) {
        if (seg === 0n || hops > MAX_QUEUE_BYTES / (PAGE - segHdr)) throw new BadDataError(`${m.path}: its segments end before its ${size} bytes`);
        const n = Math.min(data.length - done, PAGE - segHdr);
        prog.read(seg + BigInt(segHdr), n, `msg_msgseg(0x${seg.toString(16)})`).copy(data, done);
        done += n;
        seg = KObject.struct(prog, 'msg_msgseg', seg).member('next').value();
      }
      total += data.length;
      messages.push({ mtype: m.member('m_type').value(), data });
    }
    if (BigInt(messages.length) !== qnum || BigInt(total) !== cbytes) {
      throw new BadDataError(`${q.path}: ${messages.length} messages of ${total} bytes queued, q_qnum ${qnum} and q_cbytes ${cbytes} say otherwise`);
    }
    return { desc: desc(perm), qbytes: q.member('q_qbytes').value(), messages };
  });
}

/** The IPC namespace a task's SysV mapping belongs to (ipc/shm.c: the VMA's file's private_data is a shm_file_data). */
export function sysvMappingNs(file: KObject): bigint {
  return KObject.struct(file.prog, 'shm_file_data', file.member('private_data').value()).member('ns').value();
}

/** init_ipc_ns: the host's IPC namespace, which a dump never carries. */
export function initIpcNs(prog: KObject['prog']): bigint | undefined {
  return prog.symbols.lookup('init_ipc_ns')?.address;
}
