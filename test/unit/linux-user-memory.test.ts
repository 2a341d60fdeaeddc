import assert from 'node:assert/strict';
import { BadDataError, InvalidArgumentError } from '../../common/errors.js';
import { KObject } from '../../introspect/kernel/object.js';
import { UserFaultError, readUserMemory } from '../../introspect/linux/user-memory.js';
import { PhysicalFaultError } from '../../introspect/memory/physical-memory.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { mmWithVmas } from './helpers/fake-maple.js';
import { FakeKernel, START_KERNEL_MAP } from './helpers/fake-program.js';

const VM_IO = 0x4000n;

/**
 * A process with an anonymous VMA [0x400000, 0x403000) whose first and last
 * pages are resident and middle one untouched, and a file VMA at 0x600000
 * never faulted in, whose page is in the page cache.
 */
function processMemory() {
  const k = new FakeKernel();
  const pgd = k.newPgd();
  const filePage = k.allocPage();
  k.put(filePage.va, Buffer.from('from the page cache'));
  const file = k.new('file', { f_mapping: k.new('address_space', { 'i_pages.xa_head': filePage.page }) });
  const { mm, vmas } = mmWithVmas(k, [
    { start: 0x400000n, end: 0x403000n },
    { start: 0x600000n, end: 0x601000n, values: { vm_file: file, vm_flags: 0x1n } },
  ], { pgd: pgd.va });
  const pages = [k.allocPage(), k.allocPage()];
  k.put(pages[0].va + 4090n, Buffer.from('abcdef'));
  k.put(pages[1].va, Buffer.from('ghij'));
  k.map(pgd.phys, 0x400000n, pages[0].phys);
  k.map(pgd.phys, 0x402000n, pages[1].phys);
  const task = k.new('task_struct', { pid: 77, mm });
  return { k, pgd, mm, vmas, task };
}

const read = (k: FakeKernel, task: bigint, address: bigint, length: number) => readUserMemory(KObject.struct(k.program(), 'task_struct', task), address, length);

describe('user memory on a fake kernel', () => {
  it('reads resident pages, untouched ones as zeros and file pages from the page cache', () => {
    const { k, task } = processMemory();
    assert.deepEqual(read(k, task, 0x400ffan, 8), Buffer.from('abcdef\0\0'));
    assert.deepEqual(read(k, task, 0x401ffen, 6), Buffer.from('\0\0ghij'));
    assert.equal(read(k, task, 0x600000n, 19).toString(), 'from the page cache');
    assert.equal(read(k, task, 0x400000n, 0x3000).length, 0x3000);
  });

  describe('hostile values end in typed errors', () => {
    it('addresses outside every VMA', () => {
      const { k, task } = processMemory();
      for (const [at, len] of [[0x3ff000n, 16], [0x402ff0n, 32], [0x500000n, 1], [0x7fff_ffff_f000n, 8]] as const) {
        assertOvmError(() => read(k, task, at, len), UserFaultError);
      }
    });

    it('lengths that are negative, fractional or beyond one read', () => {
      const { k, task } = processMemory();
      for (const len of [-1, 1.5, 2 ** 40, Number.NaN]) assertOvmError(() => read(k, task, 0x400000n, len), InvalidArgumentError);
    });

    it('a task without an mm, and an mm->pgd outside the direct map', () => {
      const { k, task, mm } = processMemory();
      assertOvmError(() => read(k, k.new('task_struct', { pid: 2 }), 0x400000n, 1), UserFaultError);
      for (const pgd of [0n, START_KERNEL_MAP + 0x1000n, 0xffff_ffff_ffff_f000n]) {
        k.write(mm, 'mm_struct', { pgd });
        assertOvmError(() => read(k, task, 0x400000n, 1), BadDataError);
      }
    });

    it('a swapped-out page, and a PTE pointing past RAM', () => {
      const { k, task, pgd } = processMemory();
      k.map(pgd.phys, 0x401000n, 0xa000n, 0n);
      assertOvmError(() => read(k, task, 0x401000n, 8), UserFaultError);
      k.map(pgd.phys, 0x401000n, 1n << 45n);
      assertOvmError(() => read(k, task, 0x401000n, 8), PhysicalFaultError);
    });

    it('an I/O mapping, and a VMA that ends before it starts', () => {
      const { k, task, vmas } = processMemory();
      k.write(vmas[0], 'vm_area_struct', { vm_flags: VM_IO });
      assertOvmError(() => read(k, task, 0x400000n, 8), UserFaultError);
      k.write(vmas[0], 'vm_area_struct', { vm_flags: 0x3n, vm_start: 0x403000n, vm_end: 0x400000n });
      assertOvmError(() => read(k, task, 0x400000n, 8), UserFaultError);
    });

    it('a file page missing from the page cache', () => {
      const { k, task, vmas } = processMemory();
      const file = k.ptr('vm_area_struct', vmas[1], 'vm_file');
      k.write(file, 'file', { f_mapping: k.new('address_space') });
      assertOvmError(() => read(k, task, 0x600000n, 8), UserFaultError);
    });
  });
});
