import { OvmError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { ShmemKind, ShmemObject, shmemObject, shmemPages } from '../linux/shmem.js';
import { DumpProblem } from './problem.js';
import { RunList } from './run-list.js';

const PAGE = 4096n;
/** A shmem object's pages are bounded like a tmpfs's: more is refused, not walked. */
const MAX_PAGES = (1 << 30) / 4096;
/** Every xa_node leads to a page, so a real tree has fewer nodes than pages, plus a path of them. */
const MAX_XA_NODES = MAX_PAGES + 64;

/** A shmem object met in the dump. */
interface Met {
  obj: ShmemObject;
  /** memfd_inode_entry.inode_id, for the objects dumped as memfds. */
  inodeId?: number;
  /** The number of its pages-N.img. */
  pagesId?: number;
  who: string;
}

/** One shmem object's pages as planned: pagemap-shmem-SHMID.img's entries and the runs to copy (vpn = page index). */
export interface ShmemPlan {
  shmid: bigint;
  pagesId: number;
  pagemap: Record<string, unknown>[];
  runs: RunList;
  /** Walks its page cache again (to verify the pages once read). */
  replan(): ShmemPlan;
}

/**
 * The shared memory objects of a dump, once each however many tasks and
 * fds name them. CRIU 3.17 dumps memfds and MAP_SHARED|MAP_ANONYMOUS
 * memory alike, as memfds (criu/memfd.c; seen in its images: the
 * anonymous one is named "/dev/zero", its mappings carry VMA_AREA_MEMFD):
 * one memfd.img entry each, contents in pagemap-shmem-INO.img (vaddr =
 * byte offset) and a pages image numbered when the inode is first met,
 * from the counter the tasks' pages images take theirs from. SysV
 * segments are the IPC namespace's, dumped with it (pagemap-shmem-ID.img
 * named by the IPC id, their inode's number).
 */
export class ShmemTable {
  private readonly met = new Map<bigint, Met>();
  private nextInodeId = 1;
  private nextPagesId = 1;

  /** The number of the next pages-N.img: tasks and shared memory objects count together, as CRIU's page transfers do. */
  newPagesId(): number {
    return this.nextPagesId++;
  }

  /** The object behind a mapped file on shm_mnt. */
  mapped(file: KObject, who: string): ShmemObject {
    return this.meet(file, who).obj;
  }

  /** memfd_inode_entry.inode_id of a memfd's (or anonymous shared memory's) inode: one per inode, from 1, in the order met. */
  memfdInodeId(file: KObject, who: string): number {
    const m = this.meet(file, who);
    if (m.inodeId === undefined) {
      m.inodeId = this.nextInodeId++;
      m.pagesId = this.newPagesId();
    }
    return m.inodeId;
  }

  /**
   * The pages image of a SysV segment of a dumped IPC namespace (its
   * shm_file), numbered when the namespace is dumped, after the tasks, as
   * criu/ipc_ns.c dumps each segment's pages (in_pagemaps) then.
   */
  sysvPagesId(shmFile: KObject, who: string): number {
    const m = this.meet(shmFile, who, 'sysv');
    m.pagesId ??= this.newPagesId();
    return m.pagesId;
  }

  private meet(file: KObject, who: string, kind?: ShmemKind): Met {
    const inode = file.member('f_inode').value();
    let m = this.met.get(inode);
    if (!m) {
      m = { obj: shmemObject(file, kind), who };
      this.met.set(inode, m);
    }
    return m;
  }

  /**
   * memfd.img entries, in inode_id order. The name is the fd's link less
   * " (deleted)" and, for a memfd, less "/memfd:" (criu/memfd.c
   * dump_one_memfd): the anonymous memory's is "/dev/zero".
   */
  memfdInodes(): Record<string, unknown>[] {
    return [...this.met.values()].filter((m) => m.inodeId !== undefined).sort((a, b) => a.inodeId! - b.inodeId!).map((m) => ({
      name: m.obj.kind === 'memfd' ? m.obj.name.slice('memfd:'.length) : `/${m.obj.name}`,
      uid: m.obj.uid, gid: m.obj.gid, size: m.obj.size, shmid: Number(m.obj.ino & 0xffffffffn),
      seals: m.obj.seals, inode_id: m.inodeId,
    }));
  }

  /**
   * The pages of each object dumped as a memfd (below its i_size: criu/shmem.c
   * dump_one_memfd_shmem), in shmid order; what RAM cannot give (pages
   * swapped out, a hostile page cache) is a problem of the task that met it.
   */
  plan(problems: DumpProblem[]): ShmemPlan[] {
    const out: ShmemPlan[] = [];
    const named = new Map<bigint, Met>();
    for (const m of [...this.met.values()].sort((a, b) => (a.obj.ino < b.obj.ino ? -1 : 1))) {
      if (m.pagesId === undefined) continue;
      // shm_mnt numbers its inodes from 1 in per-CPU batches and SysV ids count from 0: CRIU 3.17 names both
      // pagemap-shmem-<number>.img, so a segment and a memfd or anonymous shared memory can want one file.
      const other = named.get(m.obj.ino);
      if (other) {
        problems.push(new DumpProblem(m.who, 'shmem', `shared memory objects ${other.obj.name} and ${m.obj.name} would both be pagemap-shmem-${m.obj.ino}.img (CRIU 3.17 names SysV segments by IPC id and other shared memory by inode number)`, { object: `shared memory ${m.obj.ino}` }));
        continue;
      }
      named.set(m.obj.ino, m);
      const pagesId = m.pagesId;
      const once = (): ShmemPlan => {
        const pages = shmemPages(m.obj, (m.obj.size + PAGE - 1n) / PAGE, { nodes: MAX_XA_NODES }, MAX_PAGES, m.who);
        const runs = new RunList();
        const pagemap: Record<string, unknown>[] = [];
        for (const p of pages) {
          runs.pushBytes(p.index * PAGE, p.phys, PAGE);
          const last = pagemap[pagemap.length - 1];
          if (last && (last.vaddr as bigint) + BigInt(last.nr_pages as number) * PAGE === p.index * PAGE) last.nr_pages = (last.nr_pages as number) + 1;
          else pagemap.push({ vaddr: p.index * PAGE, nr_pages: 1, flags: PE_PRESENT });
        }
        return { shmid: m.obj.ino, pagesId, pagemap, runs, replan: once };
      };
      try {
        out.push(once());
      } catch (err) {
        if (!(err instanceof OvmError)) throw err;
        problems.push(new DumpProblem(m.who, 'shmem', err.message, { object: `shared memory ${m.obj.ino}` }));
      }
    }
    return out;
  }
}

/** criu/include/pagemap.h */
const PE_PRESENT = 4;
