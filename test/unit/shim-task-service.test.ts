import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { StatusCode, TtrpcClient, TtrpcError, TtrpcServer } from '../../common/ttrpc/index.js';
import { TASK_SERVICE, decode, encode } from '../../shim/containerd/api.js';
import type { EventPublisher } from '../../shim/containerd/events.js';
import { ExitTracker } from '../../shim/containerd/exits.js';
import { Exit, TaskProcess } from '../../shim/containerd/process.js';
import { SHIM_VERSION, TaskService, taskError } from '../../shim/containerd/service.js';
import type { ProcessHelper } from '../../shim/subreaper/index.js';
import { quietLogs } from './helpers/quiet-logs.js';
import { rejectsWithStatus } from './helpers/ttrpc-assert.js';

/** A helper that reports the exits a test makes up, and does nothing else. */
function fakeHelper(): ProcessHelper & EventEmitter {
  return new EventEmitter() as unknown as ProcessHelper & EventEmitter;
}

const paths = { stdin: '', stdout: '', stderr: '', terminal: false };

describe('task service: error to status, in one place', () => {
  it('maps the errors of common/errors.ts, a signal to a process that is gone, and anything else', () => {
    assert.equal(taskError(new NotFoundError('x')).status, StatusCode.NOT_FOUND);
    assert.equal(taskError(new InvalidArgumentError('x')).status, StatusCode.INVALID_ARGUMENT);
    assert.equal(taskError(new FailedPreconditionError('x')).status, StatusCode.FAILED_PRECONDITION);
    assert.equal(taskError(Object.assign(new Error('kill ESRCH'), { code: 'ESRCH' })).status, StatusCode.NOT_FOUND);
    assert.equal(taskError(new Error('what')).status, StatusCode.UNKNOWN);
    const own = new TtrpcError(StatusCode.ABORTED, 'as is');
    assert.equal(taskError(own), own);
    const converted = taskError(new NotFoundError('container c1 not found'));
    assert.equal(converted.detail, 'container c1 not found', 'the message goes unchanged');
    assert.ok(converted.cause instanceof NotFoundError);
  });
});

describe('exit bookkeeping: exits the subreaper reports, matched to the processes runc started', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-exits-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function pidFile(pid: number | string): string {
    const file = path.join(dir, `${pid}.pid`);
    fs.writeFileSync(file, `${pid}\n`);
    return file;
  }

  it('delivers an exit to the process that claimed the pid, then wakes its waiters', async () => {
    const helper = fakeHelper();
    const seen: [string, Exit][] = [];
    const exits = new ExitTracker(helper, (proc, exit) => seen.push([proc.name, exit]));
    const proc = new TaskProcess('c1', '', paths);
    exits.claimPid(proc, pidFile(4242));
    assert.equal(proc.pid, 4242);
    helper.emit('exit', 4242, 137);
    const exit = await proc.exited;
    assert.equal(exit.status, 137);
    assert.deepEqual(seen.map(([name, e]) => [name, e.status]), [['c1', 137]]);
  });

  it('keeps an exit reported before runc returned the pid, and delivers it at the claim', async () => {
    const helper = fakeHelper();
    const seen: string[] = [];
    const exits = new ExitTracker(helper, (proc) => seen.push(proc.name));
    helper.emit('exit', 77, 0);
    const proc = new TaskProcess('c1', 'e1', paths);
    exits.claimPid(proc, pidFile(77));
    assert.equal((await proc.exited).status, 0);
    assert.deepEqual(seen, ['e1']);
  });

  it('gives the exit of a forgotten (deleted) process to nobody, and refuses a pid file with no pid', async () => {
    const helper = fakeHelper();
    const seen: string[] = [];
    const exits = new ExitTracker(helper, (proc) => seen.push(proc.name));
    const proc = new TaskProcess('c1', 'e1', paths);
    exits.claimPid(proc, pidFile(88));
    exits.forget(proc);
    helper.emit('exit', 88, 1);
    await sleep(10);
    assert.deepEqual(seen, []);
    assert.equal(proc.exit, undefined);
    assert.throws(() => exits.claimPid(new TaskProcess('c1', '', paths), pidFile('x')), /runc wrote no pid/);
  });
});

describe('task service over ttrpc, with no container yet', () => {
  quietLogs();
  let dir: string;
  let server: TtrpcServer;
  let client: TtrpcClient;
  let shutdowns: number;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-task-'));
    shutdowns = 0;
    const events = { publish: () => undefined } as unknown as EventPublisher;
    const service = new TaskService('default', fakeHelper(), events, () => shutdowns++);
    server = new TtrpcServer();
    server.register(TASK_SERVICE, service.handlers());
    await server.listen(path.join(dir, 'shim.sock'));
    client = await TtrpcClient.connect(path.join(dir, 'shim.sock'));
  });
  afterEach(async () => {
    client.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const call = async (method: string, request: string, fields: object, response: string): Promise<Record<string, unknown>> =>
    decode(response, await client.call(TASK_SERVICE, method, encode(`containerd.task.v2.${request}`, fields)));

  it('answers Connect with its own pid and version, and no task pid', async () => {
    const res = await call('Connect', 'ConnectRequest', { id: 'c1' }, 'containerd.task.v2.ConnectResponse');
    assert.deepEqual(res, { shim_pid: process.pid, task_pid: 0, version: SHIM_VERSION });
  });

  it('answers NOT_FOUND for a container it does not run, whichever the method', async () => {
    for (const [method, request] of [['State', 'StateRequest'], ['Start', 'StartRequest'], ['Kill', 'KillRequest'], ['Wait', 'WaitRequest'],
      ['Pids', 'PidsRequest'], ['Stats', 'StatsRequest'], ['Checkpoint', 'CheckpointTaskRequest'], ['Delete', 'DeleteRequest']]) {
      await rejectsWithStatus(call(method, request, { id: 'nope' }, 'google.protobuf.Empty'), StatusCode.NOT_FOUND, 'container nope not found in this shim');
    }
  });

  it('refuses Create with an id containerd would not give, or a bundle with no config.json', async () => {
    await rejectsWithStatus(call('Create', 'CreateTaskRequest', { id: '../x', bundle: dir }, 'google.protobuf.Empty'), StatusCode.INVALID_ARGUMENT, /container id/);
    await rejectsWithStatus(call('Create', 'CreateTaskRequest', { id: 'c1', bundle: dir }, 'google.protobuf.Empty'), StatusCode.NOT_FOUND, /has no config\.json/);
  });

  it('shuts down when asked with no container', async () => {
    await call('Shutdown', 'ShutdownRequest', { id: 'c1' }, 'google.protobuf.Empty');
    // The shutdown follows the answer; the test's timeout guards a hang, the count is what is asserted.
    while (shutdowns === 0) await sleep(1);
    await sleep(10);
    assert.equal(shutdowns, 1);
  });
});
