import fs from 'node:fs';
import path from 'node:path';
import { FailedPreconditionError, NotFoundError } from '../../common/errors.js';
import { AnyMessage, packMessage } from './api.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** "key value" lines (cpu.stat, memory.stat, memory.events). */
function keyed(dir: string, file: string): Map<string, string> {
  const text = read(dir, file) ?? '';
  return new Map(text.split('\n').filter(Boolean).map((line) => line.split(' ') as [string, string]));
}

function read(dir: string, file: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8').trim();
  } catch {
    return undefined;
  }
}

const U64_MAX = (1n << 64n) - 1n;

/** A uint64 counter; "max" (no limit) as 2^64-1, as containerd's cgroups library gives it; unreadable as 0. */
function counter(value: string | undefined): bigint {
  if (value === 'max') return U64_MAX;
  if (!/^\d+$/.test(value ?? '')) return 0n;
  const n = BigInt(value!);
  return n > U64_MAX ? U64_MAX : n;
}

/** A container's cgroup metrics (cgroup: its cgroup path), as containerd's cgroups library reports them for the host's cgroup version. */
export function containerStats(cgroup: string): AnyMessage {
  return unifiedHierarchy() ? statsV2(cgroup) : statsV1(cgroup);
}

let unified: boolean | undefined;

/** Whether the guest mounts cgroup v2 at the root: known once, containerd's Stats ask every few seconds. */
function unifiedHierarchy(): boolean {
  return (unified ??= fs.existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers')));
}

/** io.containerd.cgroups.v2.Metrics from a cgroup v2 directory. */
function statsV2(cgroup: string): AnyMessage {
  const dir = path.join(CGROUP_ROOT, cgroup);
  if (!fs.existsSync(dir)) throw new NotFoundError(`cgroup ${dir} of the container does not exist`);
  const cpu = keyed(dir, 'cpu.stat');
  const mem = keyed(dir, 'memory.stat');
  const events = keyed(dir, 'memory.events');
  const memory: Record<string, bigint> = {
    usage: counter(read(dir, 'memory.current')),
    usage_limit: counter(read(dir, 'memory.max')),
    swap_usage: counter(read(dir, 'memory.swap.current')),
    swap_limit: counter(read(dir, 'memory.swap.max')),
  };
  for (const key of ['anon', 'file', 'kernel_stack', 'slab', 'sock', 'shmem', 'file_mapped', 'file_dirty', 'file_writeback', 'anon_thp',
    'inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable', 'slab_reclaimable', 'slab_unreclaimable', 'pgfault',
    'pgmajfault', 'workingset_refault', 'workingset_activate', 'workingset_nodereclaim', 'pgrefill', 'pgscan', 'pgsteal', 'pgactivate',
    'pgdeactivate', 'pglazyfree', 'pglazyfreed', 'thp_fault_alloc', 'thp_collapse_alloc']) {
    memory[key] = counter(mem.get(key));
  }
  const pidsMax = read(dir, 'pids.max');
  return packMessage('io.containerd.cgroups.v2.Metrics', {
    pids: { current: counter(read(dir, 'pids.current')), limit: pidsMax === 'max' ? 0n : counter(pidsMax) },
    cpu: {
      usage_usec: counter(cpu.get('usage_usec')), user_usec: counter(cpu.get('user_usec')), system_usec: counter(cpu.get('system_usec')),
      nr_periods: counter(cpu.get('nr_periods')), nr_throttled: counter(cpu.get('nr_throttled')), throttled_usec: counter(cpu.get('throttled_usec')),
    },
    memory,
    memory_events: {
      low: counter(events.get('low')), high: counter(events.get('high')), max: counter(events.get('max')),
      oom: counter(events.get('oom')), oom_kill: counter(events.get('oom_kill')),
    },
  });
}

/** io.containerd.cgroups.v1.Metrics (pids, CPU, memory) from the v1 hierarchies (a hybrid host). */
function statsV1(cgroup: string): AnyMessage {
  const dir = (controller: string) => path.join(CGROUP_ROOT, controller, cgroup);
  if (!fs.existsSync(dir('memory'))) throw new NotFoundError(`cgroup ${dir('memory')} of the container does not exist`);
  const cpuacct = keyed(dir('cpuacct'), 'cpuacct.stat');
  // cpuacct.stat counts USER_HZ ticks (100 a second on Linux): nanoseconds as upstream reports them.
  const ticks = (v: string | undefined) => { const ns = counter(v) * 10_000_000n; return ns > U64_MAX ? U64_MAX : ns; };
  const mem = keyed(dir('memory'), 'memory.stat');
  const entry = (prefix: string) => ({
    limit: counter(read(dir('memory'), `${prefix}.limit_in_bytes`)), usage: counter(read(dir('memory'), `${prefix}.usage_in_bytes`)),
    max: counter(read(dir('memory'), `${prefix}.max_usage_in_bytes`)), failcnt: counter(read(dir('memory'), `${prefix}.failcnt`)),
  });
  const pidsMax = read(dir('pids'), 'pids.max');
  return packMessage('io.containerd.cgroups.v1.Metrics', {
    pids: { current: counter(read(dir('pids'), 'pids.current')), limit: pidsMax === 'max' ? 0n : counter(pidsMax) },
    cpu: { usage: { total: counter(read(dir('cpuacct'), 'cpuacct.usage')), user: ticks(cpuacct.get('user')), kernel: ticks(cpuacct.get('system')) } },
    memory: {
      cache: counter(mem.get('cache')), rss: counter(mem.get('rss')), mapped_file: counter(mem.get('mapped_file')),
      pg_fault: counter(mem.get('pgfault')), pg_maj_fault: counter(mem.get('pgmajfault')),
      usage: entry('memory'), swap: entry('memory.memsw'),
    },
  });
}

/** linux.cgroupsPath of a bundle's config.json ("" when it has none; a config runc cannot read either, runc reports). */
export function specCgroupsPath(bundle: string): string {
  const file = path.join(bundle, 'config.json');
  let spec: { linux?: { cgroupsPath?: unknown } };
  try {
    spec = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof spec;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`bundle ${bundle} has no config.json`);
    return '';
  }
  return typeof spec.linux?.cgroupsPath === 'string' ? spec.linux.cgroupsPath : '';
}

/** The container's cgroup v2 path from its cgroupsPath (containerd's cgroupfs layout: /NAMESPACE/ID). */
export function containerCgroup(cgroupsPath: string): string {
  if (!cgroupsPath.startsWith('/')) throw new FailedPreconditionError(`cgroupsPath ${JSON.stringify(cgroupsPath)}: only cgroupfs paths (/a/b) are supported, not systemd slices`);
  return path.posix.normalize(cgroupsPath);
}
