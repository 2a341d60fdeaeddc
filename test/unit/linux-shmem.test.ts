import assert from 'node:assert/strict';
import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { decodeImage, encodeImage, entryObject, makeEntry } from '../../introspect/criu/index.js';
import { ShmemTable } from '../../introspect/dump/shmem.js';
import { KObject } from '../../introspect/kernel/object.js';
import { shmemObject, shmemPages } from '../../introspect/linux/shmem.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel } from './helpers/fake-program.js';
import { cachedPage, xarray } from './helpers/fake-tmpfs.js';

/** F_SEAL_SHRINK | F_SEAL_GROW */
const SEALS = 0x2 | 0x4;

/** A shmem file as shm_mnt holds them: a dentry NAME, an inode inside a shmem_inode_info, its page cache `xaHead`. */
function shmemFile(k: FakeKernel, name: string, o: { ino: bigint; size: bigint; xaHead?: bigint; fop?: bigint }): bigint {
  const info = k.new('shmem_inode_info', { seals: SEALS });
  const inode = k.addr('shmem_inode_info', info, 'vfs_inode');
  k.write(inode, 'inode', {
    i_mode: 0o100777, i_ino: o.ino, i_size: o.size, 'i_uid.val': 1000, 'i_gid.val': 100,
    i_mapping: k.new('address_space', { 'i_pages.xa_head': o.xaHead ?? 0n }),
  });
  const dentry = k.new('dentry', { 'd_name.len': name.length, 'd_name.name': k.cstr(name), d_inode: inode });
  return k.new('file', { 'f_path.dentry': dentry, f_inode: inode, f_op: o.fop ?? 0n, f_mode: 3 });
}

const file = (k: FakeKernel, addr: bigint) => KObject.struct(k.program(), 'file', addr);

describe('shared memory objects on a fake kernel', () => {
  it('tells memfds, anonymous shared memory and SysV segments apart, with a memfd\'s name and seals', () => {
    const k = new FakeKernel();
    const sysvFops = k.symbol('shm_file_operations');
    const memfd = shmemFile(k, 'memfd:ovm-shmem', { ino: 7n, size: 12288n });
    const anon = shmemFile(k, 'dev/zero', { ino: 8n, size: 16384n });
    const sysv = shmemFile(k, 'SYSV00001234', { ino: 32769n, size: 8192n, fop: sysvFops });
    const m = shmemObject(file(k, memfd));
    assert.deepEqual({ ...m, inode: undefined }, { kind: 'memfd', inode: undefined, ino: 7n, size: 12288n, uid: 1000, gid: 100, name: 'memfd:ovm-shmem', seals: SEALS });
    assert.equal(shmemObject(file(k, anon)).kind, 'anon');
    assert.deepEqual([shmemObject(file(k, sysv)).kind, shmemObject(file(k, sysv)).ino], ['sysv', 32769n], 'SysV: the IPC id is the inode number');
  });

  it('reads the pages its page cache holds below the end, holes left out', () => {
    const k = new FakeKernel();
    const pages = new Map([[0n, cachedPage(k, 0n, 'zero')], [2n, cachedPage(k, 2n, 'two')], [70n, cachedPage(k, 70n, 'beyond')]]);
    const f = shmemFile(k, 'dev/zero', { ino: 9n, size: 3n * 4096n, xaHead: xarray(k, pages, 6) });
    const obj = shmemObject(file(k, f));
    const got = shmemPages(obj, 3n, { nodes: 100 }, 100, 'pid 1 (x)');
    assert.deepEqual(got.map((p) => p.index), [0n, 2n]);
    assert.equal(k.program().mem.read(got[1].phys, 3, 'page').toString(), 'two');
    assertOvmError(() => shmemPages(obj, 3n, { nodes: 100 }, 1, 'pid 1 (x)'), UnsupportedError);
  });

  describe('hostile values end in typed errors', () => {
    it('a page swapped out (a value entry) is refused by name', () => {
      const k = new FakeKernel();
      const f = shmemFile(k, 'dev/zero', { ino: 9n, size: 4096n, xaHead: (0x1234n << 1n) | 1n });
      assert.throws(() => shmemPages(shmemObject(file(k, f)), 1n, { nodes: 10 }, 10, 'pid 1 (x)'),
        (e: unknown) => e instanceof UnsupportedError && /swapped out/.test(e.message));
    });

    it('xa_nodes shared by every slot above them (a tree far larger than its pages)', () => {
      const k2 = new FakeKernel();
      let node = k2.new('xa_node', { shift: 0 }) | 2n;
      for (let shift = 6; shift <= 24; shift += 6) {
        const values: Record<string, bigint | number> = { shift };
        for (let i = 0; i < 64; i++) values[`slots[${i}]`] = node;
        node = k2.new('xa_node', values) | 2n;
      }
      const f = shmemFile(k2, 'dev/zero', { ino: 9n, size: 1n << 40n, xaHead: node });
      assertOvmError(() => shmemPages(shmemObject(file(k2, f)), 1n << 28n, { nodes: 1 << 20 }, 1 << 18, 'pid 1 (x)'), BadDataError);
    });
  });

  it('a dump meets each object once: memfd inode ids and pages ids in the order met, the anonymous one as memfd "/dev/zero", swap as a problem', () => {
    const k = new FakeKernel();
    const pages = new Map([[0n, cachedPage(k, 0n, 'a')], [1n, cachedPage(k, 1n, 'b')], [3n, cachedPage(k, 3n, 'c')]]);
    const anon = shmemFile(k, 'dev/zero', { ino: 20n, size: 4n * 4096n, xaHead: xarray(k, pages, 6) });
    const memfd = shmemFile(k, 'memfd:m', { ino: 10n, size: 4096n });
    const swapped = shmemFile(k, 'memfd:s', { ino: 30n, size: 4096n, xaHead: (0x99n << 1n) | 1n });
    const sysv = shmemFile(k, 'SYSV00000001', { ino: 40n, size: 4096n });
    const t = new ShmemTable();
    assert.equal(t.memfdInodeId(file(k, memfd), 'pid 1 (x)'), 1);
    assert.equal(t.memfdInodeId(file(k, anon), 'pid 1 (x)'), 2);
    assert.equal(t.newPagesId(), 3, 'the first task\'s pages come after the objects its mappings met');
    assert.equal(t.memfdInodeId(file(k, swapped), 'pid 1 (x)'), 3);
    assert.equal(t.memfdInodeId(file(k, memfd), 'pid 2 (y)'), 1, 'the same inode through another fd');
    assert.equal(t.mapped(file(k, sysv), 'pid 2 (y)').kind, 'anon', 'no f_op symbol here: named by its dentry alone it is not SysV');
    const problems: { text: string }[] = [];
    const plans = t.plan(problems as never);
    assert.deepEqual(plans.map((p) => [p.shmid, p.pagesId, p.pagemap]), [
      [10n, 1, []],
      [20n, 2, [{ vaddr: 0n, nr_pages: 2, flags: 4 }, { vaddr: 3n * 4096n, nr_pages: 1, flags: 4 }]],
    ]);
    assert.equal(plans[1].runs.pages, 3);
    assert.match(problems.map((p) => p.text).join('\n'), /pid 1 \(x\) shared memory 30: .*swapped out/);
    assert.deepEqual(t.memfdInodes(), [
      { name: 'm', uid: 1000, gid: 100, size: 4096n, shmid: 10, seals: SEALS, inode_id: 1 },
      { name: '/dev/zero', uid: 1000, gid: 100, size: 16384n, shmid: 20, seals: SEALS, inode_id: 2 },
      { name: 's', uid: 1000, gid: 100, size: 4096n, shmid: 30, seals: SEALS, inode_id: 3 },
    ]);
  });

  it('a dumped IPC namespace\'s segments get pages images after the tasks\', no memfd entry; one that shares its number with another object is refused by name', () => {
    const k = new FakeKernel();
    const anon = shmemFile(k, 'dev/zero', { ino: 2n, size: 4096n, xaHead: cachedPage(k, 0n, 'anon') });
    const seg = shmemFile(k, 'SYSV00005157', { ino: 1n, size: 5000n, xaHead: xarray(k, new Map([[1n, cachedPage(k, 1n, 'seg')]]), 0) });
    const clash = shmemFile(k, 'SYSV00000000', { ino: 2n, size: 4096n });
    const t = new ShmemTable();
    assert.equal(t.memfdInodeId(file(k, anon), 'pid 1 (x)'), 1);
    assert.equal(t.newPagesId(), 2);
    assert.equal(t.sysvPagesId(file(k, seg), 'pid 1'), 3);
    assert.equal(t.sysvPagesId(file(k, seg), 'pid 1'), 3, 'once however often it is met');
    assert.equal(t.memfdInodes().length, 1, 'a segment is no memfd');
    let problems: { text: string }[] = [];
    assert.deepEqual(t.plan(problems as never).map((p) => [p.shmid, p.pagesId, p.pagemap]), [[1n, 3, [{ vaddr: 4096n, nr_pages: 1, flags: 4 }]], [2n, 1, [{ vaddr: 0n, nr_pages: 1, flags: 4 }]]]);
    assert.deepEqual(problems, []);
    t.sysvPagesId(file(k, clash), 'pid 1');
    problems = [];
    t.plan(problems as never);
    assert.match(problems.map((p) => p.text).join('\n'), /would both be pagemap-shmem-2\.img/);
  });

  it('memfd.img, a MEMFD file entry and pagemap-shmem round-trip through our codec', () => {
    const inode = makeEntry('memfd_inode_entry', { name: 'ovm-shmem', uid: 0, gid: 0, size: 12288n, shmid: 1234, seals: SEALS, inode_id: 1 });
    const raw = encodeImage('MEMFD_INODE', [inode]);
    assert.equal(raw.readUInt32LE(4), 0x48453499);
    assert.deepEqual(entryObject(decodeImage(raw), 0), { name: 'ovm-shmem', uid: 0, gid: 0, size: '12288', shmid: 1234, seals: SEALS, inode_id: '1' });
    const fown = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };
    const fe = makeEntry('file_entry', { type: 'MEMFD', id: 3, memfd: { id: 3, flags: 0o100002, pos: 0n, fown, inode_id: 1 } });
    const files = decodeImage(encodeImage('FILES', [fe]));
    assert.equal((entryObject(files, 0) as { memfd: { inode_id: number } }).memfd.inode_id, 1);
    const pm = encodeImage('PAGEMAP', [makeEntry('pagemap_head', { pages_id: 4 }), makeEntry('pagemap_entry', { vaddr: 8192n, nr_pages: 1, flags: 4 })]);
    assert.equal(decodeImage(pm).entries.length, 2);
  });
});
