import { SECCOMP_MODE_DISABLED, SECCOMP_MODE_FILTER, SeccompFilter, seccompState } from '../linux/seccomp.js';
import { DumpTree } from './tree.js';

/** include/uapi/linux/seccomp.h */
const SECCOMP_FILTER_FLAG_TSYNC = 1;
const SECCOMP_FILTER_FLAG_LOG = 2;

/** A seccomp_filter entry of seccomp.img. */
export interface SeccompImageFilter {
  filter: Buffer;
  prev?: number;
  flags: number;
}

/** What a thread's core image says of seccomp, or why it cannot. */
export interface ThreadSeccomp {
  /** thread_core fields: seccomp_mode and seccomp_filter (the index of its oldest filter, see seccompFilters); empty when none. */
  fields: Record<string, unknown>;
  problem?: string;
}

/** Every filter of the tree, in seccomp.img's order, and each thread's part of it (by tid in the initial namespace). */
export interface SeccompFilters {
  filters: SeccompImageFilter[];
  threads: Map<number, ThreadSeccomp>;
}

interface ThreadChain {
  tid: number;
  mode: number;
  chain: SeccompFilter[];
  tsync: boolean;
}

function sameChain(a: SeccompFilter[], b: SeccompFilter[]): boolean {
  // The same filter objects (TSYNC, or threads made after the filter) are the common case; criu compares the programs.
  return a.length === b.length && a.every((f, i) => f.address === b[i].address || f.insns.equals(b[i].insns));
}

/**
 * criu/seccomp.c try_use_tsync: when every thread of a process holds the
 * same chain, only the leader's is written, flagged TSYNC, and the other
 * threads are written without seccomp (the restored leader's TSYNC gives
 * it to them). Criu does this for a single-threaded process too.
 */
function useTsync(threads: ThreadChain[]): void {
  const [leader, ...others] = threads;
  if (leader.mode !== SECCOMP_MODE_FILTER) return;
  if (!others.every((t) => t.mode === leader.mode && sameChain(t.chain, leader.chain))) return;
  leader.tsync = true;
  for (const t of others) Object.assign(t, { mode: SECCOMP_MODE_DISABLED, chain: [] });
}

function problemOf(mode: number, chain: SeccompFilter[]): string | undefined {
  if (mode !== SECCOMP_MODE_DISABLED && mode !== SECCOMP_MODE_FILTER) return `runs under seccomp mode ${mode} (SECCOMP_MODE_STRICT): not supported`;
  const notify = chain.find((f) => f.notif !== 0n);
  if (notify) {
    return `has a seccomp user-notification filter (SECCOMP_FILTER_FLAG_NEW_LISTENER, seccomp_filter at 0x${notify.address.toString(16)}):` +
      ' its listener cannot be restored';
  }
  return undefined;
}

const cache = new WeakMap<DumpTree, SeccompFilters>();

/**
 * The seccomp filters of a tree as criu dump writes them
 * (criu/seccomp.c collect_filters, dump_seccomp_filters): threads in the
 * order of their pids in the initial namespace, each chain written from
 * its newest filter to its oldest, each naming the one written before it
 * (the next newer) as prev, and the thread naming its oldest: restore
 * (seccomp_prepare_threads) installs from there along prev, oldest
 * first. Forked processes sharing a chain each get a copy, as in criu.
 * Zombies hold none. Computed once per tree: the core images need the
 * indexes, seccomp.img the filters.
 */
export function seccompFilters(tree: DumpTree): SeccompFilters {
  const known = cache.get(tree);
  if (known) return known;
  const all: ThreadChain[] = [];
  const threads = new Map<number, ThreadSeccomp>();
  for (const proc of tree.processes) {
    if (proc.zombie) continue;
    const chains = proc.threads.map((t, i) => ({ tid: proc.tids[i], ...seccompState(t), tsync: false }));
    const problems = chains.map((c) => problemOf(c.mode, c.chain));
    if (problems.some((p) => p)) {
      chains.forEach((c, i) => threads.set(c.tid, { fields: {}, problem: problems[i] }));
      continue;
    }
    useTsync(chains);
    all.push(...chains);
  }
  const filters: SeccompImageFilter[] = [];
  for (const t of all.sort((x, y) => x.tid - y.tid)) {
    if (t.mode === SECCOMP_MODE_DISABLED) {
      threads.set(t.tid, { fields: {} });
      continue;
    }
    const first = filters.length;
    for (const f of t.chain) {
      const flags = (f.log ? SECCOMP_FILTER_FLAG_LOG : 0) | (t.tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0);
      filters.push({ filter: f.insns, ...(filters.length > first ? { prev: filters.length - 1 } : {}), flags });
    }
    threads.set(t.tid, { fields: { seccomp_mode: t.mode, seccomp_filter: filters.length - 1 } });
  }
  const result = { filters, threads };
  cache.set(tree, result);
  return result;
}
