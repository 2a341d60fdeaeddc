import assert from 'node:assert/strict';
import { BadDataError, FailedPreconditionError } from '../../common/errors.js';
import { DumpContext, TaskDump } from '../../introspect/dump/context.js';
import { settle } from '../../introspect/dump/select.js';
import { ZOMBIE_PARTS, zombieProblems } from '../../introspect/dump/task-parts/index.js';
import { zombieCore } from '../../introspect/dump/task-parts/zombie.js';
import { DumpTree, frozenProblems, requireFrozen, treeOfPid } from '../../introspect/dump/tree.js';
import { KObject } from '../../introspect/kernel/object.js';
import { taskExit } from '../../introspect/linux/task-exit.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, Values } from './helpers/fake-program.js';
import { KERNEL_STRUCTS } from './helpers/kernel-structs.js';
import { Fields } from './helpers/kernel-types.js';

/** include/linux/sched.h */
const PF_EXITING = 0x4;
const EXIT_DEAD = 0x10;
const EXIT_ZOMBIE = 0x20;
const ZOMBIE: Values = { flags: PF_EXITING, exit_state: EXIT_ZOMBIE, __state: 0x80 };

interface Member {
  /** Index of the parent process, -1 for the root. */
  parent: number;
  /** task_struct members of the leader. */
  values?: Values;
  /** Members of each further thread. */
  threads?: Values[];
  /** No session (signal->pids[PIDTYPE_SID] NULL, as when the leader is outside the pid namespace). */
  noSession?: boolean;
}

/**
 * A frozen process tree in a fake kernel: process i has pid 1000 + i (its
 * threads follow from 2000), its children on `children`, the root as its
 * process group and session leader. Tasks are frozen and off-CPU unless
 * `values` says otherwise.
 */
function family(members: Member[]) {
  const k = new FakeKernel({
    ramSize: 16 << 20,
    structs: {
      task_struct: [...KERNEL_STRUCTS.task_struct as Fields, ['children', 'list_head'], ['sibling', 'list_head'], ['ptrace', 'u32']],
      signal_struct: [...KERNEL_STRUCTS.signal_struct as Fields, ['pids', '*pid[4]']],
    },
  });
  const init = k.global('init_task', 'task_struct', { comm: 'swapper/0' });
  const pidOf = (nr: number) => k.new('pid', { level: 0, 'numbers[0].nr': nr });
  const rootPid = pidOf(1000);
  let nextTid = 2000;
  const leaders = members.map((m, i) => {
    const signal = k.new('signal_struct', { nr_threads: 1 + (m.threads?.length ?? 0), 'pids[2]': rootPid, ...(m.noSession ? {} : { 'pids[3]': rootPid }) });
    const task = (pid: number, tpid: bigint, values: Values = {}) =>
      k.new('task_struct', { pid, tgid: 1000 + i, comm: i === 0 ? 'init' : `p${i}`, signal, thread_pid: tpid, frozen: 1, ...values });
    const leader = task(1000 + i, i === 0 ? rootPid : pidOf(1000 + i), m.values);
    const threads = (m.threads ?? []).map((v) => {
      const tid = nextTid++;
      const t = task(tid, pidOf(tid), v);
      k.link(k.addr('task_struct', t, 'children'), []);
      return t;
    });
    k.link(k.addr('signal_struct', signal, 'thread_head'), [leader, ...threads].map((t) => k.addr('task_struct', t, 'thread_node')));
    return leader;
  });
  const children = members.map(() => [] as bigint[]);
  members.forEach((m, i) => {
    if (m.parent < 0) return;
    k.write(leaders[i], 'task_struct', { real_parent: leaders[m.parent] });
    children[m.parent].push(leaders[i]);
  });
  leaders.forEach((t, i) => k.link(k.addr('task_struct', t, 'children'), children[i].map((c) => k.addr('task_struct', c, 'sibling'))));
  k.link(k.addr('task_struct', init, 'tasks'), leaders.map((t) => k.addr('task_struct', t, 'tasks')));
  return { k, prog: k.program(), leaders };
}

function task(k: FakeKernel, values: Values): KObject {
  return KObject.struct(k.program(), 'task_struct', k.new('task_struct', values));
}

/** The zombie task part run alone, as dump.ts runs ZOMBIE_PARTS. */
function zombieImages(tree: DumpTree, pid: number) {
  const proc = tree.processes.find((p) => p.pid === pid)!;
  const t: TaskDump = { proc, who: `pid ${pid}`, ids: {}, newFilesTable: false, cgSet: 0, pagesId: 0 };
  return zombieCore.dump({ tree } as DumpContext, t);
}

describe('zombies in a dump', () => {
  describe('linux/task-exit: how far a task is in exiting', () => {
    it('tells alive, in do_exit, zombie and being released apart, and gives a zombie\'s exit code', () => {
      const k = new FakeKernel();
      assert.deepEqual(taskExit(task(k, {})), { phase: 'alive', exitCode: 0 });
      assert.deepEqual(taskExit(task(k, { flags: PF_EXITING })), { phase: 'exiting', exitCode: 0 });
      assert.deepEqual(taskExit(task(k, { flags: PF_EXITING, exit_state: EXIT_DEAD })), { phase: 'released', exitCode: 0 });
      assert.deepEqual(taskExit(task(k, { flags: PF_EXITING, exit_state: EXIT_ZOMBIE | EXIT_DEAD })), { phase: 'released', exitCode: 0 });
      // exit(3); killed by SIGKILL; SIGSEGV with a core dump; SIGRTMAX.
      for (const code of [0, 3 << 8, 255 << 8, 9, 11 | 0x80, 64]) {
        assert.deepEqual(taskExit(task(k, { ...ZOMBIE, exit_code: code })), { phase: 'zombie', exitCode: code });
      }
    });

    it('refuses hostile exit states and exit codes with BadDataError', () => {
      const k = new FakeKernel();
      for (const exit_state of [1, 0x40, 0x30 | 1, -1, 0x7fffffff]) assertOvmError(() => taskExit(task(k, { flags: PF_EXITING, exit_state })), BadDataError);
      // A zombie that never set PF_EXITING: exit_notify runs after exit_signals.
      assertOvmError(() => taskExit(task(k, { exit_state: EXIT_ZOMBIE })), BadDataError);
      assertOvmError(() => taskExit(task(k, { exit_state: EXIT_DEAD })), BadDataError);
      // Negative, past 16 bits, a stop (0x7f), a signal past _NSIG, a signal with an exit status, a core flag without a signal.
      for (const exit_code of [-1, 0x10000, 0x7f, 0x17f, 65, 0x109, 0x380, 0x80]) {
        assertOvmError(() => taskExit(task(k, { ...ZOMBIE, exit_code })), BadDataError);
      }
    });
  });

  describe('the tree', () => {
    it('marks a zombie with its exit code, lists it in preorder, and does not ask it to be frozen', () => {
      const { prog } = family([{ parent: -1 }, { parent: 0 }, { parent: 1, values: { ...ZOMBIE, frozen: 0, on_cpu: 1, exit_code: 3 << 8 } }, { parent: 0 }]);
      const tree = treeOfPid(prog, 1000);
      assert.deepEqual(tree.processes.map((p) => [p.pid, p.vppid, p.vsid, p.vtids, p.zombie]), [
        [1000, 0, 1000, [1000], undefined], [1001, 1000, 1000, [1001], undefined], [1002, 1001, 1000, [1002], { exitCode: 0x300 }], [1003, 1000, 1000, [1003], undefined],
      ]);
      assert.deepEqual(frozenProblems(tree), []);
      requireFrozen(tree);
      assert.deepEqual(zombieProblems(tree), []);
    });

    it('finds a task still in do_exit a passing problem, and refuses it with "try again", not with the freeze hint', () => {
      const { prog } = family([{ parent: -1 }, { parent: 0, values: { flags: PF_EXITING, frozen: 0 } }]);
      const tree = treeOfPid(prog, 1000);
      assert.deepEqual(frozenProblems(tree), [{ kind: 'exit', text: 'pid 1001 (p1) is exiting (in do_exit): try again' }]);
      assert.throws(() => requireFrozen(tree, ': freeze its cgroup first'), (err: unknown) =>
        err instanceof FailedPreconditionError && err.message === 'cannot dump: pid 1001 (p1) is exiting (in do_exit): try again');
    });

    it('keeps the freeze hint when a task is not frozen besides', () => {
      const { prog } = family([{ parent: -1, values: { frozen: 0 } }, { parent: 0, values: { flags: PF_EXITING } }]);
      assert.throws(() => requireFrozen(treeOfPid(prog, 1000), ': freeze its cgroup first'), /^FailedPreconditionError: cannot dump: pid 1000 \(init\) is not frozen; pid 1001 \(p1\) is exiting \(in do_exit\): try again: freeze its cgroup first$/);
    });

    it('sees a task that became a zombie after the tree was built, and threads caught exiting', () => {
      const { k, prog, leaders } = family([{ parent: -1 }, { parent: 0 }, { parent: 0, threads: [{ ...ZOMBIE }, { flags: PF_EXITING, exit_state: EXIT_DEAD }] }]);
      const tree = treeOfPid(prog, 1000);
      k.write(leaders[1], 'task_struct', ZOMBIE);
      assert.deepEqual(frozenProblems(tree), [
        { kind: 'exit', text: 'pid 1001 (p1) exited while the tree was read: try again' },
        { kind: 'exit', text: 'thread 2000 of pid 1002 (p2) is exiting (in do_exit): try again' },
        { kind: 'exit', text: 'thread 2001 of pid 1002 (p2) is exiting (in do_exit): try again' },
      ]);
    });

    it('still refuses a traced zombie', () => {
      const { prog } = family([{ parent: -1 }, { parent: 0, values: { ...ZOMBIE, ptrace: 1 } }]);
      assert.deepEqual(frozenProblems(treeOfPid(prog, 1000)), [{ kind: 'traced', text: 'pid 1001 (p1) is traced (ptrace)' }]);
    });

    it('waits (settle) for a task in do_exit to become a zombie, and reads it as one', async () => {
      const { k, prog, leaders } = family([{ parent: -1 }, { parent: 0, values: { flags: PF_EXITING, frozen: 0 } }]);
      setTimeout(() => k.write(leaders[1], 'task_struct', { ...ZOMBIE, exit_code: 9 }), 120);
      const tree = await settle(() => treeOfPid(prog, 1000), 5000);
      assert.deepEqual(tree.processes[1].zombie, { exitCode: 9 });
      assert.deepEqual(frozenProblems(tree), []);
    });

    it('gives up waiting at the timeout or when the request is aborted', async () => {
      const { prog } = family([{ parent: -1 }, { parent: 0, values: { flags: PF_EXITING } }]);
      const t0 = Date.now();
      assert.equal(frozenProblems(await settle(() => treeOfPid(prog, 1000), 100)).length, 1);
      const aborted = AbortSignal.abort();
      assert.equal(frozenProblems(await settle(() => treeOfPid(prog, 1000), 60_000, aborted)).length, 1);
      assert.ok(Date.now() - t0 < 2000);
    });
  });

  describe('what CRIU refuses of zombies', () => {
    it('a zombie root, a zombie with live threads, one with children, one whose session is outside the pid namespace', () => {
      const { prog } = family([
        { parent: -1, values: ZOMBIE },
        { parent: 0, values: ZOMBIE, threads: [{}] },
        { parent: 0, values: ZOMBIE },
        { parent: 2 },
        { parent: 0, values: ZOMBIE, noSession: true },
      ]);
      assert.deepEqual(zombieProblems(treeOfPid(prog, 1000)).map((p) => [p.kind, p.text]), [
        ['zombie', 'pid 1000 (init) is a zombie: the root of the tree has exited (criu refuses a dead root too)'],
        ['zombie', 'pid 1001 (p1) is a zombie whose other threads (2000) still run: not supported, as by criu'],
        ['zombie', 'pid 1002 (p2) is a zombie with children (1003)'],
        ['zombie', "pid 1004 (p4) is a zombie whose session leader is outside the tree's pid namespace: restore could not make its session"],
      ]);
    });
  });

  describe('its images', () => {
    it('a core image as core_entry_alloc(0, 1) makes it: TASK_DEAD, the exit code, the name, no thread parts', () => {
      const { prog } = family([{ parent: -1 }, { parent: 0, values: { ...ZOMBIE, exit_code: 11 | 0x80, comm: 'crashed' } }]);
      const tree = treeOfPid(prog, 1000);
      assert.deepEqual(ZOMBIE_PARTS, [zombieCore]);
      assert.deepEqual(zombieImages(tree, 1001), {
        images: [{
          kind: 'CORE', id: 1001,
          entries: [{ mtype: 'X86_64', tc: { task_state: 2, exit_code: 0x8b, personality: 0, flags: 0, blk_sigset: 0, comm: 'crashed' } }],
        }],
      });
    });
  });
});
