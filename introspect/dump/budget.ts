import { setImmediate as tick } from 'node:timers/promises';
import { InvalidArgumentError, ResourceExhaustedError, TimeoutError } from '../../common/errors.js';
import { PhysicalMemory } from '../memory/physical-memory.js';

/** Per-VM bounds on one dump, as an operator sets them (`serve`/`dump` options); unset ones follow the VM's RAM. */
export interface DumpQuota {
  /** Page table entries read by one walk of the tree's memory. */
  ptes?: number;
  /** Runs of pages kept for the pages images. */
  runs?: number;
  /** Bytes of page data one checkpoint may write. */
  bytes?: number;
  /** Longest the VM's vCPUs may stay stopped, in ms. */
  pauseMs?: number;
}

export type BudgetLimits = Required<DumpQuota>;

/**
 * PTEs a walk of the whole tree may read per page of RAM: its resident
 * pages, the rest of their page tables, pages shared with forked children
 * (whose bytes the bytes bound caps at RAM anyway); a MAP_NORESERVE mapping
 * of the zero page reaches any size.
 */
const PTES_PER_RAM_PAGE = 2;
const DEFAULT_PAUSE_MS = 10_000;
/** PTEs read between two turns of the event loop: about a millisecond of walking. */
const YIELD_EVERY = 1 << 16;

/** The guest's RAM size, the sum of its segments. */
export function ramBytes(mem: PhysicalMemory): number {
  return Number(mem.segments.reduce((n, s) => n + s.size, 0n));
}

/** The limits of a dump of a VM with `ram` bytes of RAM, under an operator's quota. */
export function budgetLimits(ram: number, quota: DumpQuota = {}): BudgetLimits {
  const pages = Math.max(1, Math.floor(ram / 4096));
  const limits: BudgetLimits = {
    ptes: quota.ptes ?? PTES_PER_RAM_PAGE * pages,
    runs: quota.runs ?? pages,
    bytes: quota.bytes ?? ram,
    pauseMs: quota.pauseMs ?? DEFAULT_PAUSE_MS,
  };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new InvalidArgumentError(`dump quota ${k}: ${v} is not a positive integer`);
  }
  return limits;
}

/** Throws what a request's AbortSignal carries, as a typed error. */
export function throwIfAborted(signal: AbortSignal | undefined, who: string): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  if (reason instanceof TimeoutError) throw reason;
  throw new TimeoutError(`${who}: the request's deadline ran out`, { cause: reason });
}

/**
 * What one dump may cost, and what it has cost: runs and bytes over the
 * whole dump, PTEs per walk (meter()), and the pause. Going over is a
 * ResourceExhaustedError naming the resource and the task.
 */
export class DumpBudget {
  runs = 0;
  bytes = 0;

  constructor(readonly limits: BudgetLimits, readonly signal?: AbortSignal) {}

  static forMemory(mem: PhysicalMemory, quota?: DumpQuota, signal?: AbortSignal): DumpBudget {
    return new DumpBudget(budgetLimits(ramBytes(mem), quota), signal);
  }

  /** Counts runs and page bytes a task's plan keeps. */
  charge(runs: number, bytes: number, who: string): void {
    this.runs += runs;
    this.bytes += bytes;
    if (this.runs > this.limits.runs) throw new ResourceExhaustedError('page runs', this.limits.runs, who, `${this.runs} so far`);
    if (this.bytes > this.limits.bytes) throw new ResourceExhaustedError('bytes of pages', this.limits.bytes, who, `${this.bytes} so far`);
  }

  /** A meter for one walk of the tree's page tables; `pauseEnds` (a Date.now() time) bounds a walk under a VM pause. */
  meter(pauseEnds?: number): WalkMeter {
    return new WalkMeter(this, pauseEnds);
  }
}

/** Counts the PTEs of one walk, and tells the walker when to hand the event loop a turn. */
export class WalkMeter {
  ptes = 0;
  who = 'the dump';
  zeroPage?: number;
  private sinceYield = 0;

  constructor(private readonly budget: DumpBudget, private readonly pauseEnds?: number) {}

  /** Called by the walker for every page table it reads; true when it should let its consumer yield. */
  table(entries: number): boolean {
    this.ptes += entries;
    this.sinceYield += entries;
    if (this.ptes > this.budget.limits.ptes) {
      throw new ResourceExhaustedError('page table entries', this.budget.limits.ptes, this.who, 'its mappings are far larger than the VM\'s RAM');
    }
    if (this.sinceYield < YIELD_EVERY) return false;
    this.check();
    return true;
  }

  /** Checks a walk's kept runs and pages against the limits as they grow (a single task can hold them all). */
  kept(runs: number, pages: number): void {
    const { limits } = this.budget;
    if (runs > limits.runs) throw new ResourceExhaustedError('page runs', limits.runs, this.who);
    if (pages * 4096 > limits.bytes) throw new ResourceExhaustedError('bytes of pages', limits.bytes, this.who);
  }

  /** Whether the walker asked for a turn of the event loop since the last one. */
  get due(): boolean {
    return this.sinceYield >= YIELD_EVERY;
  }

  /** Gives the event loop a turn (timers, other requests), then checks the deadline and the pause. */
  async yield(): Promise<void> {
    this.sinceYield = 0;
    await tick();
    this.check();
  }

  private check(): void {
    throwIfAborted(this.budget.signal, this.who);
    if (this.pauseEnds !== undefined && Date.now() > this.pauseEnds) {
      throw new ResourceExhaustedError('ms of VM pause', this.budget.limits.pauseMs, this.who);
    }
  }
}
