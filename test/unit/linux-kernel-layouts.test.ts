import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { KObject } from '../../introspect/kernel/object.js';
import { rbInOrder } from '../../introspect/kernel/rbtree.js';
import { fileOwner } from '../../introspect/linux/file-owner.js';
import { openFileState, userInode } from '../../introspect/linux/open-file.js';
import { inodeMtimeSec } from '../../introspect/linux/stat.js';
import { guestClocks } from '../../introspect/linux/clocks.js';
import { posixTimers } from '../../introspect/linux/posix-timers.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel } from './helpers/fake-program.js';
import { KERNEL_STRUCTS } from './helpers/kernel-structs.js';
import { taskStateKernel } from './helpers/task-state-structs.js';
import { Fields, StructDecls } from './helpers/kernel-types.js';

type Decls = StructDecls;

/** A struct's fields as the shared fake kernel declares them. */
const fields = (name: string): Fields => {
  const d = KERNEL_STRUCTS[name];
  return Array.isArray(d) ? d : d.fields;
};

const FOWN: Decls = { fown_struct: [['pid', 'ptr'], ['pid_type', 'u32'], ['uid', 'kuid_t'], ['euid', 'kuid_t'], ['signum', 's32']] };
const fileWith = (extra: [string, string][]): Decls => ({ file: [...fields('file'), ...extra] });

/** The readers whose structs differ between 6.1 and 6.12: each layout as that kernel's BTF has it. */
describe('readers follow the layout in the BTF (6.1 and 6.12)', () => {
  it('f_owner: embedded (6.1), or a pointer that is NULL until F_SETOWN (6.12)', () => {
    const embedded = new FakeKernel({ structs: { ...FOWN, ...fileWith([['f_owner', 'fown_struct']]) } });
    const f1 = embedded.new('file', { 'f_owner.signum': 10, 'f_owner.uid.val': 7, 'f_owner.pid_type': 1 });
    assert.deepEqual(fileOwner(KObject.struct(embedded.program(), 'file', f1)), { uid: 7, euid: 0, signum: 10, pidType: 1, pid: 0n });

    const pointer = new FakeKernel({ structs: { ...FOWN, ...fileWith([['f_owner', '*fown_struct']]) } });
    const none = pointer.new('file');
    assert.deepEqual(fileOwner(KObject.struct(pointer.program(), 'file', none)), { uid: 0, euid: 0, signum: 0, pidType: 0, pid: 0n });
    const owner = pointer.new('fown_struct', { signum: 29, 'euid.val': 5 });
    const owned = pointer.new('file', { f_owner: owner });
    assert.deepEqual(fileOwner(KObject.struct(pointer.program(), 'file', owned)), { uid: 0, euid: 5, signum: 29, pidType: 0, pid: 0n });
  });

  it('posix_timers: a list_head (6.1) or an hlist_head (6.12)', () => {
    for (const head of ['list_head', 'hlist_head'] as const) {
      const k = taskStateKernel(1_000_000_000n, head);
      const signal = k.new('signal_struct');
      const timers = k.addr('signal_struct', signal, 'posix_timers');
      if (head === 'list_head') k.write(timers, 'list_head', { next: timers, prev: timers });
      const task = KObject.struct(k.program(), 'task_struct', k.new('task_struct', { signal }));
      const clocks = guestClocks(k.program());
      assert.equal(posixTimers(task, clocks).length, 0, `empty ${head}`);
      const timer = k.new('k_itimer', { it_id: 3, it_clock: 1, sigq: k.new('sigqueue') });
      const link = k.addr('k_itimer', timer, 'list');
      if (head === 'list_head') k.link(timers, [link]);
      else k.write(timers, head, { first: link });
      assert.deepEqual(posixTimers(task, clocks).map((t) => t.id), [3], `${head} with a timer`);
    }
  });

  it('inode mtime: i_mtime (6.1), __i_mtime (6.7), i_mtime_sec (6.11)', () => {
    const base = fields('inode').filter(([n]) => n !== 'i_mtime');
    for (const [member, values] of [
      [['i_mtime', 'timespec64'], { 'i_mtime.tv_sec': 1700000000 }],
      [['__i_mtime', 'timespec64'], { '__i_mtime.tv_sec': 1700000000 }],
      [['i_mtime_sec', 's64'], { i_mtime_sec: 1700000000 }],
    ] as const) {
      const k = new FakeKernel({ structs: { inode: [...base, [member[0], member[1]]] } });
      assert.equal(inodeMtimeSec(KObject.struct(k.program(), 'inode', k.new('inode', values))), 1700000000n, member[0]);
    }
  });

  it('an overlayfs mapping (6.6+): a backing_file shows its user path and inode, reads its real inode', () => {
    const FMODE_BACKING = 0x2000000;
    const k = new FakeKernel({ structs: { backing_file: [['file', 'file'], ['user_path', 'path']] } });
    const realInode = k.new('inode', { i_ino: 11 });
    const userInodeAddr = k.new('inode', { i_ino: 22 });
    const userDentry = k.new('dentry', { d_inode: userInodeAddr });
    const bf = k.new('backing_file', { 'file.f_inode': realInode, 'file.f_mode': FMODE_BACKING, 'user_path.dentry': userDentry });
    const file = KObject.struct(k.program(), 'file', bf);
    assert.equal(openFileState(file).path.member('dentry').value(), userDentry);
    assert.equal(openFileState(file).inode.address, realInode, 'the data comes from the real inode');
    assert.equal(userInode(file).address, userInodeAddr);
    // Without FMODE_BACKING the file is an ordinary one, even where backing_file exists.
    const plain = KObject.struct(k.program(), 'file', k.new('file', { f_inode: realInode }));
    assert.equal(userInode(plain).address, realInode);
  });

  it('rbInOrder: key order, and loops are typed errors', () => {
    const k = new FakeKernel({ structs: { item: [['id', 'u32'], ['node', 'rb_node']] } });
    const items = [1, 2, 3, 4, 5].map((id) => k.new('item', { id }));
    const node = (i: number) => k.addr('item', items[i], 'node');
    // 4 at the root; 2 (with 1 and 3) left; 5 right.
    k.write(node(3), 'rb_node', { rb_left: node(1), rb_right: node(4) });
    k.write(node(1), 'rb_node', { rb_left: node(0), rb_right: node(2) });
    const root = k.new('rb_root', { rb_node: node(3) });
    const ids = () => [...rbInOrder(k.program(), root, 'item', 'node')].map((o) => o.member('id').num());
    assert.deepEqual(ids(), [1, 2, 3, 4, 5]);
    k.write(node(4), 'rb_node', { rb_right: node(3) });
    assertOvmError(() => ids(), BadDataError);
  });
});
