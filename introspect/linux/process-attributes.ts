import { KObject } from '../kernel/object.js';

/** include/linux/sched/jobctl.h */
const JOBCTL_STOPPED = 1n << 26n;

/** Process-wide state of a thread-group leader that a checkpoint carries. */
export interface ProcessAttributes {
  personality: number;
  /** task->flags (PF_*). */
  flags: number;
  /** Stopped by job control (SIGSTOP and friends). */
  stopped: boolean;
  oomScoreAdj: number;
  /** prctl(PR_SET_CHILD_SUBREAPER). */
  childSubreaper: boolean;
}

export function processAttributes(leader: KObject): ProcessAttributes {
  const signal = leader.member('signal').deref();
  return {
    personality: leader.member('personality').num(),
    flags: leader.member('flags').num(),
    stopped: (leader.member('jobctl').value() & JOBCTL_STOPPED) !== 0n,
    oomScoreAdj: signal.member('oom_score_adj').num(),
    childSubreaper: signal.bitfield('is_child_subreaper') === 1,
  };
}
