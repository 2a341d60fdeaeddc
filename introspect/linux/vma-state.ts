import { KObject } from '../kernel/object.js';

/** One VMA's range, vm_flags and backing file. */
export interface VmaState {
  start: bigint;
  end: bigint;
  /** vm_flags (linux/mm.ts VM). */
  flags: bigint;
  /** Offset in the file, in bytes (vm_pgoff pages). */
  pgoff: bigint;
  /** The struct file mapped, when not anonymous. */
  file?: KObject;
}

export function vmaState(vma: KObject): VmaState {
  const file = vma.member('vm_file').value();
  return {
    start: vma.member('vm_start').value(),
    end: vma.member('vm_end').value(),
    flags: vma.member('vm_flags').value(),
    pgoff: vma.member('vm_pgoff').value() << 12n,
    file: file === 0n ? undefined : KObject.struct(vma.prog, 'file', file),
  };
}

/** The superblock a struct file's inode lives on (its address). */
export function fileSuperblock(file: KObject): bigint {
  return file.member('f_inode').deref().member('i_sb').value();
}

/** The internal shmem mount's superblock (shm_mnt): files on it back MAP_SHARED|MAP_ANONYMOUS, memfd and SysV memory. */
export function shmSuperblock(mm: KObject): bigint | undefined {
  const sym = mm.prog.symbols.lookup('shm_mnt');
  if (!sym) return undefined;
  const mnt = mm.prog.u64(sym.address, 'shm_mnt');
  return mnt === 0n ? undefined : KObject.struct(mm.prog, 'vfsmount', mnt).member('mnt_sb').value();
}
