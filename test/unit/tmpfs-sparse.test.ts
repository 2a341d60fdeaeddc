import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { Header } from 'tar';
import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { tmpfsTarball } from '../../introspect/dump/tmpfs-image.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel } from './helpers/fake-program.js';
import { FakeTmpfs, cachedPage as page, fileContents, sharedNodesTmpfs, sparseTmpfs, xarray } from './helpers/fake-tmpfs.js';

const PAGE = 4096;

/** Runs `fn`, and says the largest buffer it asked Buffer for. */
function largestAllocation<T>(fn: () => T): { result: T; largest: number } {
  const originals = { alloc: Buffer.alloc, allocUnsafe: Buffer.allocUnsafe, allocUnsafeSlow: Buffer.allocUnsafeSlow };
  let largest = 0;
  for (const name of Object.keys(originals) as (keyof typeof originals)[]) {
    const original = originals[name] as (size: number, ...rest: unknown[]) => Buffer;
    (Buffer as unknown as Record<string, unknown>)[name] = (size: number, ...rest: unknown[]) => {
      largest = Math.max(largest, size);
      return original.call(Buffer, size, ...rest);
    };
  }
  try {
    return { result: fn(), largest };
  } finally {
    Object.assign(Buffer, originals);
  }
}

/** Runs `fn` on `t`'s kernel, and says how many reads of guest memory it made (cached or not). */
function guestReads<T>(t: FakeTmpfs, fn: () => T): { result: T; reads: number } {
  const mem = t.k.program().mem;
  const before = mem.reads;
  const result = fn();
  return { result, reads: mem.reads - before };
}

describe('sparse tmpfs files', () => {
  it('a 1 GiB file with an empty page cache costs nothing near its size', () => {
    const t = sparseTmpfs(new FakeKernel(), 1n << 30n, 0n);
    const { result, largest } = largestAllocation(() => guestReads(t, () => t.entries()));
    assert.ok(largest < 1 << 20, `allocated ${largest} bytes at once`);
    // Its 2^18 pages are not looked at one by one: a few reads for the objects on the way, none per page.
    assert.ok(result.reads < 1000, `${result.reads} reads of guest memory`);
    const file = result.result[1].file!;
    assert.deepEqual([file.size, file.pages, [...file.chunks()]], [2 ** 30, [], [2 ** 30]]);
  });

  it('a 2^40-byte file with two pages: only those are read, with bounded reads and memory', () => {
    const k = new FakeKernel();
    const last = (1n << 28n) - 1n;
    const head = xarray(k, new Map([[0n, page(k, 0n, 'first')], [last, page(k, last, 'last')]]), 24);
    const t = sparseTmpfs(k, 1n << 40n, head);
    const { result: walked, largest } = largestAllocation(() => guestReads(t, () => t.entries({ maxHoleBytes: 2 ** 41 })));
    assert.ok(largest < 1 << 20, `allocated ${largest} bytes at once`);
    // Two paths of five xa_nodes and two pages, not 2^28 indices.
    assert.ok(walked.reads < 1000, `${walked.reads} reads of guest memory`);
    const result = walked.result;
    const file = result[1].file!;
    assert.deepEqual(file.pages.map((p) => p.index), [0, Number(last)]);
    const chunks = [...file.chunks()];
    assert.equal(chunks.length, 3);
    assert.equal((chunks[0] as Buffer).subarray(0, 5).toString(), 'first');
    assert.equal(chunks[1], 2 ** 40 - 2 * PAGE);
    assert.equal((chunks[2] as Buffer).subarray(0, 4).toString(), 'last');
    // By default the holes are more than a dump writes out.
    assertOvmError(() => t.entries(), UnsupportedError);
  });

  it('counts the holes of all files against the budget', () => {
    const k = new FakeKernel();
    const t = new FakeTmpfs(k);
    const big = () => t.inode(0o100600, { i_size: 600 << 20, i_mapping: k.new('address_space', { 'i_pages.xa_head': 0 }) });
    t.children(t.root, [t.dentry('a', big()), t.dentry('b', big())]);
    assert.equal(t.entries({ maxHoleBytes: 2 * 2 ** 30 }).length, 3);
    assertOvmError(() => t.entries(), UnsupportedError);
    assertOvmError(() => t.entries({ maxHoleBytes: 1 << 20 }), UnsupportedError);
  });

  it('writes the tarball a chunk at a time, holes as zeros, readable as one gzip stream', () => {
    const k = new FakeKernel();
    const size = 64n << 20n;
    const lastIndex = (size >> 12n) - 1n;
    const head = xarray(k, new Map([[1n, page(k, 1n, 'one')], [lastIndex, page(k, lastIndex, 'end')]]), 12);
    const t = sparseTmpfs(k, size - 100n, head);
    const { result: gz, largest } = largestAllocation(() => tmpfsTarball(t.entries()));
    assert.ok(largest <= 1 << 20, `allocated ${largest} bytes at once`);
    assert.ok(gz.length < 1 << 20, `${gz.length} bytes of gzip`);
    const tar = zlib.gunzipSync(gz);
    const header = new Header(tar.subarray(512, 1024));
    assert.deepEqual([header.path, header.size, header.type], ['./f', Number(size) - 100, 'File']);
    const data = tar.subarray(1024, 1024 + Number(size) - 100);
    const expected = Buffer.alloc(Number(size) - 100);
    expected.write('one', PAGE);
    expected.write('end', Number(lastIndex) * PAGE);
    assert.ok(data.equals(expected));
    // Padded to a block, then two zero blocks end the archive.
    assert.equal(tar.length, 1024 + Number(size) + 1024);
    assert.ok(tar.subarray(1024 + Number(size) - 100).equals(Buffer.alloc(100 + 1024)));
  });

  it('a small file still comes out whole', () => {
    const t = new FakeTmpfs(new FakeKernel());
    t.children(t.root, [t.dentry('a.txt', t.file('hello'))]);
    const tar = zlib.gunzipSync(tmpfsTarball(t.entries()));
    assert.equal(new Header(tar.subarray(512, 1024)).size, 5);
    assert.equal(tar.subarray(1024, 1029).toString(), 'hello');
    assert.equal(fileContents(t.entries()[1].file!).toString(), 'hello');
  });

  describe('hostile page caches end in typed errors', () => {
    it('a node that points at itself, or at a node of the wrong shift', () => {
      const k = new FakeKernel();
      const node = k.new('xa_node', { shift: 6 });
      k.write(node, 'xa_node', { 'slots[0]': node | 2n });
      assertOvmError(() => sparseTmpfs(k, 1n << 20n, node | 2n).entries(), BadDataError);
      const child = k.new('xa_node', { shift: 12 });
      const root = k.new('xa_node', { shift: 6, 'slots[0]': child | 2n });
      assertOvmError(() => sparseTmpfs(k, 1n << 20n, root | 2n).entries(), BadDataError);
    });

    it('one entry high in the tree that claims a whole subtree of pages', () => {
      const k = new FakeKernel();
      const root = k.new('xa_node', { shift: 18, 'slots[0]': page(k, 0n, 'x') });
      assertOvmError(() => sparseTmpfs(k, 1n << 30n, root | 2n).entries(), BadDataError);
    });

    it('nodes shared over and over: a tree of 64^4 paths through five nodes', () => {
      const k = new FakeKernel();
      const t = sharedNodesTmpfs(k);
      // Refused after a few node visits, not after walking the 64^4 paths.
      const { reads } = guestReads(t, () => assertOvmError(() => t.entries({ maxHoleBytes: 2 ** 41 }), BadDataError));
      assert.ok(reads < 1000, `${reads} reads of guest memory`);
    });
  });
});
