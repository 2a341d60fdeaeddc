import assert from 'node:assert/strict';
import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel } from './helpers/fake-program.js';
import { FakeTmpfs, fileContents } from './helpers/fake-tmpfs.js';

describe('tmpfs contents on a fake kernel', () => {
  it('archives files, links, directories and devices; leaves sockets out, as tar does', () => {
    const t = new FakeTmpfs(new FakeKernel());
    const fileInode = t.file('hello');
    const sub = t.dentry('sub', t.inode(0o040700));
    t.children(sub, [t.dentry('null', t.inode(0o020666, { i_rdev: 1 << 20 | 3 }))]);
    t.children(t.root, [
      t.dentry('a.txt', fileInode),
      t.dentry('link', t.inode(0o120777, { i_size: 5, i_link: t.k.cstr('a.txt') })),
      sub,
      t.dentry('gone', t.inode(0o100644), { 'd_hash.pprev': 0 }),
      t.dentry('negative', 0n),
      t.dentry('b.txt', fileInode),
      t.dentry('.s.PGSQL.5432', t.inode(0o140777)),
    ]);
    const entries = t.entries().map(({ uid, gid, mtime, file, ...e }) => {
      assert.deepEqual([uid, gid, mtime], [1000, 1000, 1_700_000_000]);
      return { ...e, data: file && fileContents(file).toString() };
    });
    assert.deepEqual(entries, [
      { path: '.', mode: 0o041777, data: undefined },
      { path: './a.txt', mode: 0o100644, data: 'hello' },
      { path: './link', mode: 0o120777, target: 'a.txt', data: undefined },
      { path: './sub', mode: 0o040700, data: undefined },
      { path: './sub/null', mode: 0o020666, major: 1, minor: 3, data: undefined },
      { path: './b.txt', mode: 0o100644, linkTo: './a.txt', data: undefined },
    ]);
  });

  describe('hostile values end in typed errors', () => {
    it('a child list that loops', () => {
      const t = new FakeTmpfs(new FakeKernel());
      const [a, b] = [t.dentry('a', t.file('x')), t.dentry('b', t.file('y'))];
      t.children(t.root, [a, b]);
      t.k.write(t.k.addr('dentry', b, 'd_child'), 'list_head', { next: t.k.addr('dentry', a, 'd_child') });
      assertOvmError(() => t.entries(), BadDataError);
    });

    it('directories nested deeper than any real tree', () => {
      const t = new FakeTmpfs(new FakeKernel());
      let parent = t.root;
      for (let i = 0; i < 300; i++) {
        const d = t.dentry('d', t.inode(0o040755));
        t.children(parent, [d]);
        parent = d;
      }
      t.children(parent, []);
      assertOvmError(() => t.entries(), BadDataError);
    });

    it('file sizes that are huge or negative', () => {
      for (const size of [1n << 40n, -1n, (1n << 63n) - 1n]) {
        const t = new FakeTmpfs(new FakeKernel());
        t.children(t.root, [t.dentry('big', t.inode(0o100644, { i_size: size }))]);
        assertOvmError(() => t.entries(), UnsupportedError);
      }
    });

    it('symlink targets that are empty or longer than a page', () => {
      for (const size of [0, 5000, -1]) {
        const t = new FakeTmpfs(new FakeKernel());
        t.children(t.root, [t.dentry('l', t.inode(0o120777, { i_size: size, i_link: t.k.cstr('x') }))]);
        assertOvmError(() => t.entries(), BadDataError);
      }
    });

    it('an inode of no file type, and a file page swapped out', () => {
      const t = new FakeTmpfs(new FakeKernel());
      t.children(t.root, [t.dentry('odd', t.inode(0o170755))]);
      assertOvmError(() => t.entries(), UnsupportedError);
      const u = new FakeTmpfs(new FakeKernel());
      u.children(u.root, [u.dentry('f', u.inode(0o100644, { i_size: 10, i_mapping: u.k.new('address_space', { 'i_pages.xa_head': 0x1234n << 1n | 1n }) }))]);
      assertOvmError(() => u.entries(), UnsupportedError);
    });

    it('a superblock without a root', () => {
      const t = new FakeTmpfs(new FakeKernel());
      t.k.write(t.sb, 'super_block', { s_root: 0 });
      assertOvmError(() => t.entries(), BadDataError);
    });
  });
});
