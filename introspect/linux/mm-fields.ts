import { KObject } from '../kernel/object.js';
import { PathRoot, dPath } from './d-path.js';

/** The layout fields of an mm_struct (/proc/PID/stat's startcode..env_end). */
export const MM_FIELDS = ['start_code', 'end_code', 'start_data', 'end_data', 'start_brk', 'brk', 'start_stack', 'arg_start', 'arg_end', 'env_start', 'env_end'] as const;
export type MmField = (typeof MM_FIELDS)[number];

/** An mm's layout fields by name. */
export function mmLayout(mm: KObject): Record<MmField, bigint> {
  const out = {} as Record<MmField, bigint>;
  for (const f of MM_FIELDS) out[f] = mm.member(f).value();
  return out;
}

/** A task's mm layout, page table root and executable, or undefined for a kernel thread. */
export function mmFields(task: KObject, root: PathRoot): Record<string, bigint | string> | undefined {
  if (task.member('mm').value() === 0n) return undefined;
  const mm = task.member('mm').deref();
  const out: Record<string, bigint | string> = { ...mmLayout(mm) };
  out.pgd = mm.member('pgd').value();
  const exe = mm.member('exe_file').value();
  if (exe !== 0n) out.exe = dPath(KObject.struct(task.prog, 'file', exe).member('f_path'), root);
  return out;
}
