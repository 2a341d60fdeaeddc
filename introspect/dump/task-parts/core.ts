import { TASK_ALIVE, TASK_STOPPED } from '../../criu/index.js';
import { KObject } from '../../kernel/object.js';
import { loginUid, credentials, supplementaryGroups } from '../../linux/credentials.js';
import { processAttributes } from '../../linux/process-attributes.js';
import { rlimits } from '../../linux/rlimits.js';
import { rseqState } from '../../linux/rseq.js';
import { SIGKILL, SIGSTOP, savedBlockedMask, sharedQueuedSignals, sigactions, threadQueuedSignals } from '../../linux/signals.js';
import { threadAttributes } from '../../linux/thread-attributes.js';
import { armedTimers } from '../../linux/timers.js';
import { DumpContext, TaskDump } from '../context.js';
import { Dumped } from '../planned-image.js';
import { DumpProblem } from '../problem.js';
import { criuThreadInfo } from '../thread-info.js';
import { TaskPart } from './task-part.js';

/** include/uapi/linux/signal.h */
const SS_DISABLE = 2;
/** include/uapi/linux/sched.h */
const SCHED_FIFO = 1;
const SCHED_RR = 2;
const SCHED_DEADLINE = 6;
/** include/uapi/linux/rseq.h */
const RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL = 1;
/** get_robust_list() always reports sizeof(struct robust_list_head). */
const ROBUST_LIST_HEAD_SIZE = 24;

function capWords(cap: bigint): number[] {
  return [Number(cap & 0xffffffffn), Number(cap >> 32n)];
}

function signalQueue(siginfos: Buffer[]): { signals: { siginfo: Buffer }[] } {
  return { signals: siginfos.map((siginfo) => ({ siginfo })) };
}

/** creds_entry (criu/cr-dump.c dump_thread_creds): capability sets as two u32 words each. */
function creds(t: KObject): Record<string, unknown> {
  const c = credentials(t);
  return {
    uid: c.uid, gid: c.gid, euid: c.euid, egid: c.egid, suid: c.suid, sgid: c.sgid, fsuid: c.fsuid, fsgid: c.fsgid,
    cap_inh: capWords(c.cap_inheritable as bigint),
    cap_prm: capWords(c.cap_permitted as bigint),
    cap_eff: capWords(c.cap_effective as bigint),
    cap_bnd: capWords(c.cap_bset as bigint),
    secbits: c.securebits,
    groups: supplementaryGroups(t),
  };
}

/**
 * The thread's rseq registration (PTRACE_GET_RSEQ_CONFIGURATION), and the
 * abort address to resume at if it was stopped inside a restartable
 * critical section (criu/cr-dump.c fixup_thread_rseq).
 */
function rseq(t: KObject, ip: bigint): { entry?: Record<string, unknown>; abortIp?: bigint } {
  const state = rseqState(t);
  if (!state) return {};
  // Written for every thread of a kernel with rseq, registered or not, as the ptrace request reports it.
  const entry: Record<string, unknown> = { rseq_abi_pointer: state.pointer, rseq_abi_size: state.size, signature: state.signature };
  const cs = state.cs;
  if (!cs) return { entry };
  if (cs.flags & RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL) {
    entry.rseq_cs_pointer = cs.pointer;
    return { entry };
  }
  return { entry, abortIp: ip - cs.start < cs.postCommitOffset ? cs.abort : undefined };
}

/** What the core image of a thread cannot represent. */
function threadProblems(t: KObject, who: string): DumpProblem[] {
  const a = threadAttributes(t);
  const problems: DumpProblem[] = [];
  if (a.seccompMode !== 0) problems.push(new DumpProblem(who, 'seccomp', 'runs under seccomp (not supported yet)', { sentence: true }));
  if (a.policy === SCHED_DEADLINE) problems.push(new DumpProblem(who, 'sched-deadline', 'runs under SCHED_DEADLINE', { sentence: true }));
  return problems;
}

/** What the process-wide state cannot represent: armed interval or POSIX timers. */
function processProblems(leader: KObject, who: string): DumpProblem[] {
  const timers = armedTimers(leader);
  const problems: DumpProblem[] = [];
  const say = (detail: string) => problems.push(new DumpProblem(who, 'timer', detail, { sentence: true }));
  if (timers.real) say('has an armed ITIMER_REAL (setitimer/alarm): not supported yet');
  if (timers.profOrVirtual) say('has an armed ITIMER_PROF or ITIMER_VIRTUAL: not supported yet');
  if (timers.posix) say('has POSIX timers (timer_create): not supported yet');
  return problems;
}

function threadCore(t: KObject, leader: boolean): { threadInfo: Record<string, unknown>; threadCore: Record<string, unknown> } {
  const a = threadAttributes(t);
  const threadInfo = criuThreadInfo(t);
  const gpregs = threadInfo.gpregs as Record<string, unknown>;
  const r = rseq(t, gpregs.ip as bigint);
  if (r.abortIp !== undefined) gpregs.ip = r.abortIp;
  return {
    threadInfo,
    threadCore: {
      futex_rla: a.robustList,
      futex_rla_len: ROBUST_LIST_HEAD_SIZE,
      sched_nice: a.nice,
      sched_policy: a.policy,
      ...(a.policy === SCHED_FIFO || a.policy === SCHED_RR ? { sched_prio: a.rtPriority } : {}),
      ...(leader ? {} : { blk_sigset: savedBlockedMask(t) }),
      sas: {
        ss_sp: a.altStack.sp,
        ss_size: a.altStack.size,
        ss_flags: a.altStack.size === 0n ? SS_DISABLE : a.altStack.flags,
      },
      ...(a.pdeathSignal !== 0 ? { pdeath_sig: a.pdeathSignal } : {}),
      signals_p: signalQueue(threadQueuedSignals(t)),
      creds: creds(t),
      comm: a.comm,
      ...(r.entry ? { rseq_entry: r.entry } : {}),
    },
  };
}

function taskCore(leader: KObject, cgSet: number): Record<string, unknown> {
  const p = processAttributes(leader);
  const zero = { isec: 0, iusec: 0, vsec: 0, vusec: 0 };
  // Every signal but SIGKILL and SIGSTOP, as rt_sigaction() reports it (criu/cr-restore.c wants SIGMAX - 2 entries).
  const sigs = sigactions(leader).filter((sa) => sa.signal !== SIGKILL && sa.signal !== SIGSTOP).map((sa) => ({
    sigaction: sa.handler, flags: sa.flags, restorer: sa.restorer, mask: sa.mask, compat_sigaction: false,
  }));
  return {
    task_state: p.stopped ? TASK_STOPPED : TASK_ALIVE,
    exit_code: 0,
    personality: p.personality,
    flags: p.flags,
    blk_sigset: savedBlockedMask(leader),
    comm: threadAttributes(leader).comm,
    timers: { real: zero, virt: zero, prof: zero },
    rlimits: { rlimits: rlimits(leader) },
    cg_set: cgSet,
    signals_s: signalQueue(sharedQueuedSignals(leader)),
    loginuid: loginUid(leader),
    oom_score_adj: p.oomScoreAdj,
    sigactions: sigs,
    child_subreaper: p.childSubreaper,
  };
}

/**
 * core-TID.img of every thread of a process (criu/cr-dump.c
 * dump_task_core_all, dump_task_thread): registers and FPU, the per-thread
 * state, and for the leader the process-wide part (tc).
 */
export const coreImages: TaskPart = {
  name: 'core',
  dump(_ctx: DumpContext, task: TaskDump): Dumped {
    const { proc, who } = task;
    const problems: DumpProblem[] = [];
    proc.threads.forEach((t, i) => problems.push(...threadProblems(t, i === 0 ? who : `thread ${proc.tids[i]} of ${who}`)));
    problems.push(...processProblems(proc.leader, who));
    if (problems.length) return { problems };
    const images = proc.threads.map((t, i) => {
      const leader = i === 0;
      const { threadInfo, threadCore: tcore } = threadCore(t, leader);
      const entry: Record<string, unknown> = { mtype: 'X86_64', thread_info: threadInfo };
      if (leader) entry.tc = taskCore(t, task.cgSet);
      entry.thread_core = tcore;
      return { kind: 'CORE', id: proc.vtids[i], entries: [entry] };
    });
    return { images };
  },
};
