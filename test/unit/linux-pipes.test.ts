import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { PageInfo } from '../../introspect/linux/pages.js';
import { pipeContents } from '../../introspect/linux/pipes.js';
import { PhysicalFaultError } from '../../introspect/memory/physical-memory.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, OUTSIDE_RAM, VMEMMAP_BASE } from './helpers/fake-program.js';

/** A pipe inode whose ring has `ringSize` buffers, `data` queued from slot `tail` on, one page each. */
function pipe(k: FakeKernel, opts: { ringSize: number; tail: number; data: string[]; maxUsage?: number }) {
  const bufSize = k.types.sizeof('pipe_buffer');
  const bufs = k.alloc(opts.ringSize * bufSize);
  opts.data.forEach((text, i) => {
    const page = k.allocPage();
    k.put(page.va + 100n, Buffer.from(text));
    const slot = ((opts.tail + i) >>> 0) & (opts.ringSize - 1);
    k.write(bufs + BigInt(slot * bufSize), 'pipe_buffer', { page: page.page, offset: 100, len: text.length });
  });
  const info = k.new('pipe_inode_info', {
    head: (opts.tail + opts.data.length) >>> 0, tail: opts.tail, ring_size: opts.ringSize, max_usage: opts.maxUsage ?? opts.ringSize, bufs,
  });
  const inode = k.new('inode', { i_mode: 0o010600, i_ino: 777, i_pipe: info });
  return { inode, info, bufs, bufSize };
}

function read(k: FakeKernel, inode: bigint) {
  const prog = k.program();
  return pipeContents(KObject.struct(prog, 'inode', inode), new PageInfo(prog));
}

describe('pipe contents on a fake kernel', () => {
  it('reads the buffers from tail to head', () => {
    const k = new FakeKernel();
    const { inode } = pipe(k, { ringSize: 4, tail: 1, data: ['hello ', 'world'] });
    const c = read(k, inode);
    assert.deepEqual([c.ino, c.size, c.data.toString()], [777n, 4 * 4096, 'hello world']);
  });

  it('reads a ring whose head has wrapped past 2^32, and an empty one', () => {
    const k = new FakeKernel();
    const { inode } = pipe(k, { ringSize: 16, tail: 0xffff_fffe, data: ['a', 'b', 'c'] });
    assert.equal(read(k, inode).data.toString(), 'abc');
    const empty = pipe(k, { ringSize: 1, tail: 5, data: [] });
    assert.equal(read(k, empty.inode).data.length, 0);
  });

  describe('hostile values end in typed errors', () => {
    it('ring sizes that are zero, not a power of two or huge', () => {
      for (const ring of [0, 3, 1 << 17, 0x8000_0000, 0xffff_ffff]) {
        const k = new FakeKernel();
        const { inode, info } = pipe(k, { ringSize: 4, tail: 0, data: ['x'] });
        k.write(info, 'pipe_inode_info', { ring_size: ring });
        assertOvmError(() => read(k, inode), BadDataError);
      }
    });

    it('more buffers in use than the ring holds, or a tail past the head', () => {
      for (const [head, tail, maxUsage] of [[10, 0, 4], [0, 5, 4], [2, 0, 64]]) {
        const k = new FakeKernel();
        const { inode, info } = pipe(k, { ringSize: 4, tail: 0, data: ['x', 'y'] });
        k.write(info, 'pipe_inode_info', { head, tail, max_usage: maxUsage });
        assertOvmError(() => read(k, inode), BadDataError);
      }
    });

    it('a buffer that overruns its page', () => {
      for (const [offset, len] of [[4000, 200], [0, 0xffff_ffff], [0xffff_ffff, 1]]) {
        const k = new FakeKernel();
        const { inode, bufs } = pipe(k, { ringSize: 4, tail: 0, data: ['x'] });
        k.write(bufs, 'pipe_buffer', { offset, len });
        assertOvmError(() => read(k, inode), BadDataError);
      }
    });

    it('a buffer page that is no struct page, or one past RAM', () => {
      const pageSize = BigInt(new FakeKernel().types.sizeof('page'));
      for (const [page, cls] of [[0n, BadDataError], [OUTSIDE_RAM, BadDataError], [VMEMMAP_BASE + 8n, BadDataError], [VMEMMAP_BASE + (1n << 30n) * pageSize, PhysicalFaultError]] as const) {
        const k = new FakeKernel();
        const { inode, bufs } = pipe(k, { ringSize: 4, tail: 0, data: ['x'] });
        k.write(bufs, 'pipe_buffer', { page });
        assertOvmError(() => read(k, inode), cls);
      }
    });

    it('a NULL pipe, and a ring outside RAM', () => {
      const k = new FakeKernel();
      const { inode, info } = pipe(k, { ringSize: 4, tail: 0, data: ['x'] });
      k.write(info, 'pipe_inode_info', { bufs: OUTSIDE_RAM });
      assertOvmError(() => read(k, inode), PageFaultError);
      k.write(inode, 'inode', { i_pipe: 0 });
      assertOvmError(() => read(k, inode), BadDataError);
    });
  });
});
