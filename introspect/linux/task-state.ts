import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { PathRoot, dPath } from './d-path.js';
import { pidNumbers } from './tasks.js';

/** arch/x86/include/asm/page_64_types.h: THREAD_SIZE = PAGE_SIZE << 2 (no KASAN). */
const THREAD_SIZE = 16384n;
const RLIM_NLIMITS = 16;
const NSIG = 64;
const PT_REGS = ['r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx', 'dx', 'si', 'di', 'orig_ax', 'ip', 'cs', 'flags', 'sp', 'ss'];

/**
 * User registers of a task that is off-CPU: the pt_regs the entry code saved
 * at the top of its kernel stack (task_pt_regs), plus fs/gs base from
 * thread_struct (saved at context switch).
 */
export function userRegisters(task: KObject): Record<string, bigint> {
  const stack = task.member('stack').value();
  if (stack === 0n || stack % THREAD_SIZE !== 0n) throw new BadDataError(`${task.path}.stack 0x${stack.toString(16)} is not a kernel stack`);
  const regs = KObject.struct(task.prog, 'pt_regs', stack + THREAD_SIZE - BigInt(task.prog.btf.struct('pt_regs').size));
  const out: Record<string, bigint> = {};
  for (const name of PT_REGS) out[name] = regs.member(name).value();
  const thread = task.member('thread');
  out.fs_base = thread.member('fsbase').value();
  out.gs_base = thread.member('gsbase').value();
  out.fsindex = thread.member('fsindex').value();
  out.gsindex = thread.member('gsindex').value();
  out.ds = thread.member('ds').value();
  out.es = thread.member('es').value();
  return out;
}

/** The three TLS descriptors of the GDT a task loads on switch (thread.tls_array, set by set_thread_area). */
export function tlsDescriptors(task: KObject): string[] {
  const tls = task.member('thread.tls_array');
  return [0, 1, 2].map((i) => task.prog.read(tls.index(i).address, 8, `${tls.path}[${i}]`).toString('hex'));
}

/** Process group and session ids in the initial pid namespace (signal->pids[PIDTYPE_PGID], [PIDTYPE_SID]). */
export function processGroup(task: KObject): { pgid: number; sid: number } {
  const pids = task.member('signal').deref().member('pids');
  const nr = (type: number) => {
    const pid = pids.index(type);
    return pid.value() === 0n ? 0 : pidNumbers(pid.deref())[0];
  };
  // enum pid_type { PIDTYPE_PID, PIDTYPE_TGID, PIDTYPE_PGID, PIDTYPE_SID }
  return { pgid: nr(2), sid: nr(3) };
}

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

const XFEATURE_MAX = 19;

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

function sigset(obj: KObject): bigint {
  return obj.member('sig').index(0).value();
}

export interface SignalState {
  blocked: bigint;
  pending: bigint;
  sharedPending: bigint;
  ignored: bigint;
  caught: bigint;
  actions: { signal: number; handler: bigint; flags: bigint; restorer: bigint; mask: bigint }[];
}

/** Blocked, pending, ignored and caught signals, and the handlers (as /proc/PID/status and CRIU see them). */
export function signalState(task: KObject): SignalState {
  const actions: SignalState['actions'] = [];
  let ignored = 0n;
  let caught = 0n;
  const action = task.member('sighand').deref().member('action');
  for (let i = 0; i < NSIG; i++) {
    const sa = action.index(i).member('sa');
    const handler = sa.member('sa_handler').value();
    if (handler === 1n) ignored |= 1n << BigInt(i);
    else if (handler !== 0n) caught |= 1n << BigInt(i);
    if (handler !== 0n) {
      actions.push({ signal: i + 1, handler, flags: sa.member('sa_flags').value(), restorer: sa.member('sa_restorer').value(), mask: sigset(sa.member('sa_mask')) });
    }
  }
  return {
    blocked: sigset(task.member('blocked')),
    pending: sigset(task.member('pending.signal')),
    sharedPending: sigset(task.member('signal').deref().member('shared_pending.signal')),
    ignored,
    caught,
    actions,
  };
}

/** Resource limits (signal->rlim), in RLIMIT_* order. */
export function rlimits(task: KObject): { cur: bigint; max: bigint }[] {
  const rlim = task.member('signal').deref().member('rlim');
  return Array.from({ length: RLIM_NLIMITS }, (_, i) => ({ cur: rlim.index(i).member('rlim_cur').value(), max: rlim.index(i).member('rlim_max').value() }));
}

function caps(obj: KObject): bigint {
  const t = obj.type;
  // kernel_cap_t is u32 cap[2] in 6.1 and a u64 `val` from 6.3 on (commit f122a08b197d "capability: just use a 'u64' instead of a 'u32[2]' array").
  if (t.kind === 'struct' && obj.has('val')) return obj.member('val').value();
  const cap = obj.member('cap');
  return cap.index(0).value() | (cap.index(1).value() << 32n);
}

export function credentials(task: KObject): Record<string, number | bigint> {
  const cred = task.member('cred').deref();
  const out: Record<string, number | bigint> = {};
  for (const id of ['uid', 'gid', 'suid', 'sgid', 'euid', 'egid', 'fsuid', 'fsgid']) out[id] = cred.member(`${id}.val`).num();
  for (const c of ['cap_inheritable', 'cap_permitted', 'cap_effective', 'cap_bset', 'cap_ambient']) out[c] = caps(cred.member(c));
  out.securebits = cred.member('securebits').num();
  return out;
}

/** Namespace inode numbers, as readlink /proc/PID/ns/* shows them. */
export function namespaces(task: KObject): Record<string, number> {
  const out: Record<string, number> = {};
  const inum = (obj: KObject) => obj.member('ns.inum').num();
  const pid = task.member('thread_pid').deref();
  const level = pidNumbers(pid).length - 1;
  out.pid = inum(pid.member('numbers').flexIndex(level, level + 1).member('ns').deref());
  out.user = inum(task.member('cred').deref().member('user_ns').deref());
  if (task.member('nsproxy').value() === 0n) return out;
  const nsproxy = task.member('nsproxy').deref();
  const map: [string, string][] = [['uts', 'uts_ns'], ['ipc', 'ipc_ns'], ['mnt', 'mnt_ns'], ['pid_for_children', 'pid_ns_for_children'],
    ['net', 'net_ns'], ['time', 'time_ns'], ['time_for_children', 'time_ns_for_children'], ['cgroup', 'cgroup_ns']];
  for (const [name, member] of map) {
    if (!nsproxy.has(member) || nsproxy.member(member).value() === 0n) continue;
    out[name] = inum(nsproxy.member(member).deref());
  }
  return out;
}

/** cwd and root as readlink /proc/PID/cwd and /proc/PID/root show them. */
export function fsPaths(task: KObject, root: PathRoot): { cwd: string; root: string } {
  const fs = task.member('fs').deref();
  return { cwd: dPath(fs.member('pwd'), root), root: dPath(fs.member('root'), root) };
}

const MM_FIELDS = ['start_code', 'end_code', 'start_data', 'end_data', 'start_brk', 'brk', 'start_stack', 'arg_start', 'arg_end', 'env_start', 'env_end'];

export function mmFields(task: KObject, root: PathRoot): Record<string, bigint | string> | undefined {
  if (task.member('mm').value() === 0n) return undefined;
  const mm = task.member('mm').deref();
  const out: Record<string, bigint | string> = {};
  for (const f of MM_FIELDS) out[f] = mm.member(f).value();
  out.pgd = mm.member('pgd').value();
  const exe = mm.member('exe_file').value();
  if (exe !== 0n) out.exe = dPath(KObject.struct(task.prog, 'file', exe).member('f_path'), root);
  return out;
}
