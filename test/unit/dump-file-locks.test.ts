import assert from 'node:assert/strict';
import { DumpContext, TaskDump } from '../../introspect/dump/context.js';
import { fileLocksImage } from '../../introspect/dump/tree-parts/file-locks.js';
import { KObject } from '../../introspect/kernel/object.js';
import { FakeKernel } from './helpers/fake-program.js';
import { FILE_OBJECT_STRUCTS } from './helpers/file-object-structs.js';

const EOF_END = 0x7fffffffffffffffn;

describe('filelocks.img (tree part)', () => {
  it('each lock once, at the first fd of the tree that opens its file, with the holder\'s pid in the tree; leases with their type, a breaking one with LEASE_BREAKING and its target type', () => {
    const k = new FakeKernel({ structs: FILE_OBJECT_STRUCTS });
    const ctx = k.new('file_lock_context');
    const inode = k.new('inode', { i_mode: 0o100644, i_flctx: ctx });
    const shared = k.new('file', { f_inode: inode });
    const own = k.new('file', { f_inode: inode });
    const leased = [0, 1, 2, 3].map(() => k.new('file', { f_inode: inode }));
    const table = (files: bigint[]) => {
      const fd = k.alloc(64 * 8, 8);
      files.forEach((f, i) => k.u64(fd + BigInt(i * 8), f));
      const open = k.alloc(8, 8);
      k.put(open, Buffer.from([(1 << files.length) - 1]));
      return k.new('files_struct', { fdt: k.new('fdtable', { max_fds: 64, fd, open_fds: open, close_on_exec: k.alloc(8, 8) }) });
    };
    // The parent: fd 0 the shared file (its POSIX lock on 0-9 and its flock). The child: fd 0 the same file (nothing new), fd 1 its own (an flock).
    const parentFiles = table([shared]);
    const childFiles = table([shared, own]);
    const lock = (flags: number, type: number, owner: bigint, file: bigint, start = 0n, end = EOF_END) =>
      k.addr('file_lock', k.new('file_lock', { fl_flags: flags, fl_type: type, fl_owner: owner, fl_file: file, fl_start: start, fl_end: end }), 'fl_list');
    k.link(k.addr('file_lock_context', ctx, 'flc_flock'), [lock(2, 1, shared, shared), lock(2, 0, own, own)]);
    k.link(k.addr('file_lock_context', ctx, 'flc_posix'), [lock(1, 1, parentFiles, shared, 0n, 9n)]);
    k.link(k.addr('file_lock_context', ctx, 'flc_lease'), []);
    const parent = k.new('task_struct', { pid: 40, files: parentFiles });
    const child = k.new('task_struct', { pid: 41, files: childFiles });
    const task = (at: bigint, vpid: number) => ({ proc: { leader: KObject.struct(k.program(), 'task_struct', at), vpid }, who: `pid ${vpid} (t)` }) as unknown as TaskDump;
    const tasks = [task(parent, 1), task(child, 2)];
    const out = fileLocksImage.dump({} as DumpContext, tasks);
    assert.deepEqual(out.problems, []);
    assert.deepEqual(out.images, [{ kind: 'FILE_LOCKS', entries: [
      { flag: 2, type: 1, pid: 1, fd: 0, start: 0n, len: 0n },
      { flag: 1, type: 1, pid: 1, fd: 0, start: 0n, len: 10n },
      { flag: 2, type: 0, pid: 2, fd: 1, start: 0n, len: 0n },
    ] }]);

    // Leases (on the lease list, owned by their file), as criu dump writes them from fdinfo: flag FL_LEASE (8), the type F_GETLEASE
    // answers; being broken (FL_UNLOCK_PENDING 512, FL_DOWNGRADE_PENDING 256), LEASE_BREAKING (4) | the type it is broken to.
    const leaseTable = table(leased);
    k.link(k.addr('file_lock_context', ctx, 'flc_lease'), [lock(32, 0, leased[0], leased[0]), lock(32, 1, leased[1], leased[1]),
      lock(32 | 512, 0, leased[2], leased[2]), lock(32 | 256, 1, leased[3], leased[3])]);
    const holder = task(k.new('task_struct', { pid: 42, files: leaseTable }), 3);
    const leases = fileLocksImage.dump({} as DumpContext, [holder]);
    assert.deepEqual(leases.problems, []);
    assert.deepEqual(leases.images, [{ kind: 'FILE_LOCKS', entries: [
      { flag: 8, type: 0, pid: 3, fd: 0, start: 0n, len: 0n },
      { flag: 8, type: 1, pid: 3, fd: 1, start: 0n, len: 0n },
      { flag: 8, type: 4 | 2, pid: 3, fd: 2, start: 0n, len: 0n },
      { flag: 8, type: 4 | 0, pid: 3, fd: 3, start: 0n, len: 0n },
    ] }]);
  });

  it('no locks, no image (CRIU opens its images lazily)', () => {
    const k = new FakeKernel({ structs: FILE_OBJECT_STRUCTS });
    const fd = k.alloc(64 * 8, 8);
    const open = k.alloc(8, 8);
    const files = k.new('files_struct', { fdt: k.new('fdtable', { max_fds: 64, fd, open_fds: open, close_on_exec: k.alloc(8, 8) }) });
    const t = { proc: { leader: KObject.struct(k.program(), 'task_struct', k.new('task_struct', { files })), vpid: 1 }, who: 'pid 1 (t)' } as unknown as TaskDump;
    assert.deepEqual(fileLocksImage.dump({} as DumpContext, [t]), { images: [], problems: [] });
  });
});
