import { ResourceExhaustedError, UnsupportedError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { KObject } from '../kernel/object.js';
import { Program } from '../kernel/program.js';
import { taskRoot } from '../linux/d-path.js';
import { namespaces, netNamespaceInum, taskNsproxy } from '../linux/namespaces.js';
import { PageInfo } from '../linux/pages.js';
import { taskIdentity } from '../linux/task-tree.js';
import { cgroupNsRoot, cgroupPath, findTask, pidNumbers } from '../linux/tasks.js';
import { DumpBudget, DumpQuota, throwIfAborted } from './budget.js';
import { ContainerSpec } from './container.js';
import { DumpContext, TaskDump, TaskIds } from './context.js';
import { FileTable } from './files.js';
import { IdAllocator, NS_KINDS } from './ids.js';
import { ImageDir } from './image-dir.js';
import { planPages } from './memory.js';
import { Dumped, PlannedImage, writeImages } from './planned-image.js';
import { DumpProblem, DumpRefusedError } from './problem.js';
import { PageWriter } from './pages.js';
import { KOBJ, TASK_PARTS, ZOMBIE_PARTS, zombieProblems } from './task-parts/index.js';
import { TREE_PARTS } from './tree-parts/index.js';
import { DumpTree, requireFrozen } from './tree.js';

/** Stops and resumes the guest's vCPUs (QMP stop/cont) for the final, consistent read. */
export interface VmPause {
  /** Stops the vCPUs for at most `budgetMs`: past it they must resume whatever the dump does (a watchdog). */
  stop(budgetMs: number): Promise<void>;
  cont(): Promise<void>;
}

export interface DumpOptions {
  /** Pause the VM to verify and fix up the pages read while it ran; without it, verify by walking again. */
  pause?: VmPause;
  /** Progress lines for a terminal. */
  progress?: (line: string) => void;
  /** Time the caller spent freezing the tree, for stats-dump. */
  freezingMs?: number;
  /** Dump the tree as a runc container: its namespaces and mounts, as its bundle describes them. */
  container?: ContainerSpec;
  /** The VM's quota for one dump; unset bounds follow its RAM size (budget.ts). */
  quota?: DumpQuota;
  /** The request's deadline: checked while the page tables are walked, not only at the end. */
  signal?: AbortSignal;
  /** Dump connected TCP sockets for restore to close them, as `criu dump --tcp-close`; without it they are refused. */
  tcpClose?: boolean;
  /**
   * Dump established TCP sockets with their repair state and queued data, as `criu dump --tcp-established`.
   * The caller guarantees the tree never runs on after the dump (it is killed): the sockets stay live in the guest.
   */
  tcpEstablished?: boolean;
  /** Dump the tree's own network namespace (links, addresses, routes), as `criu dump` without --empty-ns network; without it, as runc, it is left out. */
  netNs?: boolean;
}

export interface DumpReport {
  dir: string;
  root: number;
  processes: { pid: number; vpid: number; threads: number[]; comm: string }[];
  pagesScanned: number;
  pagesWritten: number;
  bytesWritten: number;
  /** How the pages read while the guest ran were checked: under a VM pause, or by walking the page tables again. */
  consistency: 'vm-paused' | 'rewalked';
  /** How long the vCPUs were stopped, when paused. */
  pauseMs?: number;
  /** Pages that moved while they were read, and were read again. */
  pagesReread: number;
  ms: { plan: number; memdump: number; total: number };
}

function now(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/**
 * Writes the CRIU images of a frozen process tree into `dir` from guest RAM
 * alone: what `criu dump` would write for it (inventory, pstree, core,
 * ids, mm, pagemap/pages, fs, files/fdinfo, pipes, unix sockets, cgroup,
 * stats). Each process goes through the task parts (task-parts/index.ts),
 * the whole tree through the tree parts (tree-parts/index.ts); open files
 * and namespaces through the dumper of their kind (fds/, namespaces/).
 * Anything the images could not carry fails the dump before a file is
 * written, listing every problem and the task it belongs to.
 */
export async function dumpTree(prog: Program, tree: DumpTree, dir: string, opts: DumpOptions = {}): Promise<DumpReport> {
  const t0 = now();
  const progress = opts.progress ?? (() => undefined);
  prog.refresh();
  requireFrozen(tree, ': freeze its cgroup first (echo 1 > cgroup.freeze)');
  const dead = zombieProblems(tree);
  if (dead.length) throw new DumpRefusedError(tree.root.pid, dead);
  const pages = new PageInfo(prog);
  const ids = new IdAllocator();
  const init = findTask(prog, 1);
  const initNs = namespaces(init);
  // The dumper's own objects and namespaces come first, as CRIU's own do (inventory root_ids).
  const rootIds: TaskIds = {};
  for (const [kind] of KOBJ) rootIds[`${kind}_id`] = ids.kobjId(kind, 0n).id;
  for (const kind of NS_KINDS) {
    const inum = initNs[kind];
    if (inum !== undefined) rootIds[`${kind}_ns_id`] = ids.nsId(BigInt(inum));
  }
  ids.cgSetId(`${cgroupPath(init)}:0`);
  // A container's own mounts are dumped: its files are named inside them, as CRIU does when it dumps a mount namespace.
  const ownMounts = namespaces(tree.root.leader).mnt !== initNs.mnt;
  const netOf = (task: KObject) => taskNsproxy(task)?.member('net_ns').value();
  const treeNets = new Set(tree.processes.flatMap((p) => netOf(p.leader) ?? []));
  const files = new FileTable({
    prog, ids, pages,
    netNamespaces: { tree: treeNets, own: netOf(tree.root.leader) !== netOf(init) },
    tcpClose: opts.tcpClose,
    tcpEstablished: opts.tcpEstablished,
    sessionLeaders: new Set(tree.processes.filter((p) => p.vsid === p.vpid).map((p) => p.vpid)),
    root: ownMounts ? taskRoot(tree.root.leader) : taskRoot(init),
    mntIds: ownMounts,
    netNsId: (net) => ids.nsId(netNamespaceInum(KObject.struct(prog, 'net', net))),
    vpid: (pid) => {
      const numbers = pidNumbers(KObject.struct(prog, 'pid', pid));
      return tree.level < numbers.length ? numbers[tree.level] : 0;
    },
  });

  // A cgroup namespace rooted below "/": the prefix of its cgroup path the tree's root does not see (criu/proc_parse.c).
  const nsRoot = cgroupNsRoot(tree.root.leader);
  const cgnsPrefix = nsRoot !== '/' && cgroupPath(tree.root.leader).startsWith(nsRoot) ? nsRoot.length : 0;
  // The walks of the page tables are metered: their cost follows what the guest mapped, not its RAM.
  const budget = DumpBudget.forMemory(prog.mem, opts.quota, opts.signal);
  const ctx: DumpContext = { prog, tree, ids, pages, files, rootIds, spec: opts.container, cgnsPrefix, cgSets: new Map(), budget, netNsContents: opts.netNs };
  const problems: DumpProblem[] = [];
  const planned: PlannedImage[] = [];
  const take = (dumped: Dumped) => {
    planned.push(...(dumped.images ?? []));
    problems.push(...(dumped.problems ?? []));
  };
  const tasks: TaskDump[] = [];
  for (const proc of tree.processes) {
    const task: TaskDump = { proc, who: `pid ${proc.pid} (${taskIdentity(proc.leader).comm})`, ids: {}, newFilesTable: false, cgSet: 0, pagesId: 0 };
    for (const part of proc.zombie ? ZOMBIE_PARTS : TASK_PARTS) take(part.dump(ctx, task));
    if (task.memory) task.pagesId = files.shmem.newPagesId();
    tasks.push(task);
  }
  for (const part of TREE_PARTS) take(part.dump(ctx, tasks));
  // One meter for the whole tree: forked children each mapping a little under the bound must not add up past it.
  const meter = budget.meter();
  const tWalk = now();
  for (const t of tasks) {
    if (!t.memory) continue;
    const walked = await planPages(t.proc.leader, t.memory.vmas, pages, problems, t.who, meter);
    budget.charge(walked.runs.length, walked.runs.pages * 4096, t.who);
    Object.assign(t.memory, { runs: walked.runs, pagemap: walked.pagemap, pagesScanned: walked.scanned });
  }
  // The pages of the shared memory objects the tasks met (memfds, anonymous shared memory), each once.
  const shmem = files.shmem.plan(problems);
  for (const s of shmem) budget.charge(s.runs.length, s.runs.pages * 4096, `shared memory ${s.shmid}`);
  const walkMs = now() - tWalk;
  if (problems.length) throw new DumpRefusedError(tree.root.pid, problems);
  const tPlan = now();
  progress(`planned ${tree.processes.length} processes, ${tasks.reduce((n, t) => n + (t.memory?.runs.length ?? 0), 0) + shmem.reduce((n, s) => n + s.runs.length, 0)} page runs in ${(tPlan - t0).toFixed(0)} ms`);

  const out = ImageDir.create(dir);
  const writer = new PageWriter(prog, pages, out, progress);
  try {
    writeImages(out, planned);
    // Pages are read while the guest runs; the tree is frozen, so only the kernel can move them (compaction, THP).
    for (const t of tasks) {
      throwIfAborted(opts.signal, t.who);
      if (t.memory) await writer.write(t.proc, t.memory, t.pagesId);
    }
    for (const s of shmem) await writer.writeShmem(s);
    const tMem = now();
    const check = await verify(tree, writer, budget, walkMs, opts.pause);
    writer.finishPagemaps();
    const report: DumpReport = {
      dir: out.dir,
      root: tree.root.pid,
      processes: tree.processes.map((p) => ({ pid: p.pid, vpid: p.vpid, threads: p.tids, comm: taskIdentity(p.leader).comm })),
      pagesScanned: tasks.reduce((n, t) => n + (t.memory?.pagesScanned ?? 0), 0),
      pagesWritten: writer.pagesWritten,
      bytesWritten: 0,
      consistency: opts.pause ? 'vm-paused' : 'rewalked',
      pauseMs: check.pauseMs,
      pagesReread: check.reread,
      ms: { plan: tPlan - t0, memdump: tMem - tPlan, total: 0 },
    };
    out.objects('STATS', [{
      dump: {
        freezing_time: Math.round((opts.freezingMs ?? 0) * 1000),
        frozen_time: Math.round((now() - t0) * 1000),
        memdump_time: Math.round((tMem - tPlan) * 1000),
        memwrite_time: Math.round(writer.copyMs * 1000),
        pages_scanned: report.pagesScanned,
        pages_skipped_parent: 0,
        pages_written: writer.pagesWritten,
        pages_lazy: 0,
      },
    }]);
    report.bytesWritten = out.size();
    out.commit();
    report.ms.total = now() - t0;
    log.debug('dump complete', { dir: out.dir, processes: report.processes.length, pages: report.pagesWritten, ms: Math.round(report.ms.total) });
    return report;
  } catch (err) {
    writer.close();
    out.abort();
    throw err;
  }
}

/**
 * Makes sure the pages written are the tree's pages at one instant: walks
 * the page tables again (with the vCPUs stopped, when a pause is given) and
 * reads again whatever moved since. The frozen tasks cannot change their
 * memory; the kernel can still move pages (compaction, reclaim, THP).
 */
async function verify(tree: DumpTree, writer: PageWriter, budget: DumpBudget, walkMs: number, pause?: VmPause):
  Promise<{ reread: number; pauseMs?: number }> {
  const recheck = (ends?: number): Promise<number> => {
    tree.root.leader.prog.refresh();
    requireFrozen(tree, ' (it changed while being dumped)');
    return writer.recheck(budget.meter(ends));
  };
  if (pause) {
    const limit = budget.limits.pauseMs;
    throwIfAborted(budget.signal, `pid ${tree.root.pid}`);
    // The walk under the pause is the planning walk again: one that took longer than the budget is not worth stopping the VM for.
    if (walkMs > limit) {
      throw new ResourceExhaustedError('ms of VM pause', limit, `pid ${tree.root.pid}`, `walking its page tables took ${Math.round(walkMs)} ms`);
    }
    try {
      // cont() in finally: a stop that failed half-way may still have stopped the VM.
      await pause.stop(limit);
      const t = now();
      const ends = Date.now() + limit;
      const moved = await recheck(ends);
      // Past its budget the watchdog may have resumed the VM already: what was read is not one instant.
      if (Date.now() > ends) throw new ResourceExhaustedError('ms of VM pause', limit, `pid ${tree.root.pid}`);
      return { reread: moved, pauseMs: now() - t };
    } finally {
      await pause.cont();
    }
  }
  let total = 0;
  for (let round = 0; round < 5; round++) {
    const moved = await recheck();
    total += moved;
    if (moved === 0) return { reread: total };
  }
  throw new UnsupportedError('guest pages kept moving while they were read; give the VM\'s QMP socket so the dump can pause it');
}
