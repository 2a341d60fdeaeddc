import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { dPath, dentryName, dentryPath, resolvePath } from '../../introspect/linux/d-path.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, OUTSIDE_RAM } from './helpers/fake-program.js';
import { FakeVfs } from './helpers/fake-vfs.js';

function setup() {
  const k = new FakeKernel();
  const pipefsDname = k.symbol('pipefs_dname');
  const vfs = new FakeVfs(k);
  return { k, vfs, pipefsDname };
}

const filePath = (k: FakeKernel, file: bigint) => KObject.struct(k.program(), 'file', file).member('f_path');
const dentry = (k: FakeKernel, d: bigint) => KObject.struct(k.program(), 'dentry', d);

describe('d_path on a fake kernel', () => {
  it('prints a path up the dentries to the reader\'s root', () => {
    const { k, vfs } = setup();
    const libc = vfs.dentry('libc.so.6', vfs.path('usr/lib'), { d_inode: vfs.inode(0o100644, 7n) });
    assert.equal(dPath(filePath(k, vfs.file(libc)), vfs.root), '/usr/lib/libc.so.6');
    assert.equal(dPath(filePath(k, vfs.file(vfs.rootDentry)), vfs.root), '/');
    assert.equal(dentryPath(dentry(k, libc)), '/usr/lib/libc.so.6');
    assert.equal(dentryName(dentry(k, libc)), 'libc.so.6');
  });

  it('crosses from a mount to the one it is mounted on', () => {
    const { k, vfs } = setup();
    const tmpSb = vfs.superBlock('tmpfs', 0x2a);
    const tmpRoot = vfs.dentry('/', undefined, { d_inode: vfs.inode(0o041777, 1n) });
    const tmp = vfs.mount(tmpRoot, tmpSb, { mnt_id: 30 }, { mount: vfs.rootMount, at: vfs.path('run/data') });
    const file = vfs.dentry('y', vfs.path('x', tmpRoot), { d_inode: vfs.inode(0o100600, 9n) });
    assert.equal(dPath(filePath(k, vfs.file(file, tmp)), vfs.root), '/run/data/x/y');
    // Within its own file system the mount is not crossed.
    assert.equal(dentryPath(dentry(k, file)), '/x/y');
  });

  it('marks unlinked files and names pipes by their d_dname', () => {
    const { k, vfs, pipefsDname } = setup();
    const gone = vfs.dentry('gone', vfs.path('tmp'), { 'd_hash.pprev': 0, d_inode: vfs.inode(0o100644, 11n) });
    assert.equal(dPath(filePath(k, vfs.file(gone)), vfs.root), '/tmp/gone (deleted)');
    const ops = k.new('dentry_operations', { d_dname: pipefsDname });
    const pipe = vfs.dentry('', vfs.rootDentry, { d_op: ops, d_inode: vfs.inode(0o010600, 4321n) });
    assert.equal(dPath(filePath(k, vfs.file(pipe)), vfs.root), 'pipe:[4321]');
  });

  it('tells a path outside the reader\'s root as unreachable', () => {
    const { k, vfs } = setup();
    const jail = vfs.path('srv/jail');
    const etc = vfs.path('etc');
    const r = resolvePath(dentry(k, etc), vfs.vfsmount(vfs.rootMount), { dentry: jail, mnt: vfs.vfsmount(vfs.rootMount) });
    assert.equal(r.reachable, false);
    const inside = vfs.path('bin', jail);
    assert.deepEqual(resolvePath(dentry(k, inside), vfs.vfsmount(vfs.rootMount), { dentry: jail, mnt: vfs.vfsmount(vfs.rootMount) }), { path: '/bin', reachable: true });
  });

  describe('hostile values end in typed errors', () => {
    it('dentries whose parents loop', () => {
      const { k, vfs } = setup();
      const a = vfs.dentry('a', vfs.rootDentry);
      const b = vfs.dentry('b', a);
      k.write(a, 'dentry', { d_parent: b });
      assertOvmError(() => dPath(filePath(k, vfs.file(b)), vfs.root), BadDataError);
      assertOvmError(() => dentryPath(dentry(k, b)), BadDataError);
    });

    it('mounts whose parents loop', () => {
      const { k, vfs } = setup();
      const sb = vfs.superBlock('tmpfs', 0x2b);
      const rootA = vfs.dentry('/');
      const rootB = vfs.dentry('/');
      const a = vfs.mount(rootA, sb);
      const b = vfs.mount(rootB, sb, {}, { mount: a, at: rootA });
      k.write(a, 'mount', { mnt_parent: b, mnt_mountpoint: rootB });
      const file = vfs.dentry('f', rootA);
      assertOvmError(() => dPath(filePath(k, vfs.file(file, a)), vfs.root), BadDataError);
    });

    it('a name longer than NAME_MAX', () => {
      for (const len of [256, 0xffff_ffff]) {
        const { k, vfs } = setup();
        const d = vfs.dentry('x', vfs.rootDentry, { 'd_name.len': len });
        assertOvmError(() => dentryName(dentry(k, d)), BadDataError);
        assertOvmError(() => dPath(filePath(k, vfs.file(d)), vfs.root), BadDataError);
      }
    });

    it('a name pointer that is NULL or outside RAM', () => {
      for (const name of [0n, OUTSIDE_RAM]) {
        const { k, vfs } = setup();
        const d = vfs.dentry('abc', vfs.rootDentry, { 'd_name.name': name });
        assertOvmError(() => dPath(filePath(k, vfs.file(d)), vfs.root), PageFaultError);
      }
    });

    it('a NULL or outside-RAM parent', () => {
      const { k, vfs } = setup();
      const d = vfs.dentry('orphan', vfs.rootDentry, { d_parent: 0 });
      assertOvmError(() => dPath(filePath(k, vfs.file(d)), vfs.root), BadDataError);
      k.write(d, 'dentry', { d_parent: OUTSIDE_RAM });
      assertOvmError(() => dPath(filePath(k, vfs.file(d)), vfs.root), PageFaultError);
      assertOvmError(() => dentryPath(dentry(k, d)), PageFaultError);
    });

    it('a file whose vfsmount or dentry is NULL', () => {
      const { k, vfs } = setup();
      const d = vfs.path('etc');
      assertOvmError(() => dPath(filePath(k, vfs.file(d, vfs.rootMount, { 'f_path.mnt': 0 })), vfs.root));
      assertOvmError(() => dPath(filePath(k, vfs.file(d, vfs.rootMount, { 'f_path.dentry': 0 })), vfs.root), BadDataError);
    });

    it('a d_dname that is no known function', () => {
      const { k, vfs } = setup();
      const ops = k.new('dentry_operations', { d_dname: 0xffffffff81234567n });
      const d = vfs.dentry('odd', vfs.rootDentry, { d_op: ops });
      assertOvmError(() => dPath(filePath(k, vfs.file(d)), vfs.root), BadDataError);
    });
  });
});
