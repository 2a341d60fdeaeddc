import { KObject } from '../kernel/object.js';
import { userInode, userPath } from './open-file.js';
import { PathRoot, dPath } from './d-path.js';
import { mapleTreeForEach } from './maple-tree.js';

/** include/linux/mm.h vm_flags. */
export const VM = {
  READ: 0x1n, WRITE: 0x2n, EXEC: 0x4n, SHARED: 0x8n, MAYSHARE: 0x80n, GROWSDOWN: 0x100n, PFNMAP: 0x400n, LOCKED: 0x2000n, IO: 0x4000n,
  SEQ_READ: 0x8000n, RAND_READ: 0x10000n, DONTCOPY: 0x20000n, NORESERVE: 0x200000n, HUGETLB: 0x400000n,
  DONTDUMP: 0x4000000n, HUGEPAGE: 0x20000000n, NOHUGEPAGE: 0x40000000n, MERGEABLE: 0x80000000n,
} as const;
/** arch/x86/include/asm/mmu.h MM_CONTEXT_HAS_VSYSCALL: the gate VMA is shown for this mm. */
const MM_CONTEXT_HAS_VSYSCALL = 2n;
/** vsyscall_64.c: enum { EMULATE, XONLY, NONE } vsyscall_mode. */
const VSYSCALL_NONE = 2n;
const MAX_VMAS = 1 << 20;

/** The VMAs of an mm, in address order, from its maple tree (6.1+). */
export function* forEachVma(mm: KObject): Generator<KObject> {
  for (const [, , entry] of mapleTreeForEach(mm.prog, mm.member('mm_mt').address, MAX_VMAS)) {
    yield KObject.struct(mm.prog, 'vm_area_struct', entry);
  }
}

/** x86's gate VMA ([vsyscall]) that /proc appends after an mm's own VMAs (get_gate_vma). */
export function gateVma(mm: KObject): KObject | undefined {
  const prog = mm.prog;
  const gate = prog.symbols.lookup('gate_vma');
  const mode = prog.symbols.lookup('vsyscall_mode');
  if (!gate || !mode) return undefined;
  if (BigInt(prog.u32(mode.address, 'vsyscall_mode')) === VSYSCALL_NONE) return undefined;
  if ((mm.member('context.flags').value() & MM_CONTEXT_HAS_VSYSCALL) === 0n) return undefined;
  return KObject.struct(prog, 'vm_area_struct', gate.address);
}

/** The name special mappings ([vdso], [vvar], [vsyscall]) give through vm_ops->name. */
function specialName(vma: KObject): string | undefined {
  const prog = vma.prog;
  const ops = vma.member('vm_ops').value();
  if (ops === 0n) return undefined;
  if (ops === prog.symbols.lookup('gate_vma_ops')?.address) return '[vsyscall]';
  if (ops === prog.symbols.lookup('special_mapping_vmops')?.address) {
    const sm = KObject.struct(prog, 'vm_special_mapping', vma.member('vm_private_data').value());
    return prog.cstring(sm.member('name').value(), 64, `${sm.path}.name`);
  }
  return undefined;
}

function hex(v: bigint, width: number): string {
  return v.toString(16).padStart(width, '0');
}

/** /proc/PID/maps pads names to this column (fs/proc/task_mmu.c: 25 + sizeof(void *) * 6 - 1). */
const NAME_COLUMN = 72;

/** The /proc/PID/maps line of a VMA (show_map_vma), paths as a reader at `root` sees them. */
export function mapsLine(vma: KObject, mm: KObject, root: PathRoot): string {
  const start = vma.member('vm_start').value();
  const end = vma.member('vm_end').value();
  const flags = vma.member('vm_flags').value();
  const file = vma.member('vm_file').value();
  let dev = 0;
  let ino = 0n;
  let pgoff = 0n;
  let fileObj: KObject | undefined;
  if (file !== 0n) {
    fileObj = KObject.struct(vma.prog, 'file', file);
    const inode = userInode(fileObj);
    dev = inode.member('i_sb').deref().member('s_dev').num();
    ino = inode.member('i_ino').value();
    pgoff = vma.member('vm_pgoff').value() << 12n;
  }
  const perms = (flags & VM.READ ? 'r' : '-') + (flags & VM.WRITE ? 'w' : '-') + (flags & VM.EXEC ? 'x' : '-') + (flags & VM.MAYSHARE ? 's' : 'p');
  const prefix = `${hex(start, 8)}-${hex(end, 8)} ${perms} ${hex(pgoff, 8)} ${hex(BigInt(dev >>> 20), 2)}:${hex(BigInt(dev & 0xfffff), 2)} ${ino} `;
  const pad = (name: string) => prefix.padEnd(NAME_COLUMN, ' ') + ' ' + name;
  if (fileObj) return pad(dPath(userPath(fileObj), root).replace(/\n/g, '\\012'));
  const name = anonVmaName(vma, mm);
  return name ? pad(name) : prefix;
}

/**
 * The name /proc/PID/maps gives a VMA without a file (show_map_vma):
 * [vdso], [vvar], [vsyscall], [heap], [stack], [anon:NAME], or undefined.
 */
export function anonVmaName(vma: KObject, mm: KObject): string | undefined {
  const special = specialName(vma);
  if (special) return special;
  const start = vma.member('vm_start').value();
  const end = vma.member('vm_end').value();
  if (start <= mm.member('brk').value() && end >= mm.member('start_brk').value()) return '[heap]';
  const stack = mm.member('start_stack').value();
  if (start <= stack && end >= stack) return '[stack]';
  if (vma.has('anon_name')) {
    const anon = vma.member('anon_name').value();
    if (anon !== 0n) {
      const name = KObject.struct(vma.prog, 'anon_vma_name', anon).member('name');
      return `[anon:${vma.prog.cstring(name.address, 256, name.path)}]`;
    }
  }
  return undefined;
}

/** The whole /proc/PID/maps text of a task's mm. */
export function mapsText(task: KObject, root: PathRoot): string {
  const mmPtr = task.member('mm').value();
  if (mmPtr === 0n) return '';
  const mm = task.member('mm').deref();
  const lines = [...forEachVma(mm)].map((vma) => mapsLine(vma, mm, root));
  const gate = gateVma(mm);
  if (gate) lines.push(mapsLine(gate, mm, root));
  return lines.map((l) => l + '\n').join('');
}
