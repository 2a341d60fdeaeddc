import { KObject } from '../kernel/object.js';

/** include/linux/sched/coredump.h */
const MMF_DUMPABLE_MASK = 3n;
const MMF_DISABLE_THP = 24n;
/** include/uapi/linux/auxvec.h AT_NULL ends the vector. */
const AT_NULL = 0n;

/** What an mm_struct holds besides its VMAs and layout (mm-fields.ts). */
export interface MmState {
  /** TASK_SIZE of this mm: user addresses end here. */
  taskSize: bigint;
  /** Virtual address of the page table root. */
  pgd: bigint;
  /** The executable's struct file, 0n when none. */
  exeFile: bigint;
  /** prctl(PR_GET_DUMPABLE). */
  dumpable: number;
  /** prctl(PR_GET_THP_DISABLE). */
  thpDisabled: boolean;
}

export function mmState(mm: KObject): MmState {
  const flags = mm.member('flags').value();
  return {
    taskSize: mm.member('task_size').value(),
    pgd: mm.member('pgd').value(),
    exeFile: mm.member('exe_file').value(),
    dumpable: Number(flags & MMF_DUMPABLE_MASK),
    thpDisabled: ((flags >> MMF_DISABLE_THP) & 1n) === 1n,
  };
}

/** /proc/PID/auxv: the pairs of mm->saved_auxv up to and including AT_NULL, at most `maxWords` words. */
export function savedAuxv(mm: KObject, maxWords: number): bigint[] {
  const auxv = mm.member('saved_auxv');
  const words: bigint[] = [];
  const n = Math.min(auxv.type.kind === 'array' ? auxv.type.nelems : 0, maxWords);
  const raw = mm.prog.read(auxv.address, n * 8, auxv.path);
  for (let i = 0; i + 1 < n; i += 2) {
    const key = raw.readBigUInt64LE(i * 8);
    words.push(key, raw.readBigUInt64LE(i * 8 + 8));
    if (key === AT_NULL) break;
  }
  return words;
}

/** A task's mm_struct, undefined for a kernel thread (or an exited task). */
export function taskMm(task: KObject): KObject | undefined {
  return task.member('mm').value() === 0n ? undefined : task.member('mm').deref();
}
