import fs from 'node:fs';
import { UnsupportedError } from '../../common/errors.js';
import { makeEntry } from '../criu/index.js';
import { Program } from '../kernel/program.js';
import { PageInfo } from '../linux/pages.js';
import { readCoalesced } from '../linux/user-memory.js';
import { ImageDir } from './image-dir.js';
import { MemoryPlan, PageRun, planPages } from './memory.js';
import { DumpProcess } from './tree.js';

/** Pages are read into a buffer of this size and written out from it (few, large reads and writes). */
const CHUNK = 16 << 20;
const PROGRESS_EVERY = 256 << 20;

interface Written {
  fd: number;
  plan: MemoryPlan;
  name: string;
}

function now(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/**
 * Writes pages-ID.img from guest RAM and, once the runs are verified,
 * pagemap-PID.img. The pages file stays open so pages that moved while the
 * guest ran can be read again into their place.
 */
export class PageWriter {
  pagesWritten = 0;
  /** Time spent writing to the image files, in ms. */
  writeMs = 0;
  private readonly written = new Map<number, Written>();
  private readonly buffer = Buffer.allocUnsafe(CHUNK);
  private readonly pages: PageInfo;
  private bytes = 0;
  private nextProgress = PROGRESS_EVERY;
  private readonly started = now();

  constructor(private readonly prog: Program, private readonly out: ImageDir, private readonly progress: (line: string) => void) {
    this.pages = new PageInfo(prog);
  }

  /** Streams a process's pages into pages-<pagesId>.img. */
  write(proc: DumpProcess, plan: MemoryPlan, pagesId: number): void {
    const name = `pages-${pagesId}.img`;
    const fd = this.out.open(name);
    this.written.set(pagesId, { fd, plan, name });
    this.copy(fd, plan.runs, proc.pid, null);
  }

  /** Reads runs in order into the image at `position` (null: append), in chunks. */
  private copy(fd: number, runs: PageRun[], pid: number, position: number | null): void {
    let fill: { at: number; phys: bigint; size: number }[] = [];
    let used = 0;
    let pos = position;
    const flush = () => {
      if (!used) return;
      readCoalesced(this.prog.mem, fill, this.buffer.subarray(0, used), pid);
      const t = now();
      this.out.writeAll(fd, this.buffer.subarray(0, used), pos);
      this.writeMs += now() - t;
      if (pos !== null) pos += used;
      this.bytes += used;
      if (this.bytes >= this.nextProgress) {
        this.nextProgress += PROGRESS_EVERY;
        const s = (now() - this.started) / 1000;
        this.progress(`pages: ${(this.bytes / 2 ** 20).toFixed(0)} MiB written, ${(this.bytes / 2 ** 20 / s).toFixed(0)} MiB/s`);
      }
      fill = [];
      used = 0;
    };
    for (const run of runs) {
      for (let off = 0n; off < run.size;) {
        const n = Math.min(Number(run.size - off), CHUNK - used);
        fill.push({ at: used, phys: run.phys + off, size: n });
        used += n;
        off += BigInt(n);
        if (used === CHUNK) flush();
      }
      this.pagesWritten += position === null ? Number(run.size / 4096n) : 0;
    }
    flush();
  }

  /**
   * Walks the process's page tables again. Pages now at another physical
   * address are read again into their place; if the set of pages changed,
   * the whole pages image is rewritten. Returns the pages read again.
   */
  recheck(proc: DumpProcess, plan: MemoryPlan, pagesId: number): number {
    const w = this.written.get(pagesId);
    if (!w) return 0;
    const problems: string[] = [];
    const who = `pid ${proc.pid}`;
    const again = planPages(proc.leader, plan.vmas, this.pages, problems, who);
    if (problems.length) throw new UnsupportedError(`cannot dump: ${problems.join('; ')}`);
    const pageMap = (runs: PageRun[]) => {
      const m = new Map<bigint, bigint>();
      for (const r of runs) for (let off = 0n; off < r.size; off += 4096n) m.set(r.va + off, r.phys + off);
      return m;
    };
    const before = pageMap(plan.runs);
    const after = pageMap(again.runs);
    const sameSet = before.size === after.size && [...after.keys()].every((va) => before.has(va));
    if (!sameSet) {
      // Pages appeared or went (a page dropped, a COW resolved): write the image anew.
      this.pagesWritten -= before.size;
      plan.runs = again.runs;
      plan.pagemap = again.pagemap;
      fs.closeSync(w.fd);
      w.fd = this.out.open(w.name);
      this.copy(w.fd, again.runs, proc.pid, null);
      return after.size;
    }
    let offset = 0;
    let moved = 0;
    for (const r of plan.runs) {
      for (let off = 0n; off < r.size; off += 4096n) {
        const phys = after.get(r.va + off)!;
        if (phys !== r.phys + off) {
          this.copy(w.fd, [{ va: r.va + off, size: 4096n, phys }], proc.pid, offset + Number(off));
          moved++;
        }
      }
      offset += Number(r.size);
    }
    if (moved) plan.runs = again.runs;
    return moved;
  }

  /** Writes every pagemap-PID.img for the runs as verified, and closes the pages images. */
  finishPagemaps(procs: Map<number, DumpProcess>): void {
    for (const [pagesId, w] of this.written) {
      const proc = procs.get(pagesId)!;
      this.out.image('PAGEMAP', [makeEntry('pagemap_head', { pages_id: pagesId }), ...w.plan.pagemap.map((e) => makeEntry('pagemap_entry', e))], proc.vpid);
    }
    this.close();
  }

  close(): void {
    for (const w of this.written.values()) fs.closeSync(w.fd);
    this.written.clear();
  }
}
