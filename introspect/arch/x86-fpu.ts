import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { Program } from '../kernel/program.js';

export interface FpuState {
  /** Size of the XSAVE buffer in use. */
  size: number;
  xfeatures: bigint;
  xcompBv: bigint;
  /** XSAVES/XSAVEC compacted format (xcomp_bv bit 63). */
  compacted: boolean;
  mxcsr: number;
  /** The raw XSAVE area (legacy 512 bytes, header, extended components). */
  xsave: Buffer;
  /** Offset of each extended component in `xsave`, by feature number. */
  componentOffsets: Map<number, number>;
}

/** arch/x86/include/asm/fpu/types.h XFEATURE_MAX: the length of the kernel's per-feature tables. */
export const XFEATURE_MAX = 19;
/** XFEATURE_PKRU: its component holds the PKRU register. */
export const XFEATURE_PKRU = 9;

/** The FPU/SSE/AVX state of an off-CPU task (task->thread.fpu.fpstate->regs.xsave). */
export function fpuState(task: KObject): FpuState {
  const prog = task.prog;
  const fpstate = task.member('thread.fpu.fpstate').deref();
  const size = fpstate.member('size').num();
  if (size < 576 || size > 1 << 16) throw new BadDataError(`${fpstate.path}.size is ${size}`);
  const xsaveObj = fpstate.member('regs.xsave');
  const xsave = prog.read(xsaveObj.address, size, `${xsaveObj.path}`);
  const xfeatures = xsave.readBigUInt64LE(512);
  const xcompBv = xsave.readBigUInt64LE(520);
  const compacted = (xcompBv >> 63n) === 1n;
  // The kernel's own tables of where each component sits (arch/x86/kernel/fpu/xstate.c).
  const table = prog.symbols.lookup(compacted ? 'xstate_comp_offsets' : 'xstate_offsets');
  const componentOffsets = new Map<number, number>();
  if (table) {
    const raw = prog.read(table.address, XFEATURE_MAX * 4, table.name);
    for (let f = 2; f < XFEATURE_MAX; f++) {
      const off = raw.readUInt32LE(f * 4);
      if ((xfeatures >> BigInt(f)) & 1n && off >= 576 && off < size) componentOffsets.set(f, off);
    }
  }
  return { size, xfeatures, xcompBv, compacted, mxcsr: xsave.readUInt32LE(24), xsave, componentOffsets };
}

/** ymm0-15 (xmm from the legacy area, upper halves from the AVX component), as hex of 32 bytes each. */
export function ymmRegisters(fpu: FpuState): string[] {
  const avx = fpu.componentOffsets.get(2);
  return Array.from({ length: 16 }, (_, i) => {
    const lo = fpu.xsave.subarray(160 + i * 16, 176 + i * 16);
    const hi = avx !== undefined ? fpu.xsave.subarray(avx + i * 16, avx + 16 + i * 16) : Buffer.alloc(16);
    return Buffer.concat([lo, hi]).toString('hex');
  });
}

/**
 * The XSAVE features user space may use (fpu_user_cfg.max_features) and the
 * standard-format size of each (xstate_sizes), as ptrace's XSTATE regset
 * lays them out. Without the symbols: the task's own features, no sizes.
 */
export function userXstate(prog: Program, fallbackFeatures: bigint): { supported: bigint; sizes?: number[] } {
  const cfg = prog.symbols.lookup('fpu_user_cfg');
  const supported = cfg ? KObject.struct(prog, 'fpu_state_config', cfg.address).member('max_features').value() : fallbackFeatures;
  const table = prog.symbols.lookup('xstate_sizes');
  if (!table) return { supported };
  const raw = prog.read(table.address, XFEATURE_MAX * 4, 'xstate_sizes');
  return { supported, sizes: Array.from({ length: XFEATURE_MAX }, (_, f) => raw.readUInt32LE(f * 4)) };
}

/** PKRU where the kernel keeps it apart from the XSAVE buffer (thread_struct.pkru, since 5.14), else undefined. */
export function threadPkru(task: KObject): number | undefined {
  return task.member('thread').has('pkru') ? task.member('thread.pkru').num() : undefined;
}
