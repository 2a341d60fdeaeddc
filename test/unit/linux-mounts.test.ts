import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { mounts } from '../../introspect/linux/mounts.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, FakeKernelOptions, OUTSIDE_RAM } from './helpers/fake-program.js';
import { FakeVfs } from './helpers/fake-vfs.js';

const MNT_SHARED = 0x1000;

/** A mount namespace: the root mount, a shared tmpfs on /run/data and a slave of it on /srv/jail/tmp. */
function namespace(opts: FakeKernelOptions = {}) {
  const k = new FakeKernel(opts);
  const vfs = new FakeVfs(k);
  const tmpSb = vfs.superBlock('tmpfs', 0x2a);
  const tmpRoot = vfs.dentry('/', undefined, { d_inode: vfs.inode(0o041777, 1n) });
  const shared = vfs.mount(tmpRoot, tmpSb, { mnt_id: 30, mnt_group_id: 5, 'mnt.mnt_flags': MNT_SHARED | 0x2, mnt_devname: k.cstr('tmpfs') },
    { mount: vfs.rootMount, at: vfs.path('run/data') });
  const jail = vfs.path('srv/jail');
  const slave = vfs.mount(vfs.path('sub', tmpRoot), tmpSb, { mnt_id: 31, mnt_group_id: 6, mnt_master: shared, mnt_devname: k.cstr('tmpfs') },
    { mount: vfs.rootMount, at: vfs.path('tmp', jail) });
  const ns = k.new('mnt_namespace');
  const all = [vfs.rootMount, shared, slave];
  if (k.types.layout('mnt_namespace').fields.some((f) => f.name === 'list')) {
    k.link(k.addr('mnt_namespace', ns, 'list'), all.map((m) => k.addr('mount', m, 'mnt_list')));
  }
  const task = k.new('task_struct', { nsproxy: k.new('nsproxy', { mnt_ns: ns }) });
  return { k, vfs, task, jail, all };
}

/** The same namespace as a 6.8+ kernel keeps it: an rbtree rooted at the shared tmpfs, the root mount left, the slave right. */
function rbNamespace() {
  const structs = {
    mnt_namespace: [['ns', 'u64'], ['mounts', 'rb_root']],
    mount: [
      ['mnt_parent', '*mount'], ['mnt_mountpoint', '*dentry'], ['mnt', 'vfsmount'], ['mnt_node', 'rb_node'], ['mnt_id', 's32'],
      ['mnt_group_id', 's32'], ['mnt_master', '*mount'], ['mnt_devname', '*char'],
    ],
  } satisfies FakeKernelOptions['structs'];
  const n = namespace({ structs });
  const { k, task, all } = n;
  const node = (m: bigint) => k.addr('mount', m, 'mnt_node');
  const ns = k.ptr('task_struct', task, 'nsproxy');
  const mntNs = k.ptr('nsproxy', ns, 'mnt_ns');
  k.write(mntNs, 'mnt_namespace', { 'mounts.rb_node': node(all[1]) });
  k.write(node(all[1]), 'rb_node', { rb_left: node(all[0]), rb_right: node(all[2]) });
  return n;
}

const read = (k: FakeKernel, task: bigint, root: { dentry: bigint; mnt: bigint }) => mounts(KObject.struct(k.program(), 'task_struct', task), root);

describe('mounts on a fake kernel', () => {
  it('lists a namespace\'s mounts as mountinfo does', () => {
    const { k, vfs, task } = namespace();
    const seen = read(k, task, vfs.root).map(({ mount: _m, sb: _s, ...rest }) => rest);
    assert.deepEqual(seen, [
      { id: 21, parentId: 21, dev: '8:1', root: '/', mountPoint: '/', fsType: 'ext4', source: '/dev/vda', flags: 0, shared: 0, master: 0, sDev: 8 << 20 | 1 },
      { id: 30, parentId: 21, dev: '0:42', root: '/', mountPoint: '/run/data', fsType: 'tmpfs', source: 'tmpfs', flags: MNT_SHARED | 0x2, shared: 5, master: 0, sDev: 0x2a },
      { id: 31, parentId: 21, dev: '0:42', root: '/sub', mountPoint: '/srv/jail/tmp', fsType: 'tmpfs', source: 'tmpfs', flags: 0, shared: 0, master: 5, sDev: 0x2a },
    ]);
  });

  it('lists them in mnt_id order from the rbtree of 6.8 and later (mnt_namespace.mounts through mount.mnt_node)', () => {
    const { k, vfs, task } = rbNamespace();
    assert.deepEqual(read(k, task, vfs.root).map((m) => [m.id, m.mountPoint]), [[21, '/'], [30, '/run/data'], [31, '/srv/jail/tmp']]);
  });

  it('hides mounts outside a chrooted reader\'s root', () => {
    const { k, vfs, task, jail } = namespace();
    const seen = read(k, task, { dentry: jail, mnt: vfs.vfsmount(vfs.rootMount) });
    assert.deepEqual(seen.map((m) => [m.id, m.mountPoint]), [[31, '/tmp']]);
  });

  describe('hostile values end in typed errors', () => {
    it('a mount list that loops back to a mount', () => {
      const { k, vfs, task, all } = namespace();
      k.write(k.addr('mount', all[2], 'mnt_list'), 'list_head', { next: k.addr('mount', all[1], 'mnt_list') });
      assertOvmError(() => read(k, task, vfs.root), BadDataError);
    });

    it('a mount rbtree that loops back to a mount, or has neither list nor tree', () => {
      const { k, vfs, task, all } = rbNamespace();
      k.write(k.addr('mount', all[2], 'mnt_node'), 'rb_node', { rb_left: k.addr('mount', all[1], 'mnt_node') });
      assertOvmError(() => read(k, task, vfs.root), BadDataError);
      const neither = namespace({ structs: { mnt_namespace: [['ns', 'u64'], ['nr_mounts', 'u32']] } });
      assertOvmError(() => read(neither.k, neither.task, neither.vfs.root), BadDataError);
    });

    it('names that are NULL or outside RAM', () => {
      const a = namespace();
      const fsType = a.k.ptr('super_block', a.vfs.sb, 's_type');
      a.k.write(fsType, 'file_system_type', { name: 0 });
      assertOvmError(() => read(a.k, a.task, a.vfs.root), PageFaultError);
      const b = namespace();
      b.k.write(b.all[1], 'mount', { mnt_devname: OUTSIDE_RAM });
      assertOvmError(() => read(b.k, b.task, b.vfs.root), PageFaultError);
    });

    it('a NULL mount root, superblock or namespace', () => {
      for (const [struct, member] of [['mount', 'mnt.mnt_root'], ['mount', 'mnt.mnt_sb'], ['mount', 'mnt_parent'], ['nsproxy', 'mnt_ns']]) {
        const { k, vfs, task, all } = namespace();
        const target = struct === 'mount' ? all[1] : k.ptr('task_struct', task, 'nsproxy');
        k.write(target, struct, { [member]: 0 });
        assertOvmError(() => read(k, task, vfs.root), BadDataError);
      }
    });
  });
});
