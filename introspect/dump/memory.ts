import { BadDataError } from '../../common/errors.js';
import { walkRange } from '../arch/x86-64.js';
import { vdsoPagePhys } from '../arch/x86-vdso.js';
import { KObject } from '../kernel/object.js';
import { fileKind } from '../linux/files.js';
import { VM, anonVmaName, forEachVma } from '../linux/mm.js';
import { mmLayout } from '../linux/mm-fields.js';
import { mmState, savedAuxv, taskMm } from '../linux/mm-state.js';
import { isCharDevice, mappedFileFlags } from '../linux/open-file.js';
import { PageInfo } from '../linux/pages.js';
import { fileSuperblock, shmSuperblock, vmaState } from '../linux/vma-state.js';
import { initIpcNs, sysvMappingNs } from '../linux/sysv-ipc.js';
import { taskNsproxy } from '../linux/namespaces.js';
import { FileTable } from './files.js';
import { mappedMemfdId } from './fds/memfd.js';
import { IO_URING_REFUSAL } from './io-uring.js';
import { WalkMeter } from './budget.js';
import { DumpProblem } from './problem.js';
import { RunList } from './run-list.js';

/** include/uapi/asm-generic/mman*.h */
const MAP = { SHARED: 0x1, PRIVATE: 0x2, ANONYMOUS: 0x20, GROWSDOWN: 0x100, LOCKED: 0x2000, NORESERVE: 0x4000, HUGETLB: 0x40000 };
/** madvise advice numbers, as bits of vma_entry.madv (criu/proc_parse.c __parse_vmflags). */
const MADV = { RANDOM: 1, SEQUENTIAL: 2, DONTFORK: 10, MERGEABLE: 12, HUGEPAGE: 14, NOHUGEPAGE: 15, DONTDUMP: 16 };
/** criu/include/image.h VMA status bits. */
const VMA_AREA_REGULAR = 1 << 0;
const VMA_AREA_VDSO = 1 << 3;
const VMA_AREA_HEAP = 1 << 5;
const VMA_FILE_PRIVATE = 1 << 6;
const VMA_FILE_SHARED = 1 << 7;
const VMA_ANON_SHARED = 1 << 8;
const VMA_ANON_PRIVATE = 1 << 9;
const VMA_AREA_SYSVIPC = 1 << 10;
const VMA_AREA_MEMFD = 1 << 14;
const VMA_AREA_VVAR = 1 << 12;
/** criu/include/pagemap.h */
const PE_LAZY = 2;
const PE_PRESENT = 4;
/** CRIU's x86 AT_VECTOR_SIZE: mm_saved_auxv holds at most 44 words. */
const AT_VECTOR_WORDS = 44;
const PAGE = 4096n;

export interface MemoryPlan {
  mm: Record<string, unknown>;
  /** pagemap entries after the head, in address order. */
  pagemap: Record<string, unknown>[];
  /** Pages to dump, in address order: the contents of pages-ID.img. */
  runs: RunList;
  pagesScanned: number;
  problems: DumpProblem[];
  /** What planPages needs to walk the same VMAs again (to verify the plan before the VM resumes). */
  vmas: VmaInfo[];
}

export interface VmaInfo {
  start: bigint;
  end: bigint;
  status: number;
  flags: number;
  dumpPages: boolean;
  lazy: boolean;
  filePrivate: boolean;
}

/** madvise hints and mmap flags CRIU reads from a VMA's VmFlags. */
function vmFlagBits(vmFlags: bigint): { flags: number; madv: bigint } {
  let flags = 0;
  let madv = 0n;
  const has = (f: bigint) => (vmFlags & f) !== 0n;
  if (has(VM.GROWSDOWN)) flags |= MAP.GROWSDOWN;
  if (has(VM.LOCKED)) flags |= MAP.LOCKED;
  if (has(VM.NORESERVE)) flags |= MAP.NORESERVE;
  if (has(VM.HUGETLB)) flags |= MAP.HUGETLB;
  const bit = (n: number) => 1n << BigInt(n);
  if (has(VM.SEQ_READ)) madv |= bit(MADV.SEQUENTIAL);
  if (has(VM.RAND_READ)) madv |= bit(MADV.RANDOM);
  if (has(VM.DONTCOPY)) madv |= bit(MADV.DONTFORK);
  if (has(VM.DONTDUMP)) madv |= bit(MADV.DONTDUMP);
  if (has(VM.MERGEABLE)) madv |= bit(MADV.MERGEABLE);
  if (has(VM.HUGEPAGE)) madv |= bit(MADV.HUGEPAGE);
  if (has(VM.NOHUGEPAGE)) madv |= bit(MADV.NOHUGEPAGE);
  return { flags, madv };
}

/**
 * The mm image of a process and the pages to dump, as CRIU decides them
 * (criu/proc_parse.c handle_vma, criu/mem.c should_dump_page): private
 * anonymous and private file VMAs below task_size, plus the vDSO, never
 * [vvar]; present pages only, not the zero page, and in private file
 * mappings only pages written to (anonymous, no longer the page cache's).
 */
export function planMemory(leader: KObject, mm: KObject, files: FileTable, who: string): MemoryPlan {
  const problems: DumpProblem[] = [];
  const shmSb = shmSuperblock(mm);
  const state = mmState(mm);
  const vmas: Record<string, unknown>[] = [];
  const infos: VmaInfo[] = [];
  for (const vma of forEachVma(mm)) {
    const { start, end, flags: vmFlags, pgoff, file } = vmaState(vma);
    const object = `mapping 0x${start.toString(16)}-0x${end.toString(16)}`;
    const problem = (kind: string, detail: string) => problems.push(new DumpProblem(who, kind, detail, { object }));
    const prot = Number(vmFlags & (VM.READ | VM.WRITE | VM.EXEC));
    const shared = (vmFlags & VM.MAYSHARE) !== 0n;
    const bits = vmFlagBits(vmFlags);
    let flags = (shared ? MAP.SHARED : MAP.PRIVATE) | bits.flags;
    const entry: Record<string, unknown> = { start, end, pgoff: 0n, shmid: 0n, prot, flags, status: 0, fd: -1n };
    if (bits.madv) entry.madv = bits.madv;
    let status: number;
    const name = file ? undefined : anonVmaName(vma, mm);
    if (file && fileKind(file, '') === 'io-uring') { problem('io-uring', IO_URING_REFUSAL); continue; }
    if (file && shmSb !== undefined && fileSuperblock(file) === shmSb) {
      // shm_mnt's files: CRIU 3.17 maps memfds and MAP_SHARED|MAP_ANONYMOUS memory alike as memfd file mappings
      // (shmid = the MEMFD file id), a SysV segment as anonymous shared memory with shmid = its IPC id (newseg's i_ino).
      // A SysV segment lives in its IPC namespace: dumped with it when the tree has its own (namespaces/ipc.ts), and
      // refused in the host's, as criu dump refuses one outside a dumped IPC namespace (an attach by id would only
      // restore where that segment exists).
      const obj = files.shmem.mapped(file, who);
      entry.pgoff = pgoff;
      entry.fdflags = mappedFileFlags(file);
      if (obj.kind !== 'sysv') {
        status = VMA_AREA_REGULAR | VMA_AREA_MEMFD | (shared ? VMA_FILE_SHARED : VMA_FILE_PRIVATE);
        entry.shmid = BigInt(mappedMemfdId(files, file, who));
      } else {
        const ns = sysvMappingNs(file);
        if (ns === initIpcNs(mm.prog) || ns !== taskNsproxy(leader)?.member('ipc_ns').value()) {
          problem('sysv-shm', `a SysV shared memory segment (shmid ${obj.ino}) of the host's IPC namespace: only a tree's own IPC namespace is dumped, with its segments (run it in one, e.g. unshare --ipc)`);
        }
        flags |= MAP.ANONYMOUS;
        status = VMA_AREA_REGULAR | VMA_ANON_SHARED | VMA_AREA_SYSVIPC;
        entry.shmid = obj.ino;
      }
    } else if (file) {
      if (isCharDevice(file)) problem('device-mapping', 'a mapping of a device is not supported');
      status = VMA_AREA_REGULAR | (shared ? VMA_FILE_SHARED : VMA_FILE_PRIVATE);
      entry.pgoff = pgoff;
      entry.shmid = BigInt(files.special(file, who, object));
      entry.fdflags = mappedFileFlags(file);
    } else {
      if (shared) problem('shared-anon', 'shared anonymous memory is not supported yet');
      flags |= MAP.ANONYMOUS;
      status = VMA_AREA_REGULAR | VMA_ANON_PRIVATE;
      if (name === '[heap]') status |= VMA_AREA_HEAP;
      if (name === '[vdso]') status |= VMA_AREA_VDSO;
      if (name === '[vvar]') status |= VMA_AREA_VVAR;
    }
    if (vmFlags & (VM.IO | VM.PFNMAP) && name !== '[vvar]') problem('io-mapping', 'an I/O or PFN mapping is not supported');
    if (vmFlags & VM.HUGETLB) problem('hugetlb', 'hugetlbfs memory is not supported yet');
    entry.flags = flags;
    entry.status = status;
    vmas.push(entry);
    const vdso = (status & VMA_AREA_VDSO) !== 0;
    const isPrivate = (status & (VMA_ANON_PRIVATE | VMA_FILE_PRIVATE)) !== 0 && end <= state.taskSize;
    infos.push({
      start, end, status, flags,
      dumpPages: vdso || ((status & VMA_AREA_VVAR) === 0 && isPrivate),
      // criu/mem.c vma_entry_can_be_lazy: private anonymous, not locked, not the vDSO.
      lazy: (flags & MAP.ANONYMOUS) !== 0 && (flags & MAP.PRIVATE) !== 0 && (flags & MAP.LOCKED) === 0 && !vdso,
      filePrivate: (status & VMA_FILE_PRIVATE) !== 0,
    });
  }
  const layout = mmLayout(mm);
  return {
    mm: {
      mm_start_code: layout.start_code, mm_end_code: layout.end_code,
      mm_start_data: layout.start_data, mm_end_data: layout.end_data,
      mm_start_stack: layout.start_stack, mm_start_brk: layout.start_brk, mm_brk: layout.brk,
      mm_arg_start: layout.arg_start, mm_arg_end: layout.arg_end,
      mm_env_start: layout.env_start, mm_env_end: layout.env_end,
      exe_file_id: state.exeFile === 0n ? 0 : files.special(KObject.struct(leader.prog, 'file', state.exeFile), who, 'exe'),
      mm_saved_auxv: savedAuxv(mm, AT_VECTOR_WORDS),
      vmas,
      dumpable: state.dumpable,
      thp_disabled: state.thpDisabled,
    },
    // The pages are planned by planPages once every part has run (dump.ts): the walk is asynchronous and metered.
    pagemap: [],
    runs: new RunList(),
    pagesScanned: 0,
    problems,
    vmas: infos,
  };
}

/** A plan's pages: pagemap entries and runs, from one walk of the page tables. */
export interface PlannedPages {
  pagemap: Record<string, unknown>[];
  runs: RunList;
  /** Pages the VMAs span, as CRIU's stats count them. */
  scanned: number;
}

/**
 * The pages of the VMAs that dump pages, walking the process's page tables
 * once per VMA. The walk's cost follows the mappings, which the guest
 * chooses (a MAP_NORESERVE mapping of the zero page can span terabytes):
 * the meter bounds its PTEs, runs and bytes, and it hands the event loop a
 * turn now and then, checking the request's deadline and the pause.
 */
export async function planPages(leader: KObject, vmas: VmaInfo[], pages: PageInfo, problems: DumpProblem[], who: string,
  meter: WalkMeter): Promise<PlannedPages> {
  const prog = leader.prog;
  const mm = taskMm(leader);
  if (!mm) throw new BadDataError(`${who} has no mm any more`);
  const root = prog.pgdPhys(mmState(mm).pgd);
  const pagemap: Record<string, unknown>[] = [];
  const runs = new RunList();
  meter.who = who;
  // Zero-page PTEs are never dumped: the walker passes over them without a run each.
  meter.zeroPage = Number(pages.zeroPages[0].phys);
  let scanned = 0;
  const swapped: { first?: bigint; pages: number } = { pages: 0 };
  for (const vma of vmas) {
    if (!vma.dumpPages) continue;
    scanned += Number((vma.end - vma.start) / PAGE);
    const flags = PE_PRESENT | (vma.lazy ? PE_LAZY : 0);
    const keep = (va: bigint, size: bigint, phys: bigint) => {
      runs.pushBytes(va, phys, size);
      meter.kept(runs.length, runs.pages);
      const last = pagemap[pagemap.length - 1];
      // Runs that touch merge, across VMAs too, as CRIU's page pipes merge them.
      if (last && (last.vaddr as bigint) + BigInt(last.nr_pages as number) * PAGE === va && last.flags === flags) {
        last.nr_pages = (last.nr_pages as number) + Number(size / PAGE);
      } else {
        pagemap.push({ vaddr: va, nr_pages: Number(size / PAGE), flags });
      }
    };
    const vdso = (vma.status & VMA_AREA_VDSO) !== 0;
    if (vdso) {
      // criu/mem.c dumps every vDSO page, touched or not: take them from the kernel's vDSO image (what vdso_fault maps).
      for (let va = vma.start; va < vma.end; va += PAGE) keep(va, PAGE, vdsoPagePhys(mm, va - vma.start, who));
      continue;
    }
    for (const run of walkRange(prog.mem, root, vma.start, vma.end, prog.pagingLevels, prog.smeMask, `${who} page tables`, meter)) {
      if (meter.due) await meter.yield();
      if (run.swapped) {
        swapped.first ??= run.va;
        swapped.pages += Number(run.size / PAGE);
        continue;
      }
      if (run.phys === undefined) continue;
      if (!vma.filePrivate) {
        // Cut out the zero pages in whole ranges: a run of the huge zero page is 512 pages skipped at once, not one by one.
        for (const [off, size] of outsideZeroPages(pages, run.phys, run.size)) keep(run.va + off, size, run.phys + off);
        continue;
      }
      for (let off = 0n; off < run.size; off += PAGE) {
        const phys = run.phys + off;
        if (pages.isZero(phys)) continue;
        if (!pages.isAnon(phys)) continue;
        keep(run.va + off, PAGE, phys);
      }
    }
  }
  if (swapped.first !== undefined) {
    problems.push(new DumpProblem(who, 'swap',
      `memory at 0x${swapped.first.toString(16)} is swapped out (${swapped.pages} pages in all, or being migrated); swap is not supported`));
  }
  return { pagemap, runs, scanned };
}

/** The parts [offset, size) of the physical range [phys, phys + size) that no zero page covers, in order. */
function outsideZeroPages(pages: PageInfo, phys: bigint, size: bigint): [bigint, bigint][] {
  let parts: [bigint, bigint][] = [[0n, size]];
  for (const z of pages.zeroPages) {
    const next: [bigint, bigint][] = [];
    for (const [off, len] of parts) {
      const lo = phys + off;
      const hi = lo + len;
      if (z.phys >= hi || z.phys + z.size <= lo) {
        next.push([off, len]);
        continue;
      }
      if (z.phys > lo) next.push([off, z.phys - lo]);
      if (z.phys + z.size < hi) next.push([z.phys + z.size - phys, hi - (z.phys + z.size)]);
    }
    parts = next;
  }
  return parts;
}
