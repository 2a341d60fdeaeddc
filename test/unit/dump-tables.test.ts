import assert from 'node:assert/strict';
import { UnsupportedError } from '../../common/errors.js';
import { loadProtos } from '../../common/proto.js';
import { IMAGE_KINDS } from '../../introspect/criu/index.js';
import { FD_DUMPERS, fdDumper } from '../../introspect/dump/fds/index.js';
import { NS_KINDS } from '../../introspect/dump/ids.js';
import { NS_DUMPERS, nsDumper } from '../../introspect/dump/namespaces/index.js';
import { DumpProblem, DumpRefusedError } from '../../introspect/dump/problem.js';
import { TASK_PARTS } from '../../introspect/dump/task-parts/index.js';
import { TREE_PARTS } from '../../introspect/dump/tree-parts/index.js';

describe('the dump tables', () => {
  it('has one image kind per name and per magic, each with message types proto/criu defines', () => {
    assert.equal(new Set(IMAGE_KINDS.map((k) => k.name)).size, IMAGE_KINDS.length);
    assert.equal(new Set(IMAGE_KINDS.map((k) => k.magic)).size, IMAGE_KINDS.length);
    const root = loadProtos('criu');
    for (const k of IMAGE_KINDS) {
      for (const type of [k.entry, k.head].filter((t): t is string => t !== undefined)) assert.ok(root.lookupType(type), `${k.name}: ${type}`);
    }
  });

  it('gives each kind of open file at most one dumper', () => {
    const kinds = FD_DUMPERS.flatMap((d) => d.kinds);
    assert.equal(new Set(kinds).size, kinds.length);
    assert.equal(fdDumper('pipe')?.kinds.includes('pipe'), true);
    assert.equal(fdDumper('anon-inode'), undefined, 'a kind with no row is refused');
    for (const kind of ['eventfd', 'epoll', 'signalfd', 'timerfd', 'memfd'] as const) assert.ok(fdDumper(kind)?.kinds.includes(kind), kind);
  });

  it('gives each kind of namespace at most one dumper, of a kind ids.ts numbers', () => {
    const kinds = NS_DUMPERS.map((d) => d.kind);
    assert.equal(new Set(kinds).size, kinds.length);
    for (const k of kinds) assert.ok((NS_KINDS as readonly string[]).includes(k), k);
    assert.equal(nsDumper('time'), undefined, 'a kind with no row is refused');
  });

  it('runs the parts of a process in the order CRIU hands out ids', () => {
    assert.deepEqual(TASK_PARTS.map((p) => p.name), ['ids', 'cgroup', 'core', 'mm', 'fdinfo', 'fs']);
    assert.equal(new Set(TREE_PARTS.map((p) => p.name)).size, TREE_PARTS.length);
  });
});

describe('dump problems', () => {
  it('render as the refusal text: task, object, detail', () => {
    const tcp = new DumpProblem('pid 5 (python3)', 'inet-socket', 'TCP socket in state ESTABLISHED (TCP/UDP sockets are not supported yet)', { object: 'fd 3' });
    assert.equal(tcp.text, 'pid 5 (python3) fd 3: TCP socket in state ESTABLISHED (TCP/UDP sockets are not supported yet)');
    assert.equal(String(tcp), tcp.text);
    const swap = new DumpProblem('pid 5 (counter)', 'swap', 'memory at 0x1000 is swapped out');
    assert.equal(swap.text, 'pid 5 (counter): memory at 0x1000 is swapped out');
    const seccomp = new DumpProblem('thread 6 of pid 5 (sh)', 'seccomp', 'runs under seccomp (not supported yet)', { sentence: true });
    assert.equal(seccomp.text, 'thread 6 of pid 5 (sh) runs under seccomp (not supported yet)');
    assert.equal(seccomp.kind, 'seccomp');
  });

  it('refuse the whole dump as one UnsupportedError that lists every problem', () => {
    const problems = [new DumpProblem('pid 5 (a)', 'timer', 'has POSIX timers (timer_create): not supported yet', { sentence: true }),
      new DumpProblem('pid 6 (b)', 'pipe', 'x', { object: 'fd 1' })];
    const err = new DumpRefusedError(5, problems);
    assert.ok(err instanceof UnsupportedError);
    assert.equal(err.code, 'UNSUPPORTED');
    assert.equal(err.message, 'cannot dump pid 5: pid 5 (a) has POSIX timers (timer_create): not supported yet; pid 6 (b) fd 1: x');
    assert.deepEqual(err.problems.map((p) => p.task), ['pid 5 (a)', 'pid 6 (b)']);
  });
});
