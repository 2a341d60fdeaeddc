import { KObject } from '../kernel/object.js';
import { pidNumbers } from './tasks.js';

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

/** The inode number of a network namespace, by its struct net (what a socket's sk_net points at). */
export function netNamespaceInum(net: KObject): bigint {
  return net.member('ns.inum').value();
}

/** A task's nsproxy (its namespaces but pid and user), undefined once it exits. */
export function taskNsproxy(task: KObject): KObject | undefined {
  return task.member('nsproxy').value() === 0n ? undefined : task.member('nsproxy').deref();
}
