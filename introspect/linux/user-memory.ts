import { InvalidArgumentError, OvmError } from '../../common/errors.js';
import { walkRange } from '../arch/x86-64.js';
import { KObject } from '../kernel/object.js';
import { PhysicalMemory } from '../memory/physical-memory.js';
import { forEachVma } from './mm.js';
import { pageCachePhys } from './page-cache.js';

const PAGE = 4096n;
/** Largest single read; bigger batches let pages scattered in guest RAM be read in fewer, larger reads. */
export const MAX_READ = 256 << 20;
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
 * tables (walked once per table, resident runs read in one go); pages never
 * touched read as zeros (anonymous) or from the page cache (file-backed);
 * unmapped addresses and swapped-out pages are errors naming the address.
 */
export function readUserMemory(task: KObject, address: bigint, length: number): Buffer {
  if (!Number.isInteger(length) || length < 0 || length > MAX_READ) throw new InvalidArgumentError(`read of ${length} bytes: at most ${MAX_READ} at a time`);
  const out = Buffer.allocUnsafe(length);
  readUserMemoryInto(task, address, out);
  return out;
}

/** readUserMemory into a caller's buffer (reused across calls, it saves the kernel faulting in fresh pages). */
export function readUserMemoryInto(task: KObject, address: bigint, out: Buffer): void {
  const length = out.length;
  if (length > MAX_READ) throw new InvalidArgumentError(`read of ${length} bytes: at most ${MAX_READ} at a time`);
  const prog = task.prog;
  const pid = task.member('pid').num();
  if (task.member('mm').value() === 0n) throw new UserFaultError(address, pid, 'the task has no memory (kernel thread or exited)');
  const mm = task.member('mm').deref();
  const root = prog.pgdPhys(mm.member('pgd').value());
  const end = address + BigInt(length);
  let next = address;
  for (const vma of forEachVma(mm)) {
    const vmStart = vma.member('vm_start').value();
    const vmEnd = vma.member('vm_end').value();
    if (vmEnd <= next) continue;
    if (next >= end) break;
    if (vmStart > next) throw new UserFaultError(next, pid, 'not mapped');
    if (vma.member('vm_flags').value() & (VM_IO | VM_PFNMAP)) throw new UserFaultError(next, pid, 'an I/O or PFN mapping');
    const hi = vmEnd < end ? vmEnd : end;
    const resident: { at: number; phys: bigint; size: number }[] = [];
    for (const run of walkRange(prog.mem, root, next, hi, prog.pagingLevels, prog.smeMask, `pid ${pid} memory`)) {
      const at = Number(run.va - address);
      if (run.phys !== undefined) {
        resident.push({ at, phys: run.phys, size: Number(run.size) });
      } else if (run.swapped) {
        throw new UserFaultError(run.va, pid, 'swapped out');
      } else if (vma.member('vm_file').value() !== 0n) {
        readFromPageCache(vma, run.va, out.subarray(at, at + Number(run.size)), pid);
      } else {
        out.fill(0, at, at + Number(run.size)); // untouched anonymous memory reads as the zero page
      }
    }
    readCoalesced(prog.mem.base, resident, out, pid);
    next = hi;
  }
  if (next < end) throw new UserFaultError(next, pid, 'not mapped');
}

/** Gaps between pages up to this size are read through rather than paying another read call. */
const GAP = 64 << 10;
const WINDOW = 16 << 20;
let scratch: Buffer | undefined;

/**
 * Reads resident runs in physical order, merging runs that lie close in
 * guest RAM into one read of up to WINDOW bytes, then copying each out:
 * a process's pages are scattered, and one read call per page costs more
 * than reading small gaps through.
 */
export function readCoalesced(mem: PhysicalMemory, runs: { at: number; phys: bigint; size: number }[], out: Buffer, pid: number): void {
  runs.sort((a, b) => (a.phys < b.phys ? -1 : 1));
  scratch ??= Buffer.allocUnsafe(WINDOW);
  for (let i = 0; i < runs.length;) {
    const start = runs[i].phys;
    let end = start + BigInt(runs[i].size);
    let j = i + 1;
    // Only small runs are merged: a run of GAP or more is worth its own read straight into place, without the extra copy.
    while (j < runs.length && runs[i].size < GAP && runs[j].size < GAP && runs[j].phys - end <= BigInt(GAP) &&
      runs[j].phys + BigInt(runs[j].size) - start <= BigInt(WINDOW)) {
      const e = runs[j].phys + BigInt(runs[j].size);
      if (e > end) end = e;
      j++;
    }
    const what = `pid ${pid} memory at guest-physical 0x${start.toString(16)}`;
    if (j - i === 1) {
      // One run, read straight into place, in pieces the memory source accepts.
      for (let off = 0; off < runs[i].size; off += WINDOW) {
        const n = Math.min(WINDOW, runs[i].size - off);
        mem.readInto(start + BigInt(off), out.subarray(runs[i].at + off, runs[i].at + off + n), what);
      }
    } else {
      const window = scratch.subarray(0, Number(end - start));
      try {
        mem.readInto(start, window, what);
      } catch {
        // The window crossed a hole in guest RAM: read these runs one by one.
        for (let k = i; k < j; k++) mem.readInto(runs[k].phys, out.subarray(runs[k].at, runs[k].at + runs[k].size), what);
        i = j;
        continue;
      }
      for (let k = i; k < j; k++) {
        const off = Number(runs[k].phys - start);
        window.copy(out, runs[k].at, off, off + runs[k].size);
      }
    }
    i = j;
  }
}

function readFromPageCache(vma: KObject, va: bigint, dest: Buffer, pid: number): void {
  const prog = vma.prog;
  const mapping = KObject.struct(prog, 'file', vma.member('vm_file').value()).member('f_mapping').deref();
  const vmStart = vma.member('vm_start').value();
  const pgoff = vma.member('vm_pgoff').value();
  for (let done = 0; done < dest.length;) {
    const addr = va + BigInt(done);
    const n = Math.min(Number(PAGE - (addr & (PAGE - 1n))), dest.length - done);
    const phys = pageCachePhys(mapping, pgoff + ((addr - vmStart) >> 12n));
    if (phys === undefined) throw new UserFaultError(addr, pid, 'file page not in the page cache');
    prog.mem.readInto(phys + (addr & (PAGE - 1n)), dest.subarray(done, done + n), `pid ${pid} file page at 0x${addr.toString(16)}`);
    done += n;
  }
}
