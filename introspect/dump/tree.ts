import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnsupportedError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { Program } from '../kernel/program.js';
import { processGroupPids } from '../linux/process-group.js';
import { taskExit } from '../linux/task-exit.js';
import { childProcesses, isKernelThread, stillnessState, taskIdentity } from '../linux/task-tree.js';
import { cgroupPath, findTask, forEachProcess, forEachThread, pidNumbers } from '../linux/tasks.js';

const MAX_PROCESSES = 1 << 16;

/** One process of the tree to dump, with its threads and its numbers in the tree's pid namespace. */
export interface DumpProcess {
  leader: KObject;
  /** Every thread, the leader first. */
  threads: KObject[];
  /** pid in the guest's initial pid namespace (what `--pid` and /proc of the guest use). */
  pid: number;
  /** Numbers as seen inside the root's pid namespace (what CRIU's images hold). */
  vpid: number;
  vppid: number;
  vpgid: number;
  vsid: number;
  /** Thread ids inside the root's pid namespace, the leader's first. */
  vtids: number[];
  /** Thread ids in the initial pid namespace. */
  tids: number[];
  children: DumpProcess[];
  parent?: DumpProcess;
  /**
   * Set when the process has exited and waits for its parent's wait()
   * (EXIT_ZOMBIE): CRIU dumps it as a pstree entry and a core image
   * holding its exit code, and restore makes it a zombie again.
   */
  zombie?: { exitCode: number };
}

export interface DumpTree {
  root: DumpProcess;
  /** Preorder, as CRIU walks its pstree (criu/pstree.c pstree_item_next). */
  processes: DumpProcess[];
  /** Depth of the root's pid namespace: its pid numbers are numbers[level]. */
  level: number;
}

/** The number of a struct pid in the namespace at `level`, 0 when it has none there (outside it). */
function numberAt(pid: KObject | undefined, level: number): number {
  if (!pid) return 0;
  const numbers = pidNumbers(pid);
  return level < numbers.length ? numbers[level] : 0;
}

/**
 * The tree below `rootTask`, in preorder. Iterative, with its own stack: a
 * guest can fork a chain thousands of processes deep, which recursion
 * would follow into a stack overflow of the host.
 */
function buildTree(rootTask: KObject): DumpTree {
  const rootPid = taskIdentity(rootTask).threadPid;
  const level = pidNumbers(rootPid).length - 1;
  const processes: DumpProcess[] = [];
  const visit = (leader: KObject, parent: DumpProcess | undefined): DumpProcess => {
    if (processes.length >= MAX_PROCESSES) throw new UnsupportedError(`the tree has more than ${MAX_PROCESSES} processes`);
    const threads = [...forEachThread(leader)];
    const leaderFirst = [leader, ...threads.filter((t) => t.address !== leader.address)];
    const group = processGroupPids(leader);
    const exit = taskExit(leader);
    const identities = leaderFirst.map(taskIdentity);
    const vtids = identities.map((t) => {
      const numbers = pidNumbers(t.threadPid);
      if (numbers.length - 1 !== level) {
        throw new UnsupportedError(`task ${t.pid} is in a nested pid namespace (level ${numbers.length - 1}, the tree's root is at ${level})`);
      }
      return numbers[level];
    });
    const proc: DumpProcess = {
      leader,
      threads: leaderFirst,
      pid: identities[0].pid,
      vpid: vtids[0],
      vppid: parent ? parent.vpid : 0,
      vpgid: numberAt(group.pgid, level),
      vsid: numberAt(group.sid, level),
      vtids,
      tids: identities.map((t) => t.pid),
      children: [],
      parent,
      ...(exit.phase === 'zombie' ? { zombie: { exitCode: exit.exitCode } } : {}),
    };
    processes.push(proc);
    parent?.children.push(proc);
    return proc;
  };
  // Children go on the stack last first, so that they come off in order: the same preorder as a recursive walk.
  const stack: { leader: KObject; parent?: DumpProcess }[] = [{ leader: rootTask }];
  let root: DumpProcess | undefined;
  while (stack.length) {
    const { leader, parent } = stack.pop()!;
    const proc = visit(leader, parent);
    root ??= proc;
    const children = [...childProcesses(proc.threads)];
    if (stack.length + children.length > MAX_PROCESSES) throw new UnsupportedError(`the tree has more than ${MAX_PROCESSES} processes`);
    for (let i = children.length - 1; i >= 0; i--) stack.push({ leader: children[i], parent: proc });
  }
  return { root: root!, processes, level };
}

/** The process tree rooted at `pid` (in the guest's initial pid namespace). */
export function treeOfPid(prog: Program, pid: number): DumpTree {
  const task = findTask(prog, pid);
  const id = taskIdentity(task);
  if (id.tgid !== pid) throw new InvalidArgumentError(`pid ${pid} is a thread of process ${id.tgid}: give the process`);
  if (id.kernelThread) throw new InvalidArgumentError(`pid ${pid} is a kernel thread`);
  if (pid === 1) throw new InvalidArgumentError('pid 1 is the guest\'s init: dump a process tree below it');
  return buildTree(task);
}

/** A cgroup v2 path as given (--cgroup), checked and without trailing slashes. */
export function cgroupArg(path: string): string {
  if (!path.startsWith('/') || path.split('/').includes('..')) throw new InvalidArgumentError(`cgroup ${path}: give an absolute cgroup v2 path`);
  const norm = path.length > 1 ? path.replace(/\/+$/, '') : path;
  if (norm === '/' || norm === '') throw new InvalidArgumentError('cgroup /: the root cgroup holds the whole guest');
  return norm;
}

/**
 * Every process of a cgroup v2 path (and the cgroups below it), which must
 * form one tree: CRIU images hold one tree under one root task.
 */
export function treeOfCgroup(prog: Program, path: string): DumpTree {
  const norm = cgroupArg(path);
  const members = new Map<bigint, KObject>();
  for (const proc of forEachProcess(prog)) {
    if (isKernelThread(proc)) continue;
    const cg = cgroupPath(proc);
    if (cg === norm || cg.startsWith(norm + '/')) members.set(proc.address, proc);
  }
  if (members.size === 0) throw new NotFoundError(`no process in cgroup ${norm}`);
  const roots = [...members.values()].filter((p) => !members.has(taskIdentity(p).realParent));
  if (roots.length !== 1) {
    throw new UnsupportedError(`cgroup ${norm} holds ${roots.length} separate process trees (roots: ${roots.map((r) => taskIdentity(r).pid).join(', ')}); ` +
      'a checkpoint holds one tree');
  }
  const tree = buildTree(roots[0]);
  const outside = tree.processes.filter((p) => !members.has(p.leader.address));
  if (outside.length) {
    throw new UnsupportedError(`processes ${outside.map((p) => p.pid).join(', ')} descend from the tree's root but are outside cgroup ${norm}`);
  }
  return tree;
}

/**
 * Why a tree cannot be read as still. `exit` and `cpu` pass by themselves:
 * a task finishing do_exit (after cgroup_exit, the freezer no longer
 * waits for it) or a frozen task finishing its context switch.
 */
export interface FrozenProblem {
  kind: 'exit' | 'cpu' | 'frozen' | 'traced';
  text: string;
}

export function isTransient(p: FrozenProblem): boolean {
  return p.kind === 'exit' || p.kind === 'cpu';
}

/**
 * The state of the tree must not change while it is read: every thread is
 * frozen by the cgroup v2 freezer (task->frozen, set in
 * cgroup_enter_frozen) and off every CPU (task->on_cpu), and none is traced.
 * A zombie leader never runs again: it is read as it is, as CRIU reads it
 * (criu/cr-dump.c dump_zombies); a task still in do_exit is not yet one.
 * Returns what is wrong, empty when nothing is.
 */
export function frozenProblems(tree: DumpTree): FrozenProblem[] {
  const problems: FrozenProblem[] = [];
  const say = (kind: FrozenProblem['kind'], text: string) => problems.push({ kind, text });
  for (const proc of tree.processes) {
    const comm = taskIdentity(proc.leader).comm;
    proc.threads.forEach((t, i) => {
      const tid = taskIdentity(t).pid;
      const who = tid === proc.pid ? `pid ${proc.pid} (${comm})` : `thread ${tid} of pid ${proc.pid} (${comm})`;
      const st = stillnessState(t);
      const zombieLeader = i === 0 && st.exit === 'zombie';
      // The tree was built before it became one (or it stopped being one): select it again.
      if (i === 0 && zombieLeader !== (proc.zombie !== undefined)) say('exit', `${who} exited while the tree was read: try again`);
      else if (zombieLeader) { /* nothing to freeze */ }
      else if (st.exit !== 'alive') say('exit', `${who} is exiting (in do_exit): try again`);
      else if (!st.frozen) say('frozen', `${who} is not frozen`);
      else if (st.onCpu) say('cpu', `${who} is still on a CPU`);
      if (st.traced) say('traced', `${who} is traced (ptrace)`);
    });
  }
  return problems;
}

/**
 * Throws unless the whole tree is frozen and off-CPU (see frozenProblems).
 * The hint (how to freeze it) is left out when only tasks in the middle of
 * exiting stand in the way: freezing would not help, trying again does.
 */
export function requireFrozen(tree: DumpTree, hint = ''): void {
  const problems = frozenProblems(tree);
  if (!problems.length) return;
  const texts = problems.map((p) => p.text);
  const exiting = problems.some((p) => p.kind === 'exit') && problems.every(isTransient);
  throw new FailedPreconditionError(`cannot dump: ${texts.slice(0, 8).join('; ')}${texts.length > 8 ? `; and ${texts.length - 8} more` : ''}${exiting ? '' : hint}`);
}
