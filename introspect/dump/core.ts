import { BadDataError } from '../../common/errors.js';
import { KObject, listForEach } from '../kernel/object.js';
import { readUserMemory } from '../linux/user-memory.js';
import { rlimits } from '../linux/task-state.js';
import { criuThreadInfo } from './thread-info.js';
import { DumpProcess } from './tree.js';

/** compel/include/uapi/task-state.h */
const TASK_ALIVE = 1;
const TASK_STOPPED = 3;
/** include/linux/sched/jobctl.h */
const JOBCTL_STOPPED = 1n << 26n;
/** include/uapi/linux/signal.h */
const SS_DISABLE = 2;
const SIGKILL = 9;
const SIGSTOP = 19;
const NSIG = 64;
/** include/uapi/linux/sched.h */
const SCHED_FIFO = 1;
const SCHED_RR = 2;
const SCHED_DEADLINE = 6;
/** include/linux/sched/prio.h: nice = static_prio - 120. */
const NICE_BASE = 120;
/** include/uapi/linux/rseq.h */
const RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL = 1;
/** A pending-signal queue longer than this is corrupt (RLIMIT_SIGPENDING is far lower). */
const MAX_SIGQUEUE = 1 << 16;
/** Size of the user siginfo_t that PTRACE_PEEKSIGINFO gives CRIU (the kernel's part, zero-padded). */
const SIGINFO_SIZE = 128;

/** Pending signals of a queue as CRIU stores them: each siginfo_t as PTRACE_PEEKSIGINFO copies it out. */
function signalQueue(pending: KObject): { signals: { siginfo: Buffer }[] } {
  const signals: { siginfo: Buffer }[] = [];
  for (const q of listForEach(pending.prog, pending.member('list').address, 'sigqueue', 'list', MAX_SIGQUEUE)) {
    const info = q.member('info');
    const buf = Buffer.alloc(SIGINFO_SIZE);
    pending.prog.read(info.address, Math.min(info.size, SIGINFO_SIZE), info.path).copy(buf);
    signals.push({ siginfo: buf });
  }
  return { signals };
}

/** The signal mask to save: with restore_sigmask set (ppoll, sigsuspend) the real one is saved_sigmask (as PTRACE_GETSIGMASK reports). */
function blockedMask(t: KObject): bigint {
  const mask = t.bitfield('restore_sigmask') ? t.member('saved_sigmask') : t.member('blocked');
  return mask.member('sig').index(0).value();
}

function capWords(cap: bigint): number[] {
  return [Number(cap & 0xffffffffn), Number(cap >> 32n)];
}

function caps(obj: KObject): bigint {
  // kernel_cap_t: u32 cap[2] in 6.1, a u64 `val` from 6.3 (commit f122a08b197d).
  if (obj.has('val')) return obj.member('val').value();
  const cap = obj.member('cap');
  return cap.index(0).value() | (cap.index(1).value() << 32n);
}

function creds(t: KObject): Record<string, unknown> {
  const cred = t.member('cred').deref();
  const groups: number[] = [];
  const gi = cred.member('group_info').value();
  if (gi !== 0n) {
    const info = KObject.struct(t.prog, 'group_info', gi);
    const n = info.member('ngroups').num();
    if (n > 65536) throw new BadDataError(`${info.path}.ngroups is ${n}`);
    for (let i = 0; i < n; i++) groups.push(info.member('gid').flexIndex(i, n).member('val').num());
  }
  const id = (name: string) => cred.member(`${name}.val`).num();
  return {
    uid: id('uid'), gid: id('gid'), euid: id('euid'), egid: id('egid'), suid: id('suid'), sgid: id('sgid'), fsuid: id('fsuid'), fsgid: id('fsgid'),
    cap_inh: capWords(caps(cred.member('cap_inheritable'))),
    cap_prm: capWords(caps(cred.member('cap_permitted'))),
    cap_eff: capWords(caps(cred.member('cap_effective'))),
    cap_bnd: capWords(caps(cred.member('cap_bset'))),
    secbits: cred.member('securebits').num(),
    groups,
  };
}

/**
 * The thread's rseq registration (PTRACE_GET_RSEQ_CONFIGURATION), and the
 * abort address to resume at if it was stopped inside a restartable
 * critical section (criu/cr-dump.c fixup_thread_rseq).
 */
function rseq(t: KObject, ip: bigint): { entry?: Record<string, unknown>; abortIp?: bigint } {
  if (!t.has('rseq')) return {};
  const ptr = t.member('rseq').value();
  // Written for every thread of a kernel with rseq, registered or not, as the ptrace request reports it.
  const entry: Record<string, unknown> = {
    rseq_abi_pointer: ptr,
    // 6.1 has no rseq_len: the ABI size is sizeof(struct rseq).
    rseq_abi_size: t.has('rseq_len') ? t.member('rseq_len').num() : 32,
    signature: t.member('rseq_sig').num(),
  };
  if (ptr === 0n) return { entry };
  const area = readUserMemory(t, ptr, 32);
  const csPtr = area.readBigUInt64LE(8);
  if (csPtr === 0n) return { entry };
  const cs = readUserMemory(t, csPtr, 32);
  const flags = cs.readUInt32LE(4) | area.readUInt32LE(16);
  const start = cs.readBigUInt64LE(8);
  const postCommit = cs.readBigUInt64LE(16);
  const abort = cs.readBigUInt64LE(24);
  if (flags & RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL) {
    entry.rseq_cs_pointer = csPtr;
    return { entry };
  }
  return { entry, abortIp: ip - start < postCommit ? abort : undefined };
}

/** What the core image of a thread cannot represent, for the refusal message. */
export function coreProblems(t: KObject, who: string): string[] {
  const problems: string[] = [];
  if (t.member('seccomp.mode').num() !== 0) problems.push(`${who} runs under seccomp (not supported yet)`);
  if (t.member('policy').num() === SCHED_DEADLINE) problems.push(`${who} runs under SCHED_DEADLINE`);
  return problems;
}

/** What the process-wide state cannot represent: armed interval or POSIX timers. */
export function processProblems(leader: KObject, who: string): string[] {
  const problems: string[] = [];
  const signal = leader.member('signal').deref();
  // An enqueued hrtimer (HRTIMER_STATE_ENQUEUED) is an armed ITIMER_REAL.
  if ((signal.member('real_timer.state').num() & 1) !== 0) problems.push(`${who} has an armed ITIMER_REAL (setitimer/alarm): not supported yet`);
  const it = signal.member('it');
  if (it.index(0).member('expires').value() !== 0n || it.index(1).member('expires').value() !== 0n) {
    problems.push(`${who} has an armed ITIMER_PROF or ITIMER_VIRTUAL: not supported yet`);
  }
  const timers = signal.member('posix_timers').address;
  if (leader.prog.u64(timers, 'signal_struct.posix_timers') !== timers) problems.push(`${who} has POSIX timers (timer_create): not supported yet`);
  return problems;
}

function threadCore(t: KObject, leader: boolean): { threadInfo: Record<string, unknown>; threadCore: Record<string, unknown> } {
  const sasSize = t.member('sas_ss_size').value();
  const policy = t.member('policy').num();
  const threadInfo = criuThreadInfo(t);
  const gpregs = threadInfo.gpregs as Record<string, unknown>;
  const r = rseq(t, gpregs.ip as bigint);
  if (r.abortIp !== undefined) gpregs.ip = r.abortIp;
  return {
    threadInfo,
    threadCore: {
      futex_rla: t.member('robust_list').value(),
      // get_robust_list() always reports sizeof(struct robust_list_head).
      futex_rla_len: 24,
      sched_nice: t.member('static_prio').num() - NICE_BASE,
      sched_policy: policy,
      ...(policy === SCHED_FIFO || policy === SCHED_RR ? { sched_prio: t.member('rt_priority').num() } : {}),
      ...(leader ? {} : { blk_sigset: blockedMask(t) }),
      sas: {
        ss_sp: t.member('sas_ss_sp').value(),
        ss_size: sasSize,
        ss_flags: sasSize === 0n ? SS_DISABLE : t.member('sas_ss_flags').num(),
      },
      ...(t.member('pdeath_signal').num() !== 0 ? { pdeath_sig: t.member('pdeath_signal').num() } : {}),
      signals_p: signalQueue(t.member('pending')),
      creds: creds(t),
      comm: t.member('comm').string(),
      ...(r.entry ? { rseq_entry: r.entry } : {}),
    },
  };
}

/**
 * core-TID.img of every thread of a process (criu/cr-dump.c
 * dump_task_core_all, dump_task_thread): registers and FPU, the per-thread
 * state, and for the leader the process-wide part (tc).
 */
export function processCores(proc: DumpProcess, cgSet: number): Map<number, Record<string, unknown>> {
  const out = new Map<number, Record<string, unknown>>();
  proc.threads.forEach((t, i) => {
    const leader = i === 0;
    const { threadInfo, threadCore: tcore } = threadCore(t, leader);
    const entry: Record<string, unknown> = { mtype: 'X86_64', thread_info: threadInfo };
    if (leader) entry.tc = taskCore(t, cgSet);
    entry.thread_core = tcore;
    out.set(proc.vtids[i], entry);
  });
  return out;
}

function taskCore(leader: KObject, cgSet: number): Record<string, unknown> {
  const signal = leader.member('signal').deref();
  const zero = { isec: 0, iusec: 0, vsec: 0, vusec: 0 };
  // Every signal but SIGKILL and SIGSTOP, as rt_sigaction() reports it (criu/cr-restore.c wants SIGMAX - 2 entries).
  const action = leader.member('sighand').deref().member('action');
  const sigactions: Record<string, unknown>[] = [];
  for (let sig = 1; sig <= NSIG; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    const sa = action.index(sig - 1).member('sa');
    sigactions.push({
      sigaction: sa.member('sa_handler').value(), flags: sa.member('sa_flags').value(), restorer: sa.member('sa_restorer').value(),
      mask: sa.member('sa_mask.sig').index(0).value(), compat_sigaction: false,
    });
  }
  return {
    task_state: (leader.member('jobctl').value() & JOBCTL_STOPPED) !== 0n ? TASK_STOPPED : TASK_ALIVE,
    exit_code: 0,
    personality: leader.member('personality').num(),
    flags: leader.member('flags').num(),
    blk_sigset: blockedMask(leader),
    comm: leader.member('comm').string(),
    timers: { real: zero, virt: zero, prof: zero },
    rlimits: { rlimits: rlimits(leader) },
    cg_set: cgSet,
    signals_s: signalQueue(signal.member('shared_pending')),
    loginuid: leader.member('loginuid.val').num(),
    oom_score_adj: signal.member('oom_score_adj').num(),
    sigactions,
    child_subreaper: signal.bitfield('is_child_subreaper') === 1,
  };
}
