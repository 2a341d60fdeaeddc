import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/** More supplementary groups than NGROUPS_MAX (65536) is corrupt. */
const NGROUPS_MAX = 65536;

/** A kernel_cap_t as one 64-bit mask. */
export function capabilitySet(obj: KObject): bigint {
  // kernel_cap_t is u32 cap[2] in 6.1 and a u64 `val` from 6.3 on (commit f122a08b197d "capability: just use a 'u64' instead of a 'u32[2]' array").
  if (obj.has('val')) return obj.member('val').value();
  const cap = obj.member('cap');
  return cap.index(0).value() | (cap.index(1).value() << 32n);
}

/** ids, capability sets and securebits of a task's cred (task->cred, the objective credentials). */
export function credentials(task: KObject): Record<string, number | bigint> {
  const cred = task.member('cred').deref();
  const out: Record<string, number | bigint> = {};
  for (const id of ['uid', 'gid', 'suid', 'sgid', 'euid', 'egid', 'fsuid', 'fsgid']) out[id] = cred.member(`${id}.val`).num();
  for (const c of ['cap_inheritable', 'cap_permitted', 'cap_effective', 'cap_bset', 'cap_ambient']) out[c] = capabilitySet(cred.member(c));
  out.securebits = cred.member('securebits').num();
  return out;
}

/** The supplementary groups of a task's cred (cred->group_info), as getgroups(2) lists them. */
export function supplementaryGroups(task: KObject): number[] {
  const cred = task.member('cred').deref();
  const groups: number[] = [];
  const gi = cred.member('group_info').value();
  if (gi === 0n) return groups;
  const info = KObject.struct(task.prog, 'group_info', gi);
  const n = info.member('ngroups').num();
  if (n > NGROUPS_MAX) throw new BadDataError(`${info.path}.ngroups is ${n}`);
  for (let i = 0; i < n; i++) groups.push(info.member('gid').flexIndex(i, n).member('val').num());
  return groups;
}

/** The audit login uid (task->loginuid, /proc/PID/loginuid). */
export function loginUid(task: KObject): number {
  return task.member('loginuid.val').num();
}
