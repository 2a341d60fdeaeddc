import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/** include/uapi/linux/seccomp.h */
export const SECCOMP_MODE_DISABLED = 0;
export const SECCOMP_MODE_STRICT = 1;
export const SECCOMP_MODE_FILTER = 2;
/** include/uapi/linux/filter.h BPF_MAXINSNS: the longest program seccomp(2) accepts. */
const BPF_MAXINSNS = 4096;
/** sizeof(struct sock_filter): u16 code, u8 jt, u8 jf, u32 k. */
const SOCK_FILTER_SIZE = 8;
/**
 * kernel/seccomp.c MAX_INSNS_PER_PATH (32768) counts every filter's length
 * plus 4: a chain holds at most 32768 / 5 filters. A longer one is a cycle
 * or garbage.
 */
const MAX_CHAIN = Math.floor(32768 / 5);

/** One attached filter (kernel/seccomp.c struct seccomp_filter), as PTRACE_SECCOMP_GET_FILTER reads it back. */
export interface SeccompFilter {
  /** The struct seccomp_filter: threads and forked children share a chain by pointer. */
  address: bigint;
  /** The classic BPF program the task gave seccomp(2) (bpf_prog.orig_prog): struct sock_filter[]. */
  insns: Buffer;
  /** SECCOMP_FILTER_FLAG_LOG was given (PTRACE_SECCOMP_GET_METADATA reports it). */
  log: boolean;
  /** A user-notification listener (SECCOMP_FILTER_FLAG_NEW_LISTENER), 0 when none. */
  notif: bigint;
}

/** A thread's seccomp state: its mode and its filters, the newest first (filter, filter->prev, ...). */
export interface SeccompState {
  mode: number;
  chain: SeccompFilter[];
}

function readFilter(f: KObject): SeccompFilter {
  const prog = f.member('prog').deref();
  const orig = prog.member('orig_prog');
  // kernel/seccomp.c seccomp_prepare_filter keeps orig_prog on x86-64 (SECCOMP_ARCH_NATIVE); without it nothing can be read back.
  if (orig.value() === 0n) throw new BadDataError(`${prog.path}.orig_prog is NULL: the filter's program was not kept`);
  const fprog = orig.deref();
  const len = fprog.member('len').num();
  if (len < 1 || len > BPF_MAXINSNS) throw new BadDataError(`${fprog.path}.len is ${len} instructions (1..${BPF_MAXINSNS})`);
  const insns = f.prog.read(fprog.member('filter').value(), len * SOCK_FILTER_SIZE, `${fprog.path}.filter`);
  return {
    address: f.address,
    insns: Buffer.from(insns),
    log: f.member('log').value() !== 0n,
    notif: f.has('notif') ? f.member('notif').value() : 0n,
  };
}

/**
 * task->seccomp: the mode and the chain of filters from the newest
 * (seccomp.filter) along ->prev, bounded by what the kernel lets a chain
 * hold and checked against seccomp.filter_count, which every attach and
 * fork keeps equal to the chain's length.
 */
export function seccompState(t: KObject): SeccompState {
  const s = t.member('seccomp');
  const mode = s.member('mode').num();
  const chain: SeccompFilter[] = [];
  if (mode !== SECCOMP_MODE_FILTER) return { mode, chain };
  const seen = new Set<bigint>();
  let next = s.member('filter').value();
  while (next !== 0n) {
    if (chain.length >= MAX_CHAIN || seen.has(next)) throw new BadDataError(`${s.path}.filter: the chain of filters does not end within ${MAX_CHAIN} filters`);
    seen.add(next);
    const f = KObject.struct(t.prog, 'seccomp_filter', next);
    chain.push(readFilter(f));
    next = f.member('prev').value();
  }
  if (chain.length === 0) throw new BadDataError(`${s.path}: mode is SECCOMP_MODE_FILTER with no filter`);
  const count = s.has('filter_count') ? s.member('filter_count.counter').num() : chain.length;
  if (count !== chain.length) throw new BadDataError(`${s.path}.filter_count is ${count}, its chain holds ${chain.length} filters`);
  return { mode, chain };
}
