import { BadDataError } from '../../common/errors.js';
import { Program } from '../kernel/program.js';
import { DumpTree, frozenProblems } from './tree.js';

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

/** A frozen task can still be on a CPU for a moment after cgroup.events says frozen: wait that out. */
export async function settle(select: () => DumpTree, timeoutMs = 3000): Promise<DumpTree> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tree = select();
    const problems = frozenProblems(tree);
    if (!problems.length || Date.now() > deadline || !problems.every((p) => p.endsWith('still on a CPU'))) return tree;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
