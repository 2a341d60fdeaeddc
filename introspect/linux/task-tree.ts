import { KObject, listForEach } from '../kernel/object.js';
import { ExitPhase, taskExit } from './task-exit.js';

/** More children than this on one task is corrupt (pid_max is at most 4 Mi, a real fork tree far smaller). */
const MAX_CHILDREN = 1 << 16;
/** include/linux/sched.h */
const PF_KTHREAD = 0x200000;

/** Who a task is and where it hangs in the process tree (task_struct's pid, tgid, flags, real_parent, thread_pid). */
export interface TaskIdentity {
  /** Thread id in the initial pid namespace. */
  pid: number;
  tgid: number;
  /** task->comm, what prctl(PR_GET_NAME) gives. */
  comm: string;
  kernelThread: boolean;
  /** The real_parent task_struct's address. */
  realParent: bigint;
  /** The task's struct pid (thread_pid). */
  threadPid: KObject;
}

export function taskIdentity(task: KObject): TaskIdentity {
  return {
    pid: task.member('pid').num(),
    tgid: task.member('tgid').num(),
    comm: task.member('comm').string(),
    kernelThread: isKernelThread(task),
    realParent: task.member('real_parent').value(),
    threadPid: task.member('thread_pid').deref(),
  };
}

/** The processes a task's threads forked (each thread's `children`): children hang off the thread that forked them. */
export function* childProcesses(threads: KObject[]): Generator<KObject> {
  for (const t of threads) yield* listForEach(t.prog, t.member('children').address, 'task_struct', 'sibling', MAX_CHILDREN);
}

/** Whether a task may be read as still: how far it is in exiting, frozen by the cgroup v2 freezer (task->frozen), on a CPU, traced. */
export interface StillnessState {
  exit: ExitPhase;
  frozen: boolean;
  onCpu: boolean;
  traced: boolean;
}

export function stillnessState(t: KObject): StillnessState {
  return {
    exit: taskExit(t).phase,
    frozen: t.bitfield('frozen') === 1,
    onCpu: t.member('on_cpu').num() !== 0,
    traced: t.member('ptrace').num() !== 0,
  };
}

/** A kernel thread (PF_KTHREAD): no user memory, never part of a dump. */
export function isKernelThread(task: KObject): boolean {
  return (task.member('flags').num() & PF_KTHREAD) !== 0;
}
