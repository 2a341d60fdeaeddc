import { UnsupportedError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { makeEntry } from '../criu/index.js';
import { KObject } from '../kernel/object.js';
import { Program } from '../kernel/program.js';
import { taskRoot } from '../linux/d-path.js';
import { kernfsChildren, kernfsName, kernfsPerms, taskCgroupNode } from '../linux/kernfs.js';
import { PageInfo } from '../linux/pages.js';
import { namespaces } from '../linux/task-state.js';
import { cgroupNsRoot, cgroupPath, findTask, pidNumbers } from '../linux/tasks.js';
import { coreProblems, processCores, processProblems } from './core.js';
import { FileTable } from './files.js';
import { ContainerSpec, descriptorsJson, stdioTargets } from './container.js';
import { IdAllocator, KobjKind, NS_KINDS } from './ids.js';
import { ImageDir } from './image-dir.js';
import { MemoryPlan, planMemory } from './memory.js';
import { namespaceImages } from './namespaces.js';
import { PageWriter } from './pages.js';
import { DumpProcess, DumpTree, requireFrozen } from './tree.js';

/** Stops and resumes the guest's vCPUs (QMP stop/cont) for the final, consistent read. */
export interface VmPause {
  stop(): Promise<void>;
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

/** A set of cgroups a task is in (one on cgroup v2), and the part of its path the task's cgroup namespace hides. */
interface CgroupSet {
  path: string;
  kn: KObject;
  cgnsPrefix: number;
}

interface ProcessImages {
  proc: DumpProcess;
  ids: Record<string, unknown>;
  cores: Map<number, Record<string, unknown>>;
  memory?: MemoryPlan;
  fdinfo?: { filesId: number; entries: Record<string, unknown>[] };
  fs: Record<string, unknown>;
  pagesId: number;
}

const KOBJ: [KobjKind, string][] = [['vm', 'mm'], ['files', 'files'], ['fs', 'fs'], ['sighand', 'sighand']];

function now(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/**
 * Writes the CRIU images of a frozen process tree into `dir` from guest RAM
 * alone: what `criu dump` would write for it (inventory, pstree, core,
 * ids, mm, pagemap/pages, fs, files/fdinfo, pipes, unix sockets, cgroup,
 * stats). Anything the images could not carry fails the dump before a file
 * is written, listing every problem and the task it belongs to.
 */
export async function dumpTree(prog: Program, tree: DumpTree, dir: string, opts: DumpOptions = {}): Promise<DumpReport> {
  const t0 = now();
  const progress = opts.progress ?? (() => undefined);
  prog.refresh();
  requireFrozen(tree, ': freeze its cgroup first (echo 1 > cgroup.freeze)');
  const pages = new PageInfo(prog);
  const ids = new IdAllocator();
  const init = findTask(prog, 1);
  const initNs = namespaces(init);
  // The dumper's own objects and namespaces come first, as CRIU's own do (inventory root_ids).
  const rootIds: Record<string, unknown> = {};
  for (const [kind] of KOBJ) rootIds[`${kind}_id`] = ids.kobjId(kind, 0n).id;
  for (const kind of NS_KINDS) {
    const inum = initNs[kind];
    if (inum !== undefined) rootIds[`${kind}_ns_id`] = ids.nsId(BigInt(inum));
  }
  ids.cgSetId(`${cgroupPath(init)}:0`);
  // A container's own mounts are dumped: its files are named inside them, as CRIU does when it dumps a mount namespace.
  const ownMounts = namespaces(tree.root.leader).mnt !== initNs.mnt;
  const files = new FileTable({
    prog, ids, pages,
    root: ownMounts ? taskRoot(tree.root.leader) : taskRoot(init),
    mntIds: ownMounts,
    netNsId: (net) => ids.nsId(KObject.struct(prog, 'net', net).member('ns.inum').value()),
    vpid: (pid) => {
      const numbers = pidNumbers(KObject.struct(prog, 'pid', pid));
      return tree.level < numbers.length ? numbers[tree.level] : 0;
    },
  });

  // A cgroup namespace rooted below "/": the prefix of its cgroup path the tree's root does not see (criu/proc_parse.c).
  const nsRoot = cgroupNsRoot(tree.root.leader);
  const cgnsPrefix = nsRoot !== '/' && cgroupPath(tree.root.leader).startsWith(nsRoot) ? nsRoot.length : 0;
  const problems: string[] = [];
  const images: ProcessImages[] = [];
  const cgPaths = new Map<number, CgroupSet>();
  let pagesId = 0;
  for (const proc of tree.processes) {
    const leader = proc.leader;
    const who = `pid ${proc.pid} (${leader.member('comm').string()})`;
    const taskIds: Record<string, unknown> = {};
    let newFilesTable = false;
    for (const [kind, member] of KOBJ) {
      const { id, fresh } = ids.kobjId(kind, leader.member(member).value());
      taskIds[`${kind}_id`] = id;
      if (kind === 'files') newFilesTable = fresh;
      else if (!fresh) problems.push(`${who} shares its ${member} with another process (CLONE_${kind === 'vm' ? 'VM' : kind.toUpperCase()}): not supported`);
    }
    const ns = namespaces(leader);
    for (const kind of NS_KINDS) {
      const inum = ns[kind];
      if (inum !== undefined) taskIds[`${kind}_ns_id`] = ids.nsId(BigInt(inum));
    }
    const cgPath = cgroupPath(leader);
    // criu/cgroup.c dump_task_cgroup: only the root task's set is looked up with its cgroup namespace prefix; the others
    // are looked up with none and then given the root's, so under a prefix each lands in a set of its own.
    const cg = proc === tree.root || !cgnsPrefix ? ids.cgSetId(`${cgPath}:${cgnsPrefix}`) : ids.newCgSetId();
    if (cg.fresh) cgPaths.set(cg.id, { path: cgPath, kn: taskCgroupNode(leader), cgnsPrefix });
    for (const t of proc.threads) {
      const tid = t.member('pid').num();
      problems.push(...coreProblems(t, tid === proc.pid ? who : `thread ${tid} of ${who}`));
      if (cgroupPath(t) !== cgPath) problems.push(`thread ${tid} of ${who} is in another cgroup than its process`);
    }
    problems.push(...processProblems(leader, who));
    const memory = leader.member('mm').value() === 0n ? undefined : planMemory(leader, files, pages, who);
    if (memory) problems.push(...memory.problems);
    // A files table shared with a process dumped before (CLONE_FILES) is written once.
    const fdinfo = newFilesTable ? { filesId: taskIds.files_id as number, entries: files.fdinfo(leader, who) } : undefined;
    const fsObj = leader.member('fs').deref();
    const fs = {
      cwd_id: files.special(fsObj.member('pwd'), `${who} cwd`),
      root_id: files.special(fsObj.member('root'), `${who} root`),
      umask: fsObj.member('umask').num(),
    };
    images.push({ proc, ids: taskIds, cores: processCores(proc, cg.id), memory, fdinfo, fs, pagesId: memory ? ++pagesId : 0 });
  }
  files.finish();
  problems.push(...files.problems);
  const nsImages = namespaceImages(tree, images.map((i) => i.ids), rootIds, opts.container);
  problems.push(...nsImages.problems);
  if (problems.length) throw new UnsupportedError(`cannot dump pid ${tree.root.pid}: ${problems.join('; ')}`);
  const tPlan = now();
  progress(`planned ${tree.processes.length} processes, ${images.reduce((n, i) => n + (i.memory?.runs.length ?? 0), 0)} page runs in ${(tPlan - t0).toFixed(0)} ms`);

  const out = ImageDir.create(dir);
  const writer = new PageWriter(prog, pages, out, progress);
  try {
    writeMetadata(out, images, files, rootIds, cgPaths);
    for (const ns of nsImages.images) out.objects(ns.kind, ns.entries, ns.id);
    for (const [name, data] of nsImages.files) out.file(name, data);
    if (opts.container) out.file('descriptors.json', descriptorsJson(stdioTargets(tree.root.leader, files.root)));
    // Pages are read while the guest runs; the tree is frozen, so only the kernel can move them (compaction, THP).
    for (const img of images) if (img.memory) await writer.write(img.proc, img.memory, img.pagesId);
    const tMem = now();
    const check = await verify(tree, writer, opts.pause);
    writer.finishPagemaps();
    const report: DumpReport = {
      dir: out.dir,
      root: tree.root.pid,
      processes: tree.processes.map((p) => ({ pid: p.pid, vpid: p.vpid, threads: p.tids, comm: p.leader.member('comm').string() })),
      pagesScanned: images.reduce((n, i) => n + (i.memory?.pagesScanned ?? 0), 0),
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

function writeMetadata(out: ImageDir, images: ProcessImages[], files: FileTable, rootIds: Record<string, unknown>,
  cgPaths: Map<number, CgroupSet>): void {
  out.objects('INVENTORY', [{
    img_version: 2, fdinfo_per_id: true, root_ids: rootIds, ns_per_id: true, root_cg_set: 1, lsmtype: 'NO_LSM', network_lock_method: 0,
  }]);
  out.objects('PSTREE', images.map(({ proc }) => ({ pid: proc.vpid, ppid: proc.vppid, pgid: proc.vpgid, sid: proc.vsid, threads: proc.vtids })));
  for (const img of images) {
    const vpid = img.proc.vpid;
    for (const [tid, core] of img.cores) out.objects('CORE', [core], tid);
    out.objects('IDS', [img.ids], vpid);
    out.objects('FS', [img.fs], vpid);
    if (img.memory) out.objects('MM', [img.memory.mm], vpid);
    if (img.fdinfo) out.objects('FDINFO', img.fdinfo.entries, img.fdinfo.filesId);
  }
  out.objects('FILES', files.entries);
  if (files.pipesData.length) out.image('PIPES_DATA', files.pipesData.map((p) => makeEntry('pipe_data_entry', p.entry, p.data)));
  if (files.skQueues.length) out.image('SK_QUEUES', files.skQueues.map((q) => makeEntry('sk_packet_entry', q.entry, q.data)));
  out.objects('SECCOMP', [{}]);
  if (cgPaths.size) out.objects('CGROUP', [cgroupEntry(cgPaths)]);
}

/**
 * cgroup.img for cgroup v2 (criu/cgroup.c dump_sets, dump_controllers):
 * the sets other than the dumper's, and each set's directory with its
 * permissions and those of cgroup.procs, so restore can recreate it.
 */
function cgroupEntry(cgPaths: Map<number, CgroupSet>): Record<string, unknown> {
  const sets = [...cgPaths].map(([id, { path, cgnsPrefix }]) => ({ id, ctls: [{ name: '', path, ...(cgnsPrefix ? { cgns_prefix: cgnsPrefix } : {}) }] }));
  const byPath = new Map([...cgPaths.values()].filter(({ path }) => path !== '/').map((set) => [set.path, set]));
  const dirs = [...byPath.values()].map(({ path, kn }) => {
    const procs = [...kernfsChildren(kn)].find((c) => kernfsName(c) === 'cgroup.procs');
    return {
      dir_name: path.slice(1),
      properties: procs ? [{ name: 'cgroup.procs', value: '', perms: kernfsPerms(procs) }] : [],
      dir_perms: kernfsPerms(kn),
    };
  });
  return { sets, controllers: [{ cnames: [''], dirs }] };
}

/**
 * Makes sure the pages written are the tree's pages at one instant: walks
 * the page tables again (with the vCPUs stopped, when a pause is given) and
 * reads again whatever moved since. The frozen tasks cannot change their
 * memory; the kernel can still move pages (compaction, reclaim, THP).
 */
async function verify(tree: DumpTree, writer: PageWriter, pause?: VmPause): Promise<{ reread: number; pauseMs?: number }> {
  const recheck = (): Promise<number> => {
    tree.root.leader.prog.refresh();
    requireFrozen(tree, ' (it changed while being dumped)');
    return writer.recheck();
  };
  if (pause) {
    await pause.stop();
    const t = now();
    try {
      const moved = await recheck();
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
