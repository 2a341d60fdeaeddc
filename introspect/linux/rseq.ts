import { KObject } from '../kernel/object.js';
import { readUserMemory } from './user-memory.js';

/** sizeof(struct rseq) (include/uapi/linux/rseq.h), the ABI size on kernels without rseq_len. */
const RSEQ_SIZE = 32;

/** A critical section a thread was inside (struct rseq_cs, read from user memory). */
export interface RseqCriticalSection {
  pointer: bigint;
  /** rseq_cs.flags | rseq.flags. */
  flags: number;
  start: bigint;
  postCommitOffset: bigint;
  abort: bigint;
}

/** A thread's rseq registration (PTRACE_GET_RSEQ_CONFIGURATION) and the critical section it is in, if any. */
export interface RseqState {
  pointer: bigint;
  size: number;
  signature: number;
  cs?: RseqCriticalSection;
}

/** Undefined on a kernel without rseq. */
export function rseqState(task: KObject): RseqState | undefined {
  if (!task.has('rseq')) return undefined;
  const pointer = task.member('rseq').value();
  const state: RseqState = {
    pointer,
    // 6.1 has no rseq_len: the ABI size is sizeof(struct rseq).
    size: task.has('rseq_len') ? task.member('rseq_len').num() : RSEQ_SIZE,
    signature: task.member('rseq_sig').num(),
  };
  if (pointer === 0n) return state;
  const area = readUserMemory(task, pointer, RSEQ_SIZE);
  const csPtr = area.readBigUInt64LE(8);
  if (csPtr === 0n) return state;
  const cs = readUserMemory(task, csPtr, 32);
  state.cs = {
    pointer: csPtr,
    flags: cs.readUInt32LE(4) | area.readUInt32LE(16),
    start: cs.readBigUInt64LE(8),
    postCommitOffset: cs.readBigUInt64LE(16),
    abort: cs.readBigUInt64LE(24),
  };
  return state;
}
