import { TASK_ALIVE, TASK_STOPPED } from '../../criu/index.js';
import { KObject } from '../../kernel/object.js';
import { loginUid, credentials, supplementaryGroups } from '../../linux/credentials.js';
import { processAttributes } from '../../linux/process-attributes.js';
import { rlimits } from '../../linux/rlimits.js';
import { rseqState } from '../../linux/rseq.js';
import { SIGKILL, SIGSTOP, savedBlockedMask, sharedQueuedSignals, sigactions, threadQueuedSignals } from '../../linux/signals.js';
import { threadAttributes } from '../../linux/thread-attributes.js';
import { guestClocks } from '../../linux/clocks.js';
import { Itimer, processItimers } from '../../linux/itimers.js';
import { posixTimers } from '../../linux/posix-timers.js';
import { pidNumbers } from '../../linux/tasks.js';
import { DumpContext, TaskDump } from '../context.js';
import { Dumped } from '../planned-image.js';
import { DumpProblem } from '../problem.js';
import { ThreadSeccomp, seccompFilters } from '../seccomp-filters.js';
import { criuThreadInfo } from '../thread-info.js';
import { DumpProcess } from '../tree.js';
import { TaskPart } from './task-part.js';

const NSEC = 1_000_000_000n;
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
function threadProblems(t: KObject, who: string, seccomp: ThreadSeccomp | undefined): DumpProblem[] {
  const a = threadAttributes(t);
  const problems: DumpProblem[] = [];
  if (seccomp?.problem) problems.push(new DumpProblem(who, 'seccomp', seccomp.problem, { sentence: true }));
  if (a.policy === SCHED_DEADLINE) problems.push(new DumpProblem(who, 'sched-deadline', 'runs under SCHED_DEADLINE', { sentence: true }));
  return problems;
}

/** ns as itimer_entry's seconds and microseconds (getitimer's timeval, truncated). */
function itimer(t: Itimer): Record<string, unknown> {
  return { isec: t.interval / NSEC, iusec: (t.interval % NSEC) / 1000n, vsec: t.value / NSEC, vusec: (t.value % NSEC) / 1000n };
}

/**
 * tc.timers (criu/parasite-syscall.c encode_itimer, encode_posix_timer):
 * getitimer() of the three interval timers and, oldest first, every POSIX
 * timer with what timer_gettime() and timer_getoverrun() return; a thread
 * target is named by its pid in the tree's namespace.
 */
function taskTimers(proc: DumpProcess, who: string): { timers?: Record<string, unknown>; problems: DumpProblem[] } {
  const clocks = guestClocks(proc.leader.prog);
  const it = processItimers(proc.leader, clocks);
  const problems: DumpProblem[] = [];
  const posix = posixTimers(proc.leader, clocks).map((p) => {
    if (p.unsupported) problems.push(new DumpProblem(who, 'timer', p.unsupported));
    let notify: Record<string, unknown> = {};
    if (p.notifyPid) {
      const i = proc.tids.indexOf(pidNumbers(p.notifyPid)[0]);
      if (i < 0) problems.push(new DumpProblem(who, 'timer', `POSIX timer ${p.id} signals a thread that is not one of its own`));
      else notify = { notify_thread_id: proc.vtids[i] };
    }
    return {
      it_id: p.id, clock_id: p.clockId, si_signo: p.signo, it_sigev_notify: p.notify, sival_ptr: p.sivalPtr, overrun: p.overrun,
      isec: p.interval / NSEC, insec: p.interval % NSEC, vsec: p.value / NSEC, vnsec: p.value % NSEC, ...notify,
    };
  });
  if (problems.length) return { problems };
  return { timers: { real: itimer(it.real), virt: itimer(it.virt), prof: itimer(it.prof), ...(posix.length ? { posix } : {}) }, problems };
}

function threadCore(t: KObject, leader: boolean, seccomp: Record<string, unknown>): { threadInfo: Record<string, unknown>; threadCore: Record<string, unknown> } {
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
      ...seccomp,
      comm: a.comm,
      ...(r.entry ? { rseq_entry: r.entry } : {}),
    },
  };
}

function taskCore(leader: KObject, cgSet: number, timers: Record<string, unknown>): Record<string, unknown> {
  const p = processAttributes(leader);
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
    timers,
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
  dump(ctx: DumpContext, task: TaskDump): Dumped {
    const { proc, who } = task;
    const problems: DumpProblem[] = [];
    const seccomp = seccompFilters(ctx.tree).threads;
    proc.threads.forEach((t, i) => problems.push(...threadProblems(t, i === 0 ? who : `thread ${proc.tids[i]} of ${who}`, seccomp.get(proc.tids[i]))));
    const timers = taskTimers(proc, who);
    problems.push(...timers.problems);
    if (problems.length || !timers.timers) return { problems };
    const images = proc.threads.map((t, i) => {
      const leader = i === 0;
      const { threadInfo, threadCore: tcore } = threadCore(t, leader, seccomp.get(proc.tids[i])?.fields ?? {});
      const entry: Record<string, unknown> = { mtype: 'X86_64', thread_info: threadInfo };
      if (leader) entry.tc = taskCore(t, task.cgSet, timers.timers!);
      entry.thread_core = tcore;
      return { kind: 'CORE', id: proc.vtids[i], entries: [entry] };
    });
    return { images };
  },
};
