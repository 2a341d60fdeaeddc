import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { loadProtos } from '../../common/proto.js';
import { msgImage, semImage, shmEntry } from '../../introspect/dump/namespaces/sysv-images.js';
import { KObject } from '../../introspect/kernel/object.js';
import { sysvMsgQueues, sysvSems, sysvShms } from '../../introspect/linux/sysv-ipc.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel } from './helpers/fake-program.js';
import { SYSV_STRUCTS, fakeSysv } from './helpers/sysv-ipc-structs.js';

function kernel() {
  const k = new FakeKernel({ structs: SYSV_STRUCTS });
  const files: [bigint, bigint] = [k.new('file'), k.new('file')];
  const { ipcNs } = fakeSysv(k, files);
  return { k, files, ipcNs, ns: () => KObject.struct(k.program(), 'ipc_namespace', ipcNs) };
}

const desc = (id: number, key: number, mode: number) => ({ id, key, mode, uid: 70, gid: 71, cuid: 72, cgid: 73 });

/** The entries of an ipcns image written whole: [type, message, raw bytes after it]; `types` names each entry's message. */
function frames(data: Buffer, magic: number, types: string[]): [Record<string, unknown>, Buffer][] {
  assert.equal(data.readUInt32LE(4), magic);
  const out: [Record<string, unknown>, Buffer][] = [];
  let off = 8;
  for (const type of types) {
    const size = data.readUInt32LE(off);
    const t = loadProtos('criu').lookupType(type);
    const obj = t.toObject(t.decode(data.subarray(off + 4, off + 4 + size)), { longs: Number }) as Record<string, unknown>;
    off += 4 + size;
    const raw = type === 'ipc_sem_entry' ? Math.ceil((obj.nsems as number) * 2 / 8) * 8 : type === 'ipc_msg' ? Math.ceil((obj.msize as number) / 8) * 8 : 0;
    out.push([obj, data.subarray(off, off + raw)]);
    off += raw;
  }
  assert.equal(off, data.length, 'nothing after the last entry');
  return out;
}

describe('SysV IPC objects of an IPC namespace (fake kernel)', () => {
  it('reads segments, semaphore sets and queues with their messages from the ipc_ids idrs', () => {
    const { files, ns } = kernel();
    const shms = sysvShms(ns());
    assert.deepEqual(shms.map((s) => [s.desc, s.size, s.nattch, s.file.address]), [
      [desc(0, 0x5157, 0o640), 20000n, 1n, files[0]],
      [desc(32769, 0, 0o1600), 12288n, 1n, files[1]],
    ]);
    assert.deepEqual(sysvSems(ns()), [{ desc: desc(0, 0x5e3, 0o660), values: [3, 1, 4] }]);
    const [q] = sysvMsgQueues(ns());
    assert.deepEqual(q.desc, desc(2, 0x3e55, 0o620));
    assert.equal(q.qbytes, 16384n);
    assert.deepEqual(q.messages.map((m) => [m.mtype, m.data.length]), [[10n, 5], [12n, 5000]]);
    assert.equal(q.messages[0].data.toString(), 'hello');
    assert.ok(q.messages[1].data.equals(Buffer.alloc(5000, 'x')), 'the long message whole, across its segment');
  });

  it('writes ipcns-sem and ipcns-msg as criu/ipc_ns.c does: each entry, then its data padded to 8 bytes', () => {
    const { ns } = kernel();
    const sem = semImage(3, sysvSems(ns()));
    assert.ok('file' in sem && sem.file === 'ipcns-sem-3.img');
    const [[entry, values]] = frames((sem as { data: Buffer }).data, 0x59573019, ['ipc_sem_entry']);
    assert.deepEqual(entry, { desc: desc(0, 0x5e3, 0o660), nsems: 3 });
    assert.deepEqual([...values], [3, 0, 1, 0, 4, 0, 0, 0]);
    const msg = msgImage(3, sysvMsgQueues(ns())) as { file: string; data: Buffer };
    assert.equal(msg.file, 'ipcns-msg-3.img');
    const f = frames(msg.data, 0x55453737, ['ipc_msg_entry', 'ipc_msg', 'ipc_msg']);
    assert.deepEqual(f.map(([e]) => e), [{ desc: desc(2, 0x3e55, 0o620), qbytes: 16384, qnum: 2 }, { mtype: 10, msize: 5 }, { mtype: 12, msize: 5000 }]);
    assert.equal(f[1][1].toString('latin1'), 'hello\0\0\0');
    assert.equal(f[2][1].length, 5000);
    assert.deepEqual(shmEntry(desc(0, 1, 0o600), 10n), { desc: desc(0, 1, 0o600), size: 10n, in_pagemaps: true });
  });

  it('refuses hostile structures with typed errors: counts that disagree, a message list that loops, text past the queue', () => {
    let { k, ipcNs, ns } = kernel();
    k.write(ipcNs + BigInt(2 * k.types.sizeof('ipc_ids')), 'ipc_ids', { in_use: 3 });
    assertOvmError(() => sysvShms(ns()), BadDataError);
    ({ k, ipcNs, ns } = kernel());
    const queue = findQueue(k, ns());
    k.write(queue, 'msg_queue', { q_cbytes: 10 });
    assertOvmError(() => sysvMsgQueues(ns()), BadDataError);
    ({ k, ipcNs, ns } = kernel());
    const loop = findQueue(k, ns());
    const first = k.read(k.addr('msg_queue', loop, 'q_messages'), 8).readBigUInt64LE(0);
    k.write(first, 'list_head', { next: first });
    assertOvmError(() => sysvMsgQueues(ns()), BadDataError);
    // An entry that is neither a pointer nor a node.
    ({ k, ipcNs, ns } = kernel());
    k.write(ipcNs, 'ipc_ids', { 'ipcs_idr.idr_rt.xa_head': 0x1003n });
    assertOvmError(() => sysvSems(ns()), BadDataError);
  });
});

/** The msg_queue of the fake namespace's only queue: index 2 of the msg idr's two-level tree. */
function findQueue(k: FakeKernel, ns: KObject): bigint {
  const head = ns.member('ids').index(1).member('ipcs_idr.idr_rt.xa_head').value() - 2n;
  const child = k.read(head + BigInt(k.types.locate('xa_node', 'slots').bitOffset / 8), 8).readBigUInt64LE(0) - 2n;
  const permAddr = k.read(child + BigInt(k.types.locate('xa_node', 'slots').bitOffset / 8) + 16n, 8).readBigUInt64LE(0);
  return permAddr - BigInt(k.types.locate('msg_queue', 'q_perm').bitOffset / 8);
}
