import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { KObject } from '../../introspect/kernel/object.js';
import { fanotifyGroup } from '../../introspect/linux/fanotify.js';
import { fileHandle, handleWords } from '../../introspect/linux/file-handle.js';
import { fileLocks } from '../../introspect/linux/file-locks.js';
import { inotifyWatches } from '../../introspect/linux/inotify.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel } from './helpers/fake-program.js';
import { FILE_OBJECT_STRUCTS, NEW_KERNEL } from './helpers/file-object-structs.js';

const FID_ENUM = { fid_type: [['FILEID_INO32_GEN', 1], ['FILEID_INO64_GEN', 0x81]] as [string, number][] };

/** Links `nodes` (addresses of list_head members) into the list at `head`. */
function link(k: FakeKernel, head: bigint, nodes: bigint[]): void {
  const all = [head, ...nodes];
  all.forEach((n, i) => k.write(n, 'list_head', { next: all[(i + 1) % all.length], prev: all[(i + all.length - 1) % all.length] }));
}

function kernel(newer: boolean) {
  const k = new FakeKernel({ structs: { ...FILE_OBJECT_STRUCTS, ...(newer ? NEW_KERNEL : {}) }, enums: newer ? FID_ENUM : {} });
  const shmemEncode = k.symbol('shmem_encode_fh', 16);
  k.symbol('inotify_fops', 64);
  const off = (s: string, m: string) => BigInt(k.types.locate(s, m).bitOffset / 8);
  const tmpfsOps = k.new('export_operations', { encode_fh: shmemEncode });
  const tmpfs = k.new('super_block', { s_dev: 0x16, s_export_op: tmpfsOps });
  const ninep = k.new('super_block', { s_dev: 0x2a });
  const inode = (sb: bigint, ino: bigint) => k.new('inode', { i_sb: sb, i_ino: ino, i_generation: 7, i_mode: 0o40755 });
  return { k, off, tmpfs, ninep, inode };
}

/** An inotify file with marks on `inodes` (wd 1, 2, ...), the newest first as fsnotify_add_mark_list links them. */
function inotifyFile(env: ReturnType<typeof kernel>, newer: boolean, inodes: { at: bigint; mask: number; flags?: number }[]) {
  const { k, off } = env;
  const group = k.new('fsnotify_group', { 'inotify_data.idr.idr_next': inodes.length + 1 });
  const marks = inodes.map((ino, i) => {
    const conn = k.new('fsnotify_mark_connector', { type: 0, obj: newer ? ino.at : ino.at + off('inode', 'i_fsnotify_marks') });
    k.write(ino.at, 'inode', { i_fsnotify_marks: conn });
    return k.new('inotify_inode_mark', { 'fsn_mark.mask': ino.mask, 'fsn_mark.flags': ino.flags ?? 0, 'fsn_mark.group': group, 'fsn_mark.connector': conn, wd: i + 1 });
  });
  link(k, group + off('fsnotify_group', 'marks_list'), marks.reverse().map((m) => m + off('fsnotify_mark', 'g_list')));
  const file = k.new('file', { private_data: group });
  return { file: () => KObject.struct(k.program(), 'file', file), group };
}

describe('file objects on a fake kernel', () => {
  for (const newer of [false, true]) {
    const name = newer ? '6.12 layout' : '6.1 layout';
    it(`inotify: each watch's wd, user mask and inode, the newest first, and the next wd (${name})`, () => {
      const env = kernel(newer);
      const dir = env.inode(env.tmpfs, 0x1_0000_0042n);
      const file = env.inode(env.ninep, 99n);
      // IN_CREATE|IN_MODIFY plus FS_EVENT_ON_CHILD (kernel-only); the second with IN_ONESHOT kept in the mark's flags.
      const f = inotifyFile(env, newer, [{ at: dir, mask: 0x08000102 }, { at: file, mask: 0x2, flags: 0x20 }]);
      const r = inotifyWatches(f.file());
      assert.deepEqual(r.watches.map((w) => [w.wd, w.mask >>> 0, w.ignoredMask, w.ino, w.sDev]), [[2, 0x80000002, 0, 99n, 0x2a], [1, 0x102, 0, 0x1_0000_0042n, 0x16]]);
      assert.equal(r.nextWd, 3);
    });

    it(`fanotify: init flags, and each mark (inode, mount, file system) with mflags, mask and ignore mask, the newest first (${name})`, () => {
      const env = kernel(newer);
      const { k, off } = env;
      const file = env.inode(env.tmpfs, 42n);
      const mount = k.new('mount', { mnt_id: 35 });
      // FANOTIFY_UNPRIV (internal, not shown) with FAN_CLOEXEC|FAN_NONBLOCK; event flags O_LARGEFILE.
      const group = k.new('fsnotify_group', { 'fanotify_data.flags': 0x80000003, 'fanotify_data.f_flags': 0x8000 });
      const connector = (type: number, obj: bigint, marksAt: bigint) => {
        const conn = k.new('fsnotify_mark_connector', { type, obj: newer ? obj : marksAt });
        k.u64(marksAt, conn);
        return conn;
      };
      const inodeConn = connector(0, file, file + off('inode', 'i_fsnotify_marks'));
      const mountConn = connector(1, mount + off('mount', 'mnt'), mount + off('mount', 'mnt_fsnotify_marks'));
      const sbConn = connector(2, env.ninep, env.ninep + off('super_block', 's_fsnotify_marks'));
      const mark = (conn: bigint, mask: number, ignore: number, flags: number) =>
        k.new('fsnotify_mark', { mask, ignore_mask: ignore, flags, group, connector: conn });
      // Oldest first: an inode mark (FAN_MODIFY), a mount mark (FAN_CLOSE_WRITE), an ignore-only inode mark that survives modify
      // and is evictable, a file system mark; and one being destroyed (no connector), which fdinfo skips.
      const marks = [mark(inodeConn, 0x2, 0, 0x3), mark(mountConn, 0x8, 0, 0x3), mark(inodeConn, 0, 0x8, 0x3 | 0x100 | 0x200), mark(sbConn, 0x20, 0, 0x3 | 0x400),
        mark(0n, 0x2, 0, 0)];
      link(k, group + off('fsnotify_group', 'marks_list'), marks.reverse().map((m) => m + off('fsnotify_mark', 'g_list')));
      const r = fanotifyGroup(KObject.struct(k.program(), 'file', k.new('file', { private_data: group })));
      assert.deepEqual([r.flags, r.eventFlags], [3, 0x8000]);
      assert.deepEqual(r.marks.map((m) => [m.kind, m.mflags, m.mask, m.ignoredMask,
        m.kind === 'inode' ? m.ino : m.kind === 'mount' ? m.mntId : m.sDev]), [
        ['sb', 0x400, 0x20, 0, 0x2a], ['inode', 0x240, 0, 0x8, 42n], ['mount', 0, 0x8, 0, 35], ['inode', 0, 0x2, 0, 42n],
      ]);
    });

    it(`file locks: leases, one being broken with the type it is broken to (${name})`, () => {
      const env = kernel(newer);
      const { k, off } = env;
      const ctx = k.new('file_lock_context');
      const inode = env.inode(env.tmpfs, 6n);
      k.write(inode, 'inode', { i_flctx: ctx });
      const [rd, wr, unlocking, downgrading] = [0, 1, 2, 3].map(() => k.new('file', { f_inode: inode }));
      const lease = (flags: number, type: number, f: bigint) => newer
        ? k.new('file_lease', { 'c.flc_flags': flags, 'c.flc_type': type, 'c.flc_owner': f, 'c.flc_file': f })
        : k.new('file_lock', { fl_flags: flags, fl_type: type, fl_owner: f, fl_file: f });
      const linkOff = newer ? off('file_lease', 'c.flc_list') : off('file_lock', 'fl_list');
      link(k, ctx + off('file_lock_context', 'flc_flock'), []);
      link(k, ctx + off('file_lock_context', 'flc_posix'), []);
      // FL_LEASE 32; FL_UNLOCK_PENDING 512, FL_DOWNGRADE_PENDING 256 (fs/locks.c lease_breaking, target_leasetype).
      link(k, ctx + off('file_lock_context', 'flc_lease'), [lease(32, 0, rd), lease(32, 1, wr), lease(32 | 512, 0, unlocking), lease(32 | 256, 1, downgrading)]
        .map((l) => l + linkOff));
      const read = (f: bigint) => fileLocks(KObject.struct(k.program(), 'file', f), 0n).map((l) => [l.kind, l.type, l.breaking, l.start, l.len]);
      assert.deepEqual([rd, wr, unlocking, downgrading].map(read), [
        [['lease', 0, false, 0n, 0n]], [['lease', 1, false, 0n, 0n]], [['lease', 2, true, 0n, 0n]], [['lease', 0, true, 0n, 0n]],
      ]);
    });

    it(`file handles: tmpfs' own encoding, and a file system without export operations (${name})`, () => {
      const env = kernel(newer);
      const prog = () => env.k.program();
      const tmpfs = fileHandle(KObject.struct(prog(), 'inode', env.inode(env.tmpfs, 0x1_0000_0042n)))!;
      assert.deepEqual([tmpfs.type, tmpfs.bytes.toString('hex')], [1, '070000004200000001000000']);
      const nine = fileHandle(KObject.struct(prog(), 'inode', env.inode(env.ninep, 99n)))!;
      // 6.1 falls back to the generic 32-bit inode handle; kernels with FILEID_INO64_GEN encode a 64-bit inode FID.
      assert.deepEqual([nine.type, nine.bytes.toString('hex')], newer ? [0x81, '630000000000000007000000'] : [1, '6300000007000000']);
      const words = handleWords(tmpfs.bytes);
      assert.equal(words.length, 16);
      assert.deepEqual(words.slice(0, 2), [0x4200000007n, 1n]);
    });

    it(`file locks: a file's flock, POSIX and OFD locks as its fdinfo shows them to one files table (${name})`, () => {
      const env = kernel(newer);
      const { k, off } = env;
      const ctx = k.new('file_lock_context');
      const inode = env.inode(env.tmpfs, 5n);
      k.write(inode, 'inode', { i_flctx: ctx });
      const file = k.new('file', { f_inode: inode });
      const other = k.new('file', { f_inode: inode });
      const table = 0xffff888000123000n;
      const lock = (flags: number, type: number, owner: bigint, f: bigint, start = 0n, end = 0x7fffffffffffffffn) => newer
        ? k.new('file_lock', { 'c.flc_flags': flags, 'c.flc_type': type, 'c.flc_owner': owner, 'c.flc_file': f, fl_start: start, fl_end: end })
        : k.new('file_lock', { fl_flags: flags, fl_type: type, fl_owner: owner, fl_file: f, fl_start: start, fl_end: end });
      const linkOff = newer ? off('file_lock', 'c.flc_list') : off('file_lock', 'fl_list');
      link(k, ctx + off('file_lock_context', 'flc_flock'), [lock(2, 1, file, file)].map((l) => l + linkOff));
      link(k, ctx + off('file_lock_context', 'flc_posix'), [
        lock(1, 0, table, file, 10n, 19n), lock(1, 1, 0xffff888000999000n, file, 30n, 39n), lock(1 | 1024, 1, other, other, 100n),
      ].map((l) => l + linkOff));
      link(k, ctx + off('file_lock_context', 'flc_lease'), []);
      const locks = fileLocks(KObject.struct(k.program(), 'file', file), table);
      assert.deepEqual(locks.map((l) => [l.kind, l.type, l.start, l.len]), [['flock', 1, 0n, 0n], ['posix', 0, 10n, 10n]]);
      const ofd = fileLocks(KObject.struct(k.program(), 'file', other), table);
      assert.deepEqual(ofd.map((l) => [l.kind, l.type, l.start, l.len]), [['ofd', 1, 100n, 0n]]);
    });
  }

  it('refuses a mark list that loops and a mark of another group, with typed errors', () => {
    const env = kernel(false);
    const dir = env.inode(env.tmpfs, 1n);
    const f = inotifyFile(env, false, [{ at: dir, mask: 2 }]);
    const mark = env.k.new('inotify_inode_mark', { 'fsn_mark.group': 0xffff888000777000n, wd: 1 });
    link(env.k, f.group + env.off('fsnotify_group', 'marks_list'), [mark + env.off('fsnotify_mark', 'g_list')]);
    assertOvmError(() => inotifyWatches(f.file()), BadDataError);
    const loop = env.k.new('inotify_inode_mark');
    const node = loop + env.off('fsnotify_mark', 'g_list');
    env.k.write(f.group + env.off('fsnotify_group', 'marks_list'), 'list_head', { next: node });
    env.k.write(node, 'list_head', { next: node });
    assertOvmError(() => inotifyWatches(f.file()), BadDataError);
  });
});
