import { loadProtos } from '../../../common/proto.js';
import { encodeImage, kindByName, makeEntry } from '../../criu/index.js';
import { IpcDesc, SysvMsgQueue, SysvSem } from '../../linux/sysv-ipc.js';
import { PlannedImage } from '../planned-image.js';

/**
 * ipcns-sem-ID.img and ipcns-msg-ID.img as criu/ipc_ns.c writes them: a
 * message, then raw data padded to 8 bytes (dump_ipc_sem_set: the u16
 * values; dump_ipc_msg_queue_messages: each message's text), and a
 * queue's entry followed by its messages' own entries. Neither fits the
 * one-type-per-image codec, so the files are written whole here.
 */

function descEntry(d: IpcDesc): Record<string, unknown> {
  return { key: d.key, uid: d.uid, gid: d.gid, cuid: d.cuid, cgid: d.cgid, mode: d.mode, id: d.id };
}

/** One entry as CRIU's pb_write_one lays it: a little-endian u32 size, then the message. */
function framed(type: string, fields: Record<string, unknown>): Buffer {
  const msg = makeEntry(type, fields).message;
  const body = Buffer.from(loadProtos('criu').lookupType(type).encode(msg).finish());
  const size = Buffer.alloc(4);
  size.writeUInt32LE(body.length);
  return Buffer.concat([size, body]);
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((8 - (data.length % 8)) % 8)]);
}

function file(kind: string, id: number, parts: Buffer[]): PlannedImage {
  const name = kindByName(kind)!.file.replace('ID', String(id));
  return { file: name, data: Buffer.concat([encodeImage(kind, []), ...parts]) };
}

export function semImage(id: number, sets: SysvSem[]): PlannedImage {
  return file('IPCNS_SEM', id, sets.flatMap((s) => {
    const values = Buffer.alloc(s.values.length * 2);
    s.values.forEach((v, i) => values.writeUInt16LE(v, i * 2));
    return [framed('ipc_sem_entry', { desc: descEntry(s.desc), nsems: s.values.length }), padded(values)];
  }));
}

export function msgImage(id: number, queues: SysvMsgQueue[]): PlannedImage {
  return file('IPCNS_MSG', id, queues.flatMap((q) => [
    // msqid_ds.msg_qbytes and msg_qnum are unsigned longs CRIU stores in u32s.
    framed('ipc_msg_entry', { desc: descEntry(q.desc), qbytes: Number(q.qbytes & 0xffffffffn), qnum: q.messages.length }),
    ...q.messages.flatMap((m) => [framed('ipc_msg', { mtype: m.mtype, msize: m.data.length }), padded(m.data)]),
  ]));
}

export function shmEntry(desc: IpcDesc, size: bigint): Record<string, unknown> {
  // The contents go to pagemap-shmem-ID.img (criu/ipc_ns.c dump_ipc_shm_pages with in_pagemaps, CRIU >= 3.15).
  return { desc: descEntry(desc), size, in_pagemaps: true };
}
