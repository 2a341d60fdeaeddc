import { KObject } from '../kernel/object.js';

/** include/linux/sched/prio.h: nice = static_prio - 120. */
const NICE_BASE = 120;

/** What a thread's own system calls set on it, as the getters of each report it. */
export interface ThreadAttributes {
  comm: string;
  /** sched_getscheduler(); SCHED_* of include/uapi/linux/sched.h. */
  policy: number;
  nice: number;
  /** sched_getparam() of a real-time policy. */
  rtPriority: number;
  /** get_robust_list(). */
  robustList: bigint;
  /** sigaltstack(); flags are meaningful only with a size. */
  altStack: { sp: bigint; size: bigint; flags: number };
  /** prctl(PR_GET_PDEATHSIG). */
  pdeathSignal: number;
  /** SECCOMP_MODE_* (0: none). */
  seccompMode: number;
}

export function threadAttributes(t: KObject): ThreadAttributes {
  return {
    comm: t.member('comm').string(),
    policy: t.member('policy').num(),
    nice: t.member('static_prio').num() - NICE_BASE,
    rtPriority: t.member('rt_priority').num(),
    robustList: t.member('robust_list').value(),
    altStack: { sp: t.member('sas_ss_sp').value(), size: t.member('sas_ss_size').value(), flags: t.member('sas_ss_flags').num() },
    pdeathSignal: t.member('pdeath_signal').num(),
    seccompMode: t.member('seccomp.mode').num(),
  };
}
