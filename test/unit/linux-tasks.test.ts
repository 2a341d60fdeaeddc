import assert from 'node:assert/strict';
import { BadDataError, NotFoundError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { cgroupPath, findTask, forEachProcess, forEachThread, pidNumbers, procComm, processInfo, stateLetter } from '../../introspect/linux/tasks.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, OUTSIDE_RAM } from './helpers/fake-program.js';

/** init_task and its task list; processes are added with their threads. */
function world() {
  const k = new FakeKernel();
  const init = k.global('init_task', 'task_struct', { comm: 'swapper/0' });
  const head = k.addr('task_struct', init, 'tasks');
  const root = k.new('kernfs_node', { name: k.cstr('') });
  const rootCset = k.new('css_set', { dfl_cgrp: k.new('cgroup', { kn: root }) });
  const cred = k.new('cred', { 'uid.val': 1000, 'gid.val': 100 });
  const process = (pid: number, threads: number[] = [], values: Record<string, bigint | number | string> = {}) => {
    const signal = k.new('signal_struct', { nr_threads: 1 + threads.length });
    const thread = (tid: number) => k.new('task_struct', {
      pid: tid, tgid: pid, comm: `p${pid}`, signal, cred, real_parent: init, cgroups: rootCset, ...values,
      thread_pid: k.new('pid', { level: 0, 'numbers[0].nr': tid }),
    });
    const tasks = [pid, ...threads].map(thread);
    k.link(k.addr('signal_struct', signal, 'thread_head'), tasks.map((t) => k.addr('task_struct', t, 'thread_node')));
    return tasks[0];
  };
  const linkProcesses = (tasks: bigint[]) => k.link(head, tasks.map((t) => k.addr('task_struct', t, 'tasks')));
  return { k, init, head, root, process, linkProcesses };
}

const pids = (tasks: Iterable<KObject>) => [...tasks].map((t) => t.member('pid').num());

describe('linux tasks on a fake kernel', () => {
  it('walks processes from init_task and threads from signal->thread_head', () => {
    const w = world();
    const p1 = w.process(1);
    const p42 = w.process(42, [43, 44]);
    w.linkProcesses([p1, p42]);
    const prog = w.k.program();
    assert.deepEqual(pids(forEachProcess(prog)), [1, 42]);
    assert.deepEqual(pids(forEachThread(KObject.struct(prog, 'task_struct', p42))), [42, 43, 44]);
    assert.equal(findTask(prog, 44).member('tgid').num(), 42);
    assert.equal(findTask(prog, 42).address, p42);
    assert.throws(() => findTask(prog, 7), NotFoundError);
  });

  it('reads what ps shows of a process', () => {
    const w = world();
    const child = w.k.new('kernfs_node', { parent: w.root, name: w.k.cstr('app') });
    const leaf = w.k.new('kernfs_node', { parent: child, name: w.k.cstr('web') });
    const cgroups = w.k.new('css_set', { dfl_cgrp: w.k.new('cgroup', { kn: leaf }) });
    const p = w.process(42, [43], { cgroups, frozen: 1, __state: 1 });
    w.linkProcesses([p]);
    const info = processInfo(KObject.struct(w.k.program(), 'task_struct', p));
    assert.deepEqual(
      { ...info },
      { pid: 42, tgid: 42, ppid: 0, comm: 'p42', state: 'S', nspid: [42], uid: 1000, gid: 100, cgroup: '/app/web', threads: [42, 43], frozen: true, onCpu: false },
    );
  });

  it('reads nested pid namespaces innermost last', () => {
    const w = world();
    const pid = w.k.new('pid', { level: 2, 'numbers[0].nr': 900 });
    // numbers[] is a flexible array: levels past the first follow in memory.
    const upid = w.k.types.sizeof('upid');
    w.k.write(w.k.addr('pid', pid, 'numbers') + BigInt(upid), 'upid', { nr: 12 });
    w.k.write(w.k.addr('pid', pid, 'numbers') + BigInt(2 * upid), 'upid', { nr: 1 });
    assert.deepEqual(pidNumbers(KObject.struct(w.k.program(), 'pid', pid)), [900, 12, 1]);
  });

  it('gives /proc state letters', () => {
    const w = world();
    const prog = w.k.program();
    const cases: [Record<string, number>, string][] = [
      [{ __state: 0 }, 'R'], [{ __state: 2 }, 'D'], [{ __state: 0x402 }, 'I'], [{ __state: 0, exit_state: 0x20 }, 'Z'], [{ __state: 0x1000 }, 'D'],
    ];
    for (const [values, letter] of cases) {
      assert.equal(stateLetter(KObject.struct(prog, 'task_struct', w.k.new('task_struct', values))), letter);
    }
  });

  it('names kernel threads and workqueue workers as /proc/PID/comm does', () => {
    const w = world();
    const PF_WQ_WORKER = 0x20, PF_KTHREAD = 0x200000;
    const kthread = w.k.new('kthread', { full_name: w.k.cstr('nvme-reset-wq-long-name') });
    const kt = w.k.new('task_struct', { comm: 'nvme-reset-wq-l', flags: PF_KTHREAD, worker_private: kthread });
    const worker = w.k.new('worker', { pool: 0x1000n, current_work: 0x2000n, desc: 'events_unbound' });
    const wq = w.k.new('task_struct', { comm: 'kworker/0:1', flags: PF_KTHREAD | PF_WQ_WORKER, worker_private: w.k.new('kthread', { data: worker }) });
    const user = w.k.new('task_struct', { comm: 'sh', worker_private: kthread });
    const prog = w.k.program();
    assert.deepEqual([kt, wq, user].map((t) => procComm(KObject.struct(prog, 'task_struct', t))), ['nvme-reset-wq-long-name', 'kworker/0:1+events_unbound', 'sh']);
  });

  describe('hostile values end in typed errors', () => {
    it('a task list that loops back to a task, not the head', () => {
      const w = world();
      const [a, b] = [w.process(1), w.process(2)];
      w.linkProcesses([a, b]);
      w.k.write(w.k.addr('task_struct', b, 'tasks'), 'list_head', { next: w.k.addr('task_struct', a, 'tasks') });
      assertOvmError(() => forEachProcess(w.k.program()), BadDataError);
      assertOvmError(() => findTask(w.k.program(), 99), BadDataError);
    });

    it('a task list with a NULL, an outside-RAM, a user-space or a misaligned next', () => {
      for (const next of [0n, OUTSIDE_RAM, 0x7fff_0000_1000n, 0xdead_beefn]) {
        const w = world();
        const a = w.process(1);
        w.linkProcesses([a]);
        w.k.write(w.k.addr('task_struct', a, 'tasks'), 'list_head', { next });
        assertOvmError(() => forEachProcess(w.k.program()));
      }
      const w = world();
      w.k.write(w.head, 'list_head', { next: OUTSIDE_RAM });
      assertOvmError(() => forEachProcess(w.k.program()), PageFaultError);
    });

    it('a next pointer into the middle of another task', () => {
      const w = world();
      const a = w.process(1);
      w.linkProcesses([a]);
      w.k.write(w.k.addr('task_struct', a, 'tasks'), 'list_head', { next: a + 3n });
      assertOvmError(() => forEachProcess(w.k.program()));
    });

    it('a thread list that loops, and a NULL signal', () => {
      const w = world();
      const p = w.process(5, [6, 7]);
      w.linkProcesses([p]);
      const t7 = findTask(w.k.program(), 7);
      w.k.write(t7.member('thread_node').address, 'list_head', { next: t7.member('thread_node').address });
      assertOvmError(() => forEachThread(KObject.struct(w.k.program(), 'task_struct', p)), BadDataError);
      w.k.write(p, 'task_struct', { signal: 0 });
      assertOvmError(() => forEachThread(KObject.struct(w.k.program(), 'task_struct', p)), BadDataError);
    });

    it('a pid level beyond any namespace depth', () => {
      for (const level of [33, 0xffff_ffff]) {
        const w = world();
        const pid = w.k.new('pid', { level });
        assertOvmError(() => pidNumbers(KObject.struct(w.k.program(), 'pid', pid)), BadDataError);
      }
    });

    it('a kernel thread whose kthread or full name is outside RAM', () => {
      const w = world();
      const kthread = w.k.new('kthread', { full_name: OUTSIDE_RAM });
      const kt = w.k.new('task_struct', { comm: 'x', flags: 0x200000, worker_private: kthread });
      assertOvmError(() => procComm(KObject.struct(w.k.program(), 'task_struct', kt)), PageFaultError);
      w.k.write(kt, 'task_struct', { worker_private: OUTSIDE_RAM });
      assertOvmError(() => procComm(KObject.struct(w.k.program(), 'task_struct', kt)), PageFaultError);
    });

    it('a cgroup whose kernfs parents loop, or whose name is NULL', () => {
      const w = world();
      const a = w.k.new('kernfs_node', { name: w.k.cstr('a') });
      const b = w.k.new('kernfs_node', { parent: a, name: w.k.cstr('b') });
      w.k.write(a, 'kernfs_node', { parent: b });
      const cgroups = w.k.new('css_set', { dfl_cgrp: w.k.new('cgroup', { kn: b }) });
      const p = w.process(3, [], { cgroups });
      assertOvmError(() => cgroupPath(KObject.struct(w.k.program(), 'task_struct', p)), BadDataError);
      w.k.write(a, 'kernfs_node', { parent: w.root, name: 0 });
      assertOvmError(() => cgroupPath(KObject.struct(w.k.program(), 'task_struct', p)), PageFaultError);
    });
  });
});
