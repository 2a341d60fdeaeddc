import { BadDataError } from '../../common/errors.js';
import { Program } from '../kernel/program.js';
import { DumpTree, frozenProblems, isTransient } from './tree.js';

/**
 * Reads of a guest that still runs (before the tree is frozen) may meet a
 * list in the middle of a change and see a loop or a dangling pointer: such
 * reads are made again, from fresh RAM, a few times.
 */
export function live<T>(prog: Program, read: () => T, attempts = 5): T {
  for (let i = 1; ; i++) {
    prog.refresh();
    try {
      return read();
    } catch (err) {
      if (!(err instanceof BadDataError) || i >= attempts) throw err;
    }
  }
}

/**
 * A frozen task can still be on a CPU for a moment after cgroup.events says
 * frozen, and a task that left the cgroup's count in cgroup_exit can still
 * be finishing do_exit on its way to being a zombie: wait those out, as
 * CRIU waits for its tasks (compel_wait_task), within the timeout and the
 * request's deadline. The tree is selected again each time, so that a task
 * that became a zombie is read as one.
 */
export async function settle(select: () => DumpTree, timeoutMs = 3000, signal?: AbortSignal): Promise<DumpTree> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tree = select();
    const problems = frozenProblems(tree);
    if (!problems.length || Date.now() > deadline || signal?.aborted || !problems.every(isTransient)) return tree;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
