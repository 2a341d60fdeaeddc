import assert from 'node:assert/strict';
import { treeOfPid } from '../../introspect/dump/tree.js';
import { FakeKernel } from './helpers/fake-program.js';
import { KERNEL_STRUCTS } from './helpers/kernel-structs.js';
import { Fields } from './helpers/kernel-types.js';

/**
 * Processes that form a tree: each has its children (linked through
 * `sibling` on its `children`), one thread, a struct pid at level 0, and no
 * process group (signal->pids all NULL).
 */
function forest(parents: number[]) {
  const k = new FakeKernel({
    ramSize: 64 << 20,
    structs: {
      task_struct: [...KERNEL_STRUCTS.task_struct as Fields, ['children', 'list_head'], ['sibling', 'list_head']],
      signal_struct: [...KERNEL_STRUCTS.signal_struct as Fields, ['pids', 'ptr[4]']],
    },
  });
  const init = k.global('init_task', 'task_struct', { comm: 'swapper/0' });
  // parents[i] is the index of process i's parent, -1 for the root; pids are 1000 + i.
  const tasks = parents.map((_, i) => {
    const signal = k.new('signal_struct', { nr_threads: 1 });
    const task = k.new('task_struct', { pid: 1000 + i, tgid: 1000 + i, comm: `p${i}`, signal, thread_pid: k.new('pid', { level: 0, 'numbers[0].nr': 1000 + i }) });
    k.link(k.addr('signal_struct', signal, 'thread_head'), [k.addr('task_struct', task, 'thread_node')]);
    return task;
  });
  const children = parents.map(() => [] as bigint[]);
  parents.forEach((p, i) => {
    if (p >= 0) {
      k.write(tasks[i], 'task_struct', { real_parent: tasks[p] });
      children[p].push(tasks[i]);
    }
  });
  tasks.forEach((t, i) => k.link(k.addr('task_struct', t, 'children'), children[i].map((c) => k.addr('task_struct', c, 'sibling'))));
  k.link(k.addr('task_struct', init, 'tasks'), tasks.map((t) => k.addr('task_struct', t, 'tasks')));
  return k.program();
}

describe('the process tree of a dump', () => {
  it('walks a chain of 10,000 processes, each the child of the one before, without recursion', function () {
    this.timeout(60_000);
    const n = 10_000;
    const prog = forest(Array.from({ length: n }, (_, i) => i - 1));
    const tree = treeOfPid(prog, 1000);
    assert.equal(tree.processes.length, n);
    assert.deepEqual(tree.processes.slice(0, 3).map((p) => p.pid), [1000, 1001, 1002]);
    const last = tree.processes[n - 1];
    assert.equal(last.pid, 1000 + n - 1);
    assert.equal(last.vppid, 1000 + n - 2);
    assert.equal(last.parent?.pid, 1000 + n - 2);
    assert.equal(tree.processes[n - 2].children[0], last);
  });

  it('lists a branching tree in preorder, children in the kernel\'s order', () => {
    //        0
    //      / | \
    //     1  4  5
    //    / \     \
    //   2   3     6
    const prog = forest([-1, 0, 1, 1, 0, 0, 5]);
    const tree = treeOfPid(prog, 1000);
    assert.deepEqual(tree.processes.map((p) => p.pid - 1000), [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(tree.root.children.map((p) => p.pid - 1000), [1, 4, 5]);
    assert.deepEqual(tree.processes.map((p) => p.vppid && p.vppid - 1000), [0, 0, 1, 1, 0, 0, 5]);
  });
});
