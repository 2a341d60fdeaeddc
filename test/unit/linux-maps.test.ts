import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { mapsText } from '../../introspect/linux/mm.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { mmWithVmas } from './helpers/fake-maple.js';
import { FakeKernel, OUTSIDE_RAM } from './helpers/fake-program.js';
import { FakeVfs } from './helpers/fake-vfs.js';

const MM_CONTEXT_HAS_VSYSCALL = 2;
const VM_READ = 0x1n, VM_EXEC = 0x4n;

/** A process whose maps hold a file, the heap, a named anonymous mapping, [vdso] and the stack. */
function process() {
  const k = new FakeKernel();
  const specialOps = k.symbol('special_mapping_vmops');
  const gateOps = k.symbol('gate_vma_ops');
  const gate = k.global('gate_vma', 'vm_area_struct', { vm_start: 0xffffffffff600000n, vm_end: 0xffffffffff601000n, vm_flags: VM_READ | VM_EXEC, vm_ops: gateOps });
  k.symbol('vsyscall_mode', 4);
  const vfs = new FakeVfs(k);
  const app = vfs.file(vfs.dentry('app', vfs.path('usr/bin'), { d_inode: vfs.inode(0o100755, 1234n) }));
  const anonName = k.new('anon_vma_name', { kref: 1, name: Buffer.from('buf\0') });
  const vdso = k.new('vm_special_mapping', { name: k.cstr('[vdso]') });
  const { mm, vmas } = mmWithVmas(k, [
    { start: 0x400000n, end: 0x401000n, values: { vm_file: app, vm_pgoff: 2, vm_flags: VM_READ | VM_EXEC } },
    { start: 0x555000n, end: 0x577000n },
    { start: 0x7f0000000000n, end: 0x7f0000001000n, values: { anon_name: anonName } },
    { start: 0x7ffc000n, end: 0x7ffd000n, values: { vm_ops: specialOps, vm_private_data: vdso, vm_flags: VM_READ | VM_EXEC } },
    { start: 0x7ffe000n, end: 0x7fff000n },
  ], { start_brk: 0x555000n, brk: 0x576000n, start_stack: 0x7ffe800n, 'context.flags': MM_CONTEXT_HAS_VSYSCALL });
  const task = k.new('task_struct', { pid: 9, mm });
  return { k, vfs, mm, vmas, task, gate, app };
}

const maps = (p: ReturnType<typeof process>) => mapsText(KObject.struct(p.k.program(), 'task_struct', p.task), p.vfs.root);

describe('/proc/PID/maps on a fake kernel', () => {
  it('prints file, heap, named anonymous, special and gate mappings', () => {
    const lines = maps(process()).trimEnd().split('\n').map((l) => l.replace(/ {2,}/, ' | '));
    assert.deepEqual(lines, [
      '00400000-00401000 r-xp 00002000 08:01 1234 | /usr/bin/app',
      '00555000-00577000 rw-p 00000000 00:00 0 | [heap]',
      '7f0000000000-7f0000001000 rw-p 00000000 00:00 0 | [anon:buf]',
      '07ffc000-07ffd000 r-xp 00000000 00:00 0 | [vdso]',
      '07ffe000-07fff000 rw-p 00000000 00:00 0 | [stack]',
      'ffffffffff600000-ffffffffff601000 r-xp 00000000 00:00 0 | [vsyscall]',
    ]);
  });

  it('leaves out [vsyscall] when the mm has none or vsyscall=none', () => {
    const p = process();
    p.k.put(p.k.symbolAddress('vsyscall_mode'), Buffer.from([2, 0, 0, 0])); // VSYSCALL_NONE
    assert.ok(!maps(p).includes('[vsyscall]'));
    const q = process();
    q.k.write(q.mm, 'mm_struct', { 'context.flags': 0 });
    assert.ok(!maps(q).includes('[vsyscall]'));
  });

  describe('hostile values end in typed errors', () => {
    it('a special mapping without its vm_special_mapping, or with its name outside RAM', () => {
      const p = process();
      p.k.write(p.vmas[3], 'vm_area_struct', { vm_private_data: 0 });
      assertOvmError(() => maps(p), PageFaultError);
      const q = process();
      q.k.write(q.k.ptr('vm_area_struct', q.vmas[3], 'vm_private_data'), 'vm_special_mapping', { name: OUTSIDE_RAM });
      assertOvmError(() => maps(q), PageFaultError);
    });

    it('an anon_vma_name outside RAM', () => {
      const p = process();
      p.k.write(p.vmas[2], 'vm_area_struct', { anon_name: OUTSIDE_RAM });
      assertOvmError(() => maps(p), PageFaultError);
    });

    it('a file without an inode, superblock or dentry', () => {
      for (const [struct, member] of [['file', 'f_inode'], ['inode', 'i_sb'], ['file', 'f_path.dentry']]) {
        const p = process();
        const target = struct === 'file' ? p.app : p.k.ptr('file', p.app, 'f_inode');
        p.k.write(target, struct, { [member]: 0 });
        assertOvmError(() => maps(p), BadDataError);
      }
    });
  });
});
