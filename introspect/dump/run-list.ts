const PAGE = 4096;

/** A run of pages as numbers: virtual and physical page frame numbers (both below 2^53), and a page count. */
export interface Run {
  vpn: number;
  ppn: number;
  pages: number;
}

/**
 * Physically contiguous runs of pages in address order, packed three
 * doubles a run: a hostile guest can make millions of runs, and objects of
 * bigints cost ~150 bytes each where this costs 24. Page frame numbers fit
 * a double exactly (virtual ones below 2^45, physical below 2^40).
 */
export class RunList {
  private data = new Float64Array(3 * 64);
  length = 0;
  /** Sum of the runs' pages. */
  pages = 0;

  /** Appends a run, merged into the last one when it continues it virtually and physically. */
  push(vpn: number, ppn: number, pages: number): void {
    const n = this.length;
    if (n > 0) {
      const d = this.data;
      const at = 3 * (n - 1);
      if (d[at] + d[at + 2] === vpn && d[at + 1] + d[at + 2] === ppn) {
        d[at + 2] += pages;
        this.pages += pages;
        return;
      }
    }
    if (3 * (n + 1) > this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[3 * n] = vpn;
    this.data[3 * n + 1] = ppn;
    this.data[3 * n + 2] = pages;
    this.length = n + 1;
    this.pages += pages;
  }

  /** Appends a run given in bytes and bigint addresses (page aligned). */
  pushBytes(va: bigint, phys: bigint, size: bigint): void {
    this.push(Number(va >> 12n), Number(phys >> 12n), Number(size >> 12n));
  }

  vpn(i: number): number { return this.data[3 * i]; }
  ppn(i: number): number { return this.data[3 * i + 1]; }
  count(i: number): number { return this.data[3 * i + 2]; }

  get(i: number): Run {
    return { vpn: this.data[3 * i], ppn: this.data[3 * i + 1], pages: this.data[3 * i + 2] };
  }

  *[Symbol.iterator](): Generator<Run> {
    for (let i = 0; i < this.length; i++) yield this.get(i);
  }

  /** The same runs, for comparing two walks. */
  equals(other: RunList): boolean {
    if (other.length !== this.length) return false;
    for (let i = 0; i < 3 * this.length; i++) if (this.data[i] !== other.data[i]) return false;
    return true;
  }
}

/** Pages of the second walk at another physical address than in the first: where they go in the pages image. */
export interface MovedRun extends Run {
  /** Byte offset in the pages image (the first walk's order). */
  at: number;
}

/**
 * Compares two walks of the same VMAs, in one pass over both (sorted by
 * address; no per-page map, so any number of pages works). `sameSet` is
 * false when pages appeared or went; otherwise `moved` lists the pages now
 * elsewhere, as runs.
 */
export function diffRuns(before: RunList, after: RunList): { sameSet: boolean; moved: MovedRun[]; movedPages: number } {
  const moved: MovedRun[] = [];
  let movedPages = 0;
  if (before.pages !== after.pages) return { sameSet: false, moved, movedPages };
  let i = 0;
  let j = 0;
  let oi = 0; // pages of before's run i already compared
  let oj = 0;
  let at = 0;
  while (i < before.length && j < after.length) {
    const va = before.vpn(i) + oi;
    if (va !== after.vpn(j) + oj) return { sameSet: false, moved: [], movedPages: 0 };
    const n = Math.min(before.count(i) - oi, after.count(j) - oj);
    const phys = after.ppn(j) + oj;
    // Both runs are contiguous: within the overlap, either every page stayed or every page moved.
    if (before.ppn(i) + oi !== phys) {
      const last = moved[moved.length - 1];
      if (last && last.vpn + last.pages === va && last.ppn + last.pages === phys) last.pages += n;
      else moved.push({ vpn: va, ppn: phys, pages: n, at: at * PAGE });
      movedPages += n;
    }
    at += n;
    oi += n;
    oj += n;
    if (oi === before.count(i)) { i++; oi = 0; }
    if (oj === after.count(j)) { j++; oj = 0; }
  }
  if (i < before.length || j < after.length) return { sameSet: false, moved: [], movedPages: 0 };
  return { sameSet: true, moved, movedPages };
}
