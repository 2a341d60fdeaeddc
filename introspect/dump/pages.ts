import fs from 'node:fs';
import { UnsupportedError } from '../../common/errors.js';
import { makeEntry } from '../criu/index.js';
import { Program } from '../kernel/program.js';
import { PageInfo } from '../linux/pages.js';
import { readCoalesced } from '../linux/user-memory.js';
import { ImageDir } from './image-dir.js';
import { WalkMeter } from './budget.js';
import { MemoryPlan, planPages } from './memory.js';
import { DumpProblem } from './problem.js';
import { Run, diffRuns } from './run-list.js';
import { ShmemPlan } from './shmem.js';
import { DumpProcess } from './tree.js';

/**
 * Pages go through buffers of this size: read from guest RAM on the main
 * thread while earlier buffers are written by libuv's threads (positional
 * writes, so they may finish in any order). Measured here: 8 MiB x 4 gives
 * the read and the write of 1 GiB almost fully overlapped.
 */
const CHUNK = 8 << 20;
const BUFFERS = 4;
const PROGRESS_EVERY = 256 << 20;

/** A pages image being written, and what it holds. */
interface Written {
  fd: number;
  proc: DumpProcess;
  plan: MemoryPlan;
}

/** A shared memory object's pages image being written. */
interface WrittenShmem {
  fd: number;
  plan: ShmemPlan;
}

function now(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

function writeAt(fd: number, buf: Buffer, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done === buf.length) return resolve();
      fs.write(fd, buf, done, buf.length - done, position + done, (err, n) => (err ? reject(err) : step(done + n)));
    };
    step(0);
  });
}

/**
 * Writes pages-ID.img from guest RAM and, once the runs are verified,
 * pagemap-PID.img. The pages file stays open so pages that moved while the
 * guest ran can be read again into their place.
 */
export class PageWriter {
  pagesWritten = 0;
  /** Wall time the page copies took, in ms (reads and writes overlap). */
  copyMs = 0;
  private readonly written = new Map<number, Written>();
  private readonly shmem = new Map<number, WrittenShmem>();
  private readonly free: Buffer[] = Array.from({ length: BUFFERS }, () => Buffer.allocUnsafe(CHUNK));
  private bytes = 0;
  private nextProgress = PROGRESS_EVERY;
  private readonly started = now();

  constructor(private readonly prog: Program, private readonly pages: PageInfo, private readonly out: ImageDir,
    private readonly progress: (line: string) => void) {}

  /** Streams a process's pages into pages-<pagesId>.img. */
  async write(proc: DumpProcess, plan: MemoryPlan, pagesId: number): Promise<void> {
    const fd = this.out.open(`pages-${pagesId}.img`);
    this.written.set(pagesId, { fd, proc, plan });
    await this.copy(fd, plan.runs, proc.pid, 0);
    this.pagesWritten += plan.runs.pages;
  }

  /**
   * Streams a shared memory object's pages into its pages-N.img (criu/shmem.c).
   * CRIU's stats count only the tasks' pages as pages_written: these are not counted.
   */
  async writeShmem(plan: ShmemPlan): Promise<void> {
    const fd = this.out.open(`pages-${plan.pagesId}.img`);
    this.shmem.set(plan.pagesId, { fd, plan });
    await this.copy(fd, plan.runs, 0, 0);
  }

  /** Copies runs, in order, from guest RAM into the image from `position` on. */
  private async copy(fd: number, runs: Iterable<Run>, pid: number, position: number): Promise<void> {
    const t0 = now();
    const inflight = new Set<Promise<void>>();
    let failure: unknown;
    let pos = position;
    let buf: Buffer | undefined;
    let fill: { at: number; phys: bigint; size: number }[] = [];
    let used = 0;
    const take = async (): Promise<Buffer> => {
      while (!this.free.length) await Promise.race(inflight);
      return this.free.pop()!;
    };
    const flush = async () => {
      if (!used || !buf) return;
      const chunk = buf;
      readCoalesced(this.prog.mem.base, fill, chunk.subarray(0, used), pid);
      const p: Promise<void> = writeAt(fd, chunk.subarray(0, used), pos)
        .catch((err: unknown) => { failure ??= err; })
        .finally(() => { inflight.delete(p); this.free.push(chunk); });
      inflight.add(p);
      pos += used;
      this.bytes += used;
      if (this.bytes >= this.nextProgress) {
        this.nextProgress += PROGRESS_EVERY;
        this.progress(`pages: ${(this.bytes / 2 ** 20).toFixed(0)} MiB written, ${(this.bytes / 2 ** 20 / ((now() - this.started) / 1000)).toFixed(0)} MiB/s`);
      }
      buf = undefined;
      fill = [];
      used = 0;
    };
    for (const run of runs) {
      const size = run.pages * 4096;
      const phys = BigInt(run.ppn) << 12n;
      for (let off = 0; off < size;) {
        if (failure) break;
        buf ??= await take();
        const n = Math.min(size - off, CHUNK - used);
        fill.push({ at: used, phys: phys + BigInt(off), size: n });
        used += n;
        off += n;
        if (used === CHUNK) await flush();
      }
    }
    await flush();
    await Promise.all(inflight);
    if (buf) this.free.push(buf);
    this.copyMs += now() - t0;
    if (failure) throw failure;
  }

  /**
   * Walks the page tables of every process written again. Pages now at
   * another physical address are read again into their place; where the
   * set of pages changed, the whole pages image is rewritten. Returns the
   * pages read again. `meter` bounds the walk of the whole tree (its PTEs, the pause).
   */
  async recheck(meter: WalkMeter): Promise<number> {
    let moved = 0;
    for (const w of this.written.values()) moved += await this.recheckOne(w, meter);
    for (const w of this.shmem.values()) moved += await this.recheckShmem(w);
    return moved;
  }

  private async recheckOne({ fd, proc, plan }: Written, meter: WalkMeter): Promise<number> {
    const problems: DumpProblem[] = [];
    const again = await planPages(proc.leader, plan.vmas, this.pages, problems, `pid ${proc.pid}`, meter);
    if (problems.length) throw new UnsupportedError(`cannot dump: ${problems.map((p) => p.text).join('; ')}`);
    if (again.runs.equals(plan.runs)) return 0;
    const diff = diffRuns(plan.runs, again.runs);
    if (!diff.sameSet) {
      // Pages appeared or went (a page dropped, a COW resolved): write the image anew.
      this.pagesWritten += again.runs.pages - plan.runs.pages;
      plan.runs = again.runs;
      plan.pagemap = again.pagemap;
      fs.ftruncateSync(fd, 0);
      await this.copy(fd, again.runs, proc.pid, 0);
      return again.runs.pages;
    }
    for (const m of diff.moved) await this.copy(fd, [m], proc.pid, m.at);
    plan.runs = again.runs;
    return diff.movedPages;
  }

  /** A shared memory object's page cache walked again: pages that moved (or came and went) are copied anew. */
  private async recheckShmem(w: WrittenShmem): Promise<number> {
    const again = w.plan.replan();
    if (again.runs.equals(w.plan.runs)) return 0;
    const diff = diffRuns(w.plan.runs, again.runs);
    if (!diff.sameSet) {
      w.plan = again;
      fs.ftruncateSync(w.fd, 0);
      await this.copy(w.fd, again.runs, 0, 0);
      return again.runs.pages;
    }
    for (const m of diff.moved) await this.copy(w.fd, [m], 0, m.at);
    w.plan = again;
    return diff.movedPages;
  }

  /** Writes every pagemap-PID.img for the runs as verified, and closes the pages images. */
  finishPagemaps(): void {
    for (const [pagesId, { proc, plan }] of this.written) {
      this.out.image('PAGEMAP', [makeEntry('pagemap_head', { pages_id: pagesId }), ...plan.pagemap.map((e) => makeEntry('pagemap_entry', e))], proc.vpid);
    }
    for (const [pagesId, { plan }] of this.shmem) {
      this.out.image('PAGEMAP', [makeEntry('pagemap_head', { pages_id: pagesId }), ...plan.pagemap.map((e) => makeEntry('pagemap_entry', e))], `shmem-${plan.shmid}`);
    }
    this.close();
  }

  close(): void {
    for (const w of [...this.written.values(), ...this.shmem.values()]) fs.closeSync(w.fd);
    this.written.clear();
    this.shmem.clear();
  }
}
