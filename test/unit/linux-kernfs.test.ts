import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { kernfsChildren, kernfsName, kernfsPerms, taskCgroupNode } from '../../introspect/linux/kernfs.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, OUTSIDE_RAM } from './helpers/fake-program.js';

/** A cgroup directory with children b (the rbtree root), a (left) and c (right). */
function directory() {
  const k = new FakeKernel();
  const dir = k.new('kernfs_node', { name: k.cstr('app'), mode: 0o040755 });
  const child = (name: string) => k.new('kernfs_node', { parent: dir, name: k.cstr(name), mode: 0o100644 });
  const [a, b, c] = ['cgroup.procs', 'memory.max', 'pids.max'].map(child);
  const rb = (n: bigint) => k.addr('kernfs_node', n, 'rb');
  k.write(b, 'kernfs_node', { 'rb.rb_left': rb(a), 'rb.rb_right': rb(c) });
  k.write(dir, 'kernfs_node', { 'dir.children.rb_node': rb(b) });
  return { k, dir, a, b, c, rb };
}

const node = (k: FakeKernel, n: bigint) => KObject.struct(k.program(), 'kernfs_node', n);
const names = (k: FakeKernel, dir: bigint) => [...kernfsChildren(node(k, dir))].map(kernfsName).sort();

describe('kernfs on a fake kernel', () => {
  it('lists a directory\'s children from its rbtree', () => {
    const { k, dir } = directory();
    assert.deepEqual(names(k, dir), ['cgroup.procs', 'memory.max', 'pids.max']);
    assert.deepEqual(names(k, k.new('kernfs_node')), []);
  });

  it('reads permissions from iattrs, or root\'s when there are none', () => {
    const { k, a, b } = directory();
    k.write(a, 'kernfs_node', { iattr: k.new('kernfs_iattrs', { 'ia_uid.val': 1000, 'ia_gid.val': 1001 }) });
    assert.deepEqual(kernfsPerms(node(k, a)), { mode: 0o100644, uid: 1000, gid: 1001 });
    assert.deepEqual(kernfsPerms(node(k, b)), { mode: 0o100644, uid: 0, gid: 0 });
  });

  it('finds a task\'s cgroup directory', () => {
    const { k, dir } = directory();
    const task = k.new('task_struct', { cgroups: k.new('css_set', { dfl_cgrp: k.new('cgroup', { kn: dir }) }) });
    assert.equal(taskCgroupNode(KObject.struct(k.program(), 'task_struct', task)).address, dir);
  });

  describe('hostile values end in typed errors', () => {
    it('an rbtree that loops', () => {
      const { k, dir, b, c, rb } = directory();
      k.write(c, 'kernfs_node', { 'rb.rb_left': rb(b) });
      assertOvmError(() => kernfsChildren(node(k, dir)), BadDataError);
    });

    it('a child outside RAM or a NULL name', () => {
      const { k, dir, b, c } = directory();
      k.write(c, 'kernfs_node', { name: 0 });
      assertOvmError(() => names(k, dir), PageFaultError);
      k.write(b, 'kernfs_node', { 'rb.rb_right': OUTSIDE_RAM });
      assertOvmError(() => kernfsChildren(node(k, dir)), PageFaultError);
    });

    it('a cgroup with a NULL kernfs node', () => {
      const { k } = directory();
      const task = k.new('task_struct', { cgroups: k.new('css_set', { dfl_cgrp: k.new('cgroup') }) });
      assertOvmError(() => taskCgroupNode(KObject.struct(k.program(), 'task_struct', task)), BadDataError);
    });
  });
});
