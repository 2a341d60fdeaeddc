import assert from 'node:assert/strict';
import { UnsupportedError } from '../../common/errors.js';
import { decodeImage, entryObject } from '../../introspect/criu/index.js';
import { GHOST_LIMIT, GhostFiles } from '../../introspect/dump/ghost-files.js';
import { KObject } from '../../introspect/kernel/object.js';
import { deletedFileData } from '../../introspect/linux/deleted-file.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel } from './helpers/fake-program.js';
import { cachedPage, xarray } from './helpers/fake-tmpfs.js';
import { KERNEL_STRUCTS } from './helpers/kernel-structs.js';
import { Fields } from './helpers/kernel-types.js';

const STRUCTS = {
  inode: [...(KERNEL_STRUCTS.inode as Fields), ['i_atime', 'timespec64']] as Fields,
  address_space: [...(KERNEL_STRUCTS.address_space as Fields), ['a_ops', 'ptr']] as Fields,
};

/** A deleted file of `size` bytes whose page cache holds `pages` (index -> text), on tmpfs or not. */
function deleted(size: number, pages: Record<number, string>, tmpfs = true) {
  const k = new FakeKernel({ structs: STRUCTS });
  const shmemAops = k.symbol('shmem_aops', 64);
  const entries = new Map(Object.entries(pages).map(([i, text]) => [BigInt(i), cachedPage(k, BigInt(i), text)]));
  const head = entries.size === 1 && entries.has(0n) ? entries.get(0n)! : xarray(k, entries, 0);
  const mapping = k.new('address_space', { 'i_pages.xa_head': head, a_ops: tmpfs ? shmemAops : 0xffffffff81000000n });
  const inode = k.new('inode', {
    i_mode: 0o100640, i_ino: 77n, i_size: size, i_mapping: mapping, 'i_uid.val': 1000, 'i_gid.val': 100,
    'i_atime.tv_sec': 1_700_000_001, 'i_atime.tv_nsec': 2_500_000, 'i_mtime.tv_sec': 1_700_000_002,
  });
  const obj = KObject.struct(k.program(), 'inode', inode);
  return { obj, identity: { mntId: 0, dev: 0x16, ino: 77n, mode: 0o100640, inode: obj } };
}

describe('deleted open files (ghost files)', () => {
  it('a small file: the entry as CRIU writes it, then its bytes raw', () => {
    const { obj, identity } = deleted(14, { 0: 'ghost-contents' });
    const g = new GhostFiles();
    assert.equal(g.remap(5, identity, obj, '/dev/shm/x', 'pid 1 (t)', 'fd 3'), undefined);
    assert.equal(g.remap(9, identity, obj, '/dev/shm/x', 'pid 1 (t)', 'fd 4'), undefined, 'a second fd on it shares the ghost');
    assert.deepEqual(g.remaps, [{ orig_id: 5, remap_id: 1, remap_type: 1 }, { orig_id: 9, remap_id: 1, remap_type: 1 }]);
    assert.equal(g.images.length, 1);
    const img = g.images[0] as { file: string; data: Buffer };
    assert.equal(img.file, 'ghost-file-1.img');
    assert.equal(img.data.subarray(-14).toString(), 'ghost-contents');
    const head = decodeImage(img.data.subarray(0, -14));
    assert.deepEqual(entryObject(head, 0), { uid: 1000, gid: 100, mode: 0o100640, dev: 0x16, ino: '77', atim: { tv_sec: '1700000001', tv_usec: '2500' }, mtim: { tv_sec: '1700000002', tv_usec: '0' } });
  });

  it('from three pages on: chunks of the data parts, the holes of tmpfs left out', () => {
    const { obj, identity } = deleted(5 * 4096, { 0: 'first', 4: 'last' });
    const g = new GhostFiles();
    g.remap(5, identity, obj, '/dev/shm/sparse', 'pid 1 (t)', 'fd 3');
    const img = decodeImage((g.images[0] as { data: Buffer }).data);
    assert.deepEqual(entryObject(img, 0).chunks, true);
    assert.deepEqual(entryObject(img, 0).size, '20480');
    assert.deepEqual(img.entries.slice(1).map((e, i) => [entryObject(img, i + 1).off, e.extra!.length, e.extra!.subarray(0, 5).toString()]),
      [['0', 4096, 'first'], ['16384', 4096, 'last\0']]);
  });

  it('refuses what CRIU could not restore from RAM alone: past the ghost limit, an uncached page off tmpfs', () => {
    const big = deleted(GHOST_LIMIT + 1, { 0: 'data' });
    assert.match(new GhostFiles().remap(1, big.identity, big.obj, '/x', 'pid 1 (t)', 'fd 3')!.text, /more than the ghost limit/);
    const disk = deleted(3 * 4096, { 0: 'data' }, false);
    assertOvmError(() => deletedFileData(disk.obj, 3 * 4096, '/x'), UnsupportedError);
    assert.match(new GhostFiles().remap(1, disk.identity, disk.obj, '/x', 'pid 1 (t)', 'fd 3')!.text,
      /^pid 1 \(t\) fd 3: \/x \(deleted\) cannot be carried: .*not in the guest's page cache/);
  });
});
