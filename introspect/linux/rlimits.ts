import { KObject } from '../kernel/object.js';

/** include/uapi/asm-generic/resource.h RLIM_NLIMITS. */
const RLIM_NLIMITS = 16;

/** Resource limits (signal->rlim), in RLIMIT_* order. */
export function rlimits(task: KObject): { cur: bigint; max: bigint }[] {
  const rlim = task.member('signal').deref().member('rlim');
  return Array.from({ length: RLIM_NLIMITS }, (_, i) => ({ cur: rlim.index(i).member('rlim_cur').value(), max: rlim.index(i).member('rlim_max').value() }));
}
