import { XFEATURE_PKRU, fpuState, threadPkru, userXstate } from '../arch/x86-fpu.js';
import { tlsDescriptors } from '../arch/x86-tls.js';
import { PT_REGS, clearChildTid, userRegisters } from '../arch/x86-user-regs.js';
import { KObject } from '../kernel/object.js';

/** include/linux/errno.h: restart codes a frozen or stopped task may hold in ax. */
const ERESTARTSYS = -512n;
const ERESTARTNOINTR = -513n;
const ERESTARTNOHAND = -514n;
const ERESTART_RESTARTBLOCK = -516n;
const EINTR = -4n;
const U64 = (1n << 64n) - 1n;
/** arch/x86/include/asm/segment.h: GDT_ENTRY_TLS_MIN on x86-64. */
const GDT_ENTRY_TLS_MIN = 12;
/** XSAVE components CRIU keeps (criu/arch/x86/crtools.c save_task_regs), by feature number and field. */
const XSAVE_FIELDS: [number, string, 32 | 64][] = [
  [2, 'ymmh_space', 32], [3, 'bndreg_state', 64], [4, 'bndcsr_state', 64], [5, 'opmask_reg', 64],
  [6, 'zmm_upper', 64], [7, 'hi16_zmm', 64], [9, 'pkru', 32],
];

/**
 * General registers as CRIU records them: pt_regs, with an interrupted
 * system call set up to restart as compel_get_task_regs() does.
 */
export function criuGpregs(task: KObject): Record<string, bigint | string> {
  const r = userRegisters(task);
  let { ax, ip } = r;
  if (BigInt.asIntN(64, r.orig_ax) >= 0n) {
    switch (BigInt.asIntN(64, ax)) {
      case ERESTARTNOHAND: case ERESTARTSYS: case ERESTARTNOINTR:
        ax = r.orig_ax;
        ip = (ip - 2n) & U64;
        break;
      case ERESTART_RESTARTBLOCK:
        ax = EINTR & U64;
        break;
    }
  }
  // criu/arch/x86 user_regs_struct64: pt_regs, then the segment state of thread_struct.
  const names = [...PT_REGS, 'fs_base', 'gs_base', 'ds', 'es'];
  const out: Record<string, bigint | string> = {};
  for (const n of names) out[n] = n === 'ax' ? ax : n === 'ip' ? ip : r[n];
  out.fs = r.fsindex;
  out.gs = r.gsindex;
  out.mode = 'NATIVE';
  return out;
}

function u32s(buf: Buffer): number[] {
  return Array.from({ length: buf.length / 4 }, (_, i) => buf.readUInt32LE(i * 4));
}

function u64s(buf: Buffer): bigint[] {
  return Array.from({ length: buf.length / 8 }, (_, i) => buf.readBigUInt64LE(i * 8));
}

/**
 * FPU state as CRIU records it: the FXSAVE legacy area, then each XSAVE
 * component the CPU supports in the standard layout ptrace gives
 * (components in their init state read as zeros; PKRU from thread.pkru).
 */
export function criuFpregs(task: KObject): Record<string, unknown> {
  const fpu = fpuState(task);
  const x = fpu.xsave;
  const { supported, sizes } = userXstate(task.prog, fpu.xfeatures);
  const pkru = threadPkru(task);
  const xsave: Record<string, unknown> = { xstate_bv: fpu.xfeatures };
  for (const [feature, field, width] of XSAVE_FIELDS) {
    if (!((supported >> BigInt(feature)) & 1n) || !sizes) continue;
    const size = sizes[feature];
    let data = Buffer.alloc(size);
    const off = fpu.componentOffsets.get(feature);
    if (feature === XFEATURE_PKRU && pkru !== undefined) {
      // Since 5.14 the kernel keeps PKRU in thread_struct, not in the XSAVE buffer.
      data.writeUInt32LE(pkru, 0);
    } else if (off !== undefined && (fpu.xfeatures >> BigInt(feature)) & 1n) {
      data = Buffer.from(x.subarray(off, off + size));
    }
    xsave[field] = width === 32 ? u32s(data) : u64s(data);
  }
  return {
    cwd: x.readUInt16LE(0), swd: x.readUInt16LE(2), twd: x.readUInt16LE(4), fop: x.readUInt16LE(6),
    rip: x.readBigUInt64LE(8), rdp: x.readBigUInt64LE(16), mxcsr: x.readUInt32LE(24), mxcsr_mask: x.readUInt32LE(28),
    st_space: u32s(x.subarray(32, 160)), xmm_space: u32s(x.subarray(160, 416)),
    xsave,
  };
}

/** The TLS entries of the GDT as user_desc (arch/x86/kernel/tls.c fill_user_desc). */
export function criuTls(task: KObject): Record<string, unknown>[] {
  return tlsDescriptors(task).map((hex, i) => {
    const d = Buffer.from(hex, 'hex');
    const lo = d.readUInt32LE(0);
    const hi = d.readUInt32LE(4);
    const type = (hi >>> 8) & 0xf;
    const contents = type >> 2;
    return {
      entry_number: GDT_ENTRY_TLS_MIN + i,
      base_addr: ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0,
      limit: (lo & 0xffff) | (hi & 0xf0000),
      seg_32bit: ((hi >>> 22) & 1) === 1,
      contents_h: (contents & 2) !== 0,
      contents_l: (contents & 1) !== 0,
      read_exec_only: (type & 2) === 0,
      limit_in_pages: ((hi >>> 23) & 1) === 1,
      seg_not_present: ((hi >>> 15) & 1) === 0,
      usable: ((hi >>> 20) & 1) === 1,
    };
  });
}

/** core_entry.thread_info of a frozen, off-CPU task, as CRIU would write it. */
export function criuThreadInfo(task: KObject): Record<string, unknown> {
  return {
    clear_tid_addr: clearChildTid(task),
    gpregs: criuGpregs(task),
    fpregs: criuFpregs(task),
    tls: criuTls(task),
  };
}
