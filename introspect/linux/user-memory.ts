import { InvalidArgumentError, OvmError } from '../../common/errors.js';
import { PageFaultError, translate } from '../arch/x86-64.js';
import { KObject } from '../kernel/object.js';
import { forEachVma } from './mm.js';
import { pageCachePhys } from './page-cache.js';

const PAGE = 4096n;
/** include/linux/mm.h: mappings /proc/PID/mem cannot read either. */
const VM_IO = 0x4000n;
const VM_PFNMAP = 0x400n;

/** Fails a read at an address, naming it, as /proc/PID/mem would with EIO. */
export class UserFaultError extends OvmError {
  override readonly code = 'USER_FAULT';
  constructor(readonly address: bigint, readonly pid: number, reason: string) {
    super(`pid ${pid}: cannot read 0x${address.toString(16)}: ${reason}`);
  }
}

/**
 * Reads a process's memory as /proc/PID/mem shows it: through its page
 * tables; pages never touched read as zeros (anonymous) or from the page
 * cache (file-backed); unmapped addresses and swapped-out pages are errors.
 */
export function readUserMemory(task: KObject, address: bigint, length: number): Buffer {
  if (!Number.isInteger(length) || length < 0 || length > 64 << 20) throw new InvalidArgumentError(`read of ${length} bytes`);
  const prog = task.prog;
  const pid = task.member('pid').num();
  if (task.member('mm').value() === 0n) throw new UserFaultError(address, pid, 'the task has no memory (kernel thread or exited)');
  const mm = task.member('mm').deref();
  const root = prog.pgdPhys(mm.member('pgd').value());
  const vmas = [...forEachVma(mm)];
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const va = address + BigInt(done);
    const n = Math.min(Number(PAGE - (va & (PAGE - 1n))), length - done);
    const vma = vmas.find((v) => va >= v.member('vm_start').value() && va < v.member('vm_end').value());
    if (!vma) throw new UserFaultError(va, pid, 'not mapped');
    if (vma.member('vm_flags').value() & (VM_IO | VM_PFNMAP)) throw new UserFaultError(va, pid, 'an I/O or PFN mapping');
    const phys = residentPhys(prog, root, vma, va, pid);
    if (phys !== undefined) prog.mem.readInto(phys, out.subarray(done, done + n), `pid ${pid} memory at 0x${va.toString(16)}`);
    done += n;
  }
  return out;
}

function residentPhys(prog: KObject['prog'], root: bigint, vma: KObject, va: bigint, pid: number): bigint | undefined {
  try {
    return translate(prog.mem, root, va, prog.pagingLevels, prog.smeMask, `pid ${pid} memory`).phys;
  } catch (err) {
    if (!(err instanceof PageFaultError)) throw err;
    if (err.swapped) throw new UserFaultError(va, pid, 'swapped out');
  }
  const file = vma.member('vm_file').value();
  // Untouched anonymous memory reads as the zero page.
  if (file === 0n) return undefined;
  const index = vma.member('vm_pgoff').value() + ((va - vma.member('vm_start').value()) >> 12n);
  const mapping = KObject.struct(prog, 'file', file).member('f_mapping').deref();
  const phys = pageCachePhys(mapping, index);
  if (phys === undefined) throw new UserFaultError(va, pid, 'file page not in the page cache');
  return phys + (va & (PAGE - 1n));
}
