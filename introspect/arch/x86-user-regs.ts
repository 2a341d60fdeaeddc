import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/** arch/x86/include/asm/page_64_types.h: THREAD_SIZE = PAGE_SIZE << 2 (no KASAN). */
const THREAD_SIZE = 16384n;
/** struct pt_regs of x86-64, in its layout order (arch/x86/include/asm/ptrace.h); CRIU's user_regs_struct keeps it. */
export const PT_REGS = ['r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx', 'dx', 'si', 'di', 'orig_ax', 'ip', 'cs', 'flags', 'sp', 'ss'] as const;

/**
 * User registers of a task that is off-CPU: the pt_regs the entry code saved
 * at the top of its kernel stack (task_pt_regs), plus fs/gs base from
 * thread_struct (saved at context switch).
 */
export function userRegisters(task: KObject): Record<string, bigint> {
  const stack = task.member('stack').value();
  if (stack === 0n || stack % THREAD_SIZE !== 0n) throw new BadDataError(`${task.path}.stack 0x${stack.toString(16)} is not a kernel stack`);
  const regs = KObject.struct(task.prog, 'pt_regs', stack + THREAD_SIZE - BigInt(task.prog.btf.struct('pt_regs').size));
  const out: Record<string, bigint> = {};
  for (const name of PT_REGS) out[name] = regs.member(name).value();
  const thread = task.member('thread');
  out.fs_base = thread.member('fsbase').value();
  out.gs_base = thread.member('gsbase').value();
  out.fsindex = thread.member('fsindex').value();
  out.gsindex = thread.member('gsindex').value();
  out.ds = thread.member('ds').value();
  out.es = thread.member('es').value();
  return out;
}

/** The user address the kernel clears and futex-wakes when the thread exits (set_tid_address, CLONE_CHILD_CLEARTID). */
export function clearChildTid(task: KObject): bigint {
  return task.member('clear_child_tid').value();
}
