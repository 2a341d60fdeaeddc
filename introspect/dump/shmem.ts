import { OvmError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { ShmemObject, shmemObject, shmemPages } from '../linux/shmem.js';
import { DumpProblem } from './problem.js';
import { RunList } from './run-list.js';

const PAGE = 4096n;
/** A shmem object's pages are bounded like a tmpfs's: more is refused, not walked. */
const MAX_PAGES = (1 << 30) / 4096;
/** Every xa_node leads to a page, so a real tree has fewer nodes than pages, plus a path of them. */
const MAX_XA_NODES = MAX_PAGES + 64;

/** A shmem object met in the dump, and the extent CRIU gives it. */
interface Met {
  obj: ShmemObject;
  /** Bytes dumped: for anonymous shared memory the furthest end any VMA maps (criu/shmem.c si->size), else i_size. */
  size: bigint;
  /** memfd: memfd_inode_entry.inode_id. */
  inodeId?: number;
  who: string;
}

/** One shmem object's pages as planned: pagemap-shmem-SHMID.img's entries and the runs to copy (vpn = page index). */
export interface ShmemPlan {
  shmid: bigint;
  pagemap: Record<string, unknown>[];
  runs: RunList;
  /** Walks its page cache again (to verify the pages once read). */
  replan(): ShmemPlan;
}

/**
 * The shared memory objects of a dump, once each however many tasks map
 * them (criu/shmem.c, criu/memfd.c): anonymous shared memory and memfds,
 * whose pages go to pagemap-shmem-SHMID.img (vaddr = byte offset in the
 * object), and the memfd inodes of memfd.img. SysV segments are the IPC
 * namespace's, dumped with it.
 */
export class ShmemTable {
  private readonly met = new Map<bigint, Met>();
  private nextInodeId = 1;

  /** The object behind a mapped file on shm_mnt; `extent` is how far into it the mapping reaches (pgoff + length). */
  mapped(file: KObject, extent: bigint, who: string): ShmemObject {
    const m = this.meet(file, who);
    if (m.obj.kind === 'anon' && extent > m.size) m.size = extent;
    return m.obj;
  }

  /** memfd_inode_entry.inode_id of a memfd's inode: one per inode, from 1, in the order met. */
  memfdInodeId(file: KObject, who: string): number {
    const m = this.meet(file, who);
    m.inodeId ??= this.nextInodeId++;
    return m.inodeId;
  }

  private meet(file: KObject, who: string): Met {
    const inode = file.member('f_inode').value();
    let m = this.met.get(inode);
    if (!m) {
      const obj = shmemObject(file);
      m = { obj, size: obj.kind === 'anon' ? 0n : obj.size, who };
      this.met.set(inode, m);
    }
    return m;
  }

  /** memfd.img entries (criu/memfd.c dump_memfd_inode), in inode_id order. */
  memfdInodes(): Record<string, unknown>[] {
    return [...this.met.values()].filter((m) => m.inodeId !== undefined).sort((a, b) => a.inodeId! - b.inodeId!).map((m) => ({
      name: m.obj.name, uid: m.obj.uid, gid: m.obj.gid, size: m.obj.size, shmid: Number(m.obj.ino & 0xffffffffn),
      seals: m.obj.seals, inode_id: m.inodeId,
    }));
  }

  /**
   * The pages of each object whose contents the dump carries (anonymous
   * shared memory and memfds), in shmid order; what RAM cannot give (pages
   * swapped out, a hostile page cache) is a problem of the task that met it.
   */
  plan(problems: DumpProblem[]): ShmemPlan[] {
    const out: ShmemPlan[] = [];
    for (const m of [...this.met.values()].sort((a, b) => (a.obj.ino < b.obj.ino ? -1 : 1))) {
      if (m.obj.kind === 'sysv') continue;
      const once = (): ShmemPlan => {
        const pages = shmemPages(m.obj, (m.size + PAGE - 1n) / PAGE, { nodes: MAX_XA_NODES }, MAX_PAGES, m.who);
        const runs = new RunList();
        const pagemap: Record<string, unknown>[] = [];
        for (const p of pages) {
          runs.pushBytes(p.index * PAGE, p.phys, PAGE);
          const last = pagemap[pagemap.length - 1];
          if (last && (last.vaddr as bigint) + BigInt(last.nr_pages as number) * PAGE === p.index * PAGE) last.nr_pages = (last.nr_pages as number) + 1;
          else pagemap.push({ vaddr: p.index * PAGE, nr_pages: 1, flags: PE_PRESENT });
        }
        return { shmid: m.obj.ino, pagemap, runs, replan: once };
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
