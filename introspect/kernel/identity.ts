import { PhysicalMemory } from '../memory/physical-memory.js';
import { findVmcoreinfo, verifyUtsname } from './vmcoreinfo.js';

/** The kallsyms tables the kernel announces in vmcoreinfo (6.0+). */
const KALLSYMS_SYMBOLS = [
  'kallsyms_names', 'kallsyms_num_syms', 'kallsyms_token_table', 'kallsyms_token_index',
  'kallsyms_offsets', 'kallsyms_relative_base', 'kallsyms_addresses',
] as const;

/** Who the guest kernel is, read from its RAM alone. */
export interface KernelIdentity {
  osRelease: string;
  kernelOffset: bigint;
  physBase: bigint;
  pagingLevels: 4 | 5;
  vmcoreinfoAddress: bigint;
  kallsyms: Partial<Record<(typeof KALLSYMS_SYMBOLS)[number], bigint>>;
  /** init_uts_ns read through the kernel-image mapping: proves the RAM layout and phys_base. */
  utsname: { sysname: string; release: string };
}

export function readKernelIdentity(mem: PhysicalMemory): KernelIdentity {
  const info = findVmcoreinfo(mem);
  const kallsyms: KernelIdentity['kallsyms'] = {};
  for (const name of KALLSYMS_SYMBOLS) {
    const value = info.symbols.get(name);
    if (value !== undefined) kallsyms[name] = value;
  }
  return {
    osRelease: info.osRelease,
    kernelOffset: info.kernelOffset,
    physBase: info.physBase,
    pagingLevels: info.pagingLevels,
    vmcoreinfoAddress: info.noteAddress,
    kallsyms,
    utsname: verifyUtsname(mem, info),
  };
}
