import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { linkedName } from '../../introspect/dump/linked-files.js';
import { KObject } from '../../introspect/kernel/object.js';
import { otherName } from '../../introspect/linux/inode-path.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FILE_OBJECT_STRUCTS } from './helpers/file-object-structs.js';
import { FakeKernel } from './helpers/fake-program.js';
import { FakeVfs } from './helpers/fake-vfs.js';

/**
 * /srv/data/orig opened and unlinked, its inode still linked as `others`
 * (name -> directory under /srv), the aliases newest first as d_instantiate
 * adds them; `unhashed` of them unlinked too.
 */
function linked(others: [string, string][], unhashed: string[] = []) {
  const k = new FakeKernel({ structs: FILE_OBJECT_STRUCTS });
  const vfs = new FakeVfs(k);
  const inode = vfs.inode(0o100640, 88n);
  const orig = vfs.dentry('orig', vfs.path('srv/data'), { d_inode: inode, 'd_hash.pprev': 0 });
  const aliases = [orig, ...others.map(([name, dir]) => vfs.dentry(name, vfs.path(dir), { d_inode: inode, ...(unhashed.includes(name) ? { 'd_hash.pprev': 0 } : {}) }))];
  const nodes = aliases.reverse().map((d) => k.addr('dentry', d, 'd_u.d_alias'));
  nodes.forEach((n, i) => k.u64(n, nodes[i + 1] ?? 0n));
  k.write(inode, 'inode', { 'i_dentry.first': nodes[0] });
  const file = vfs.file(orig);
  const path = KObject.struct(k.program(), 'file', file).member('f_path');
  return { k, vfs, path, nodes };
}

describe('deleted open files that still have another name', () => {
  it('are opened by a hashed alias of the same inode under the file\'s mount', () => {
    const { vfs, path } = linked([['other', 'srv/data'], ['newest', 'srv/keep']], ['newest']);
    assert.equal(otherName(path, vfs.root), '/srv/data/other', 'the unhashed newest alias is passed over');
    assert.deepEqual(linkedName(path, vfs.root, '/srv/data/orig', 'pid 1 (t)', 'fd 3'), { name: '/srv/data/other' });
  });

  it('are refused, naming the file and the task, when no other name is in the dcache', () => {
    const { vfs, path } = linked([['other', 'srv/data']], ['other']);
    assert.equal(otherName(path, vfs.root), undefined);
    const r = linkedName(path, vfs.root, '/srv/data/orig', 'pid 1 (t)', 'fd 3');
    assert.match(r.problem!.text, /^pid 1 \(t\) fd 3: \/srv\/data\/orig \(deleted\) still has another name, but none under its mount is in the guest's dentry cache/);
  });

  it('end in typed errors on hostile aliases: another inode\'s dentry, a loop', () => {
    const { k, vfs, path, nodes } = linked([['other', 'srv/data']]);
    const foreign = vfs.dentry('foreign', vfs.path('srv'), { d_inode: vfs.inode(0o100600, 99n) });
    k.u64(k.addr('dentry', foreign, 'd_u.d_alias'), nodes[0]);
    k.write(path.member('dentry').deref().member('d_inode').value(), 'inode', { 'i_dentry.first': k.addr('dentry', foreign, 'd_u.d_alias') });
    assertOvmError(() => otherName(path, vfs.root), BadDataError);
    const loop = linked([['other', 'srv/data'], ['second', 'srv/data']], ['other', 'second']);
    loop.k.u64(loop.nodes[2], loop.nodes[0]);
    assertOvmError(() => otherName(loop.path, loop.vfs.root), BadDataError);
  });
});
