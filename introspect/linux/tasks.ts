import { BadDataError, NotFoundError } from '../../common/errors.js';
import { KObject, listForEach } from '../kernel/object.js';
import { Program } from '../kernel/program.js';

/** At most this many tasks or threads of one process are walked; a bigger guest is corrupt or hostile. */
const MAX_TASKS = 1 << 20;
const MAX_PID_LEVEL = 32;
const MAX_CGROUP_DEPTH = 256;

/** Every process (thread-group leader) of the guest, from init_task's `tasks` list; the idle task is not one. */
export function* forEachProcess(prog: Program): Generator<KObject> {
  const init = KObject.struct(prog, 'task_struct', prog.symbols.address('init_task'));
  yield* listForEach(prog, init.member('tasks').address, 'task_struct', 'tasks', MAX_TASKS);
}

/** The threads of a process: signal->thread_head, linked through thread_node (6.1; later kernels keep it). */
export function* forEachThread(task: KObject): Generator<KObject> {
  const head = task.member('signal').deref().member('thread_head').address;
  yield* listForEach(task.prog, head, 'task_struct', 'thread_node', MAX_TASKS);
}

/** The pid numbers of a struct pid, from the initial pid namespace inwards (like NSpid in /proc/PID/status). */
export function pidNumbers(pid: KObject): number[] {
  const level = pid.member('level').num();
  if (level < 0 || level > MAX_PID_LEVEL) throw new BadDataError(`${pid.path}.level is ${level}`);
  const numbers = pid.member('numbers');
  const out: number[] = [];
  for (let i = 0; i <= level; i++) out.push(numbers.flexIndex(i, level + 1).member('nr').num());
  return out;
}

/** The /proc state letter of a task (fs/proc/array.c task_state_array, sched.h __task_state_index). */
export function stateLetter(task: KObject): string {
  const state = task.member('__state').num();
  const exit = task.member('exit_state').num();
  const TASK_REPORT = 0x7f;
  const TASK_IDLE = 0x402;
  const TASK_RTLOCK_WAIT = 0x1000;
  let report = (state | exit) & TASK_REPORT;
  if ((state & TASK_IDLE) === TASK_IDLE) report = 0x80;
  if (state === TASK_RTLOCK_WAIT) report = 2;
  const fls = report === 0 ? 0 : 32 - Math.clz32(report);
  return 'RSDTtXZPI'[fls];
}

/** The path of a task's cgroup in the cgroup v2 hierarchy, as in the `0::` line of /proc/PID/cgroup. */
export function cgroupPath(task: KObject): string {
  return cssSetPath(task.member('cgroups').deref(), task.path);
}

/**
 * The root of a task's cgroup namespace, as a path in the whole hierarchy
 * (cgroup_namespace.root_cset): "/" unless the task unshared one.
 */
export function cgroupNsRoot(task: KObject): string {
  return cssSetPath(task.member('nsproxy').deref().member('cgroup_ns').deref().member('root_cset').deref(), `${task.path} cgroup namespace`);
}

function cssSetPath(cset: KObject, what: string): string {
  let kn = cset.member('dfl_cgrp').deref().member('kn').deref();
  const parts: string[] = [];
  for (let depth = 0; ; depth++) {
    if (depth > MAX_CGROUP_DEPTH) throw new BadDataError(`cgroup of ${what} nests deeper than ${MAX_CGROUP_DEPTH}`);
    const parent = kn.member('parent').value();
    if (parent === 0n) break;
    parts.unshift(kn.prog.cstring(kn.member('name').value(), 256, `${kn.path}.name`));
    kn = kn.member('parent').deref();
  }
  return '/' + parts.join('/');
}

const PF_WQ_WORKER = 0x20;
const PF_KTHREAD = 0x200000;
const PROC_COMM_LEN = 64;

/**
 * The name /proc/PID/comm shows (fs/proc/array.c proc_task_name): a kernel
 * thread's full name (kthread->full_name, 5.17+), a workqueue worker's comm
 * with its last work's description (wq_worker_comm), else task->comm.
 */
export function procComm(task: KObject): string {
  const comm = task.member('comm').string();
  const flags = task.member('flags').num();
  if (!(flags & (PF_KTHREAD | PF_WQ_WORKER)) || !task.has('worker_private')) return comm;
  const kthreadPtr = task.member('worker_private').value();
  if (kthreadPtr === 0n) return comm;
  const kthread = KObject.struct(task.prog, 'kthread', kthreadPtr);
  if (flags & PF_WQ_WORKER) {
    const data = kthread.member('data').value();
    if (data === 0n) return comm;
    const worker = KObject.struct(task.prog, 'worker', data);
    if (worker.member('pool').value() === 0n) return comm;
    const desc = worker.member('desc').string();
    if (!desc) return comm;
    return (comm + (worker.member('current_work').value() !== 0n ? '+' : '-') + desc).slice(0, PROC_COMM_LEN - 1);
  }
  if (!kthread.has('full_name')) return comm;
  const fullName = kthread.member('full_name').value();
  return fullName === 0n ? comm : task.prog.cstring(fullName, PROC_COMM_LEN - 1, `${kthread.path}.full_name`);
}

/** One process as `ovmigrate ps` prints it. */
export interface ProcessInfo {
  pid: number;
  tgid: number;
  ppid: number;
  comm: string;
  state: string;
  nspid: number[];
  uid: number;
  gid: number;
  cgroup: string;
  threads: number[];
  /** Every thread is frozen by the cgroup v2 freezer (task->frozen, set in cgroup_enter_frozen). */
  frozen: boolean;
  /** Some thread is running on a CPU right now (task->on_cpu). */
  onCpu: boolean;
}

export function processInfo(task: KObject): ProcessInfo {
  const cred = task.member('cred').deref();
  const parent = task.member('real_parent').deref();
  const tgid = task.member('tgid').num();
  const threadTasks = [...forEachThread(task)];
  const threads = threadTasks.map((t) => t.member('pid').num());
  return {
    pid: task.member('pid').num(),
    tgid,
    // /proc reports 0 for init's parent (the idle task).
    ppid: tgid <= 1 ? 0 : parent.member('tgid').num(),
    comm: procComm(task),
    state: stateLetter(task),
    nspid: pidNumbers(task.member('thread_pid').deref()),
    uid: cred.member('uid.val').num(),
    gid: cred.member('gid.val').num(),
    cgroup: cgroupPath(task),
    threads,
    frozen: threadTasks.length > 0 && threadTasks.every((t) => t.bitfield('frozen') === 1),
    onCpu: threadTasks.some((t) => t.member('on_cpu').num() !== 0),
  };
}

/** The task (process or thread) with this pid in the initial pid namespace. */
export function findTask(prog: Program, pid: number): KObject {
  for (const proc of forEachProcess(prog)) {
    if (proc.member('pid').num() === pid) return proc;
    if (proc.member('tgid').num() === pid) continue;
    for (const thread of forEachThread(proc)) if (thread.member('pid').num() === pid) return thread;
  }
  throw new NotFoundError(`no task with pid ${pid} in the guest`);
}
