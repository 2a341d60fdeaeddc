import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import protobuf from 'protobufjs';
import { BadDataError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import {
  EVENTS_SERVICE,
  SPEC_TYPE_URLS,
  TASK_EVENT_TYPE_URLS,
  TASK_SERVICE,
  TASK_TOPICS,
  containerdApi,
  decode,
  encode,
  fromTimestamp,
  packAny,
  packMessage,
  toTimestamp,
  type,
  unpackAny,
} from '../../shim/containerd/api.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('containerd shim API protos', () => {
  it('loads once and caches the Root', () => {
    assert.equal(containerdApi(), containerdApi());
  });

  it('has every method of containerd.task.v2.Task with its request and response types', () => {
    const empty = 'google.protobuf.Empty';
    const expected: Record<string, [string, string]> = {
      State: ['StateRequest', 'StateResponse'],
      Create: ['CreateTaskRequest', 'CreateTaskResponse'],
      Start: ['StartRequest', 'StartResponse'],
      Delete: ['DeleteRequest', 'DeleteResponse'],
      Pids: ['PidsRequest', 'PidsResponse'],
      Pause: ['PauseRequest', empty],
      Resume: ['ResumeRequest', empty],
      Checkpoint: ['CheckpointTaskRequest', empty],
      Kill: ['KillRequest', empty],
      Exec: ['ExecProcessRequest', empty],
      ResizePty: ['ResizePtyRequest', empty],
      CloseIO: ['CloseIORequest', empty],
      Update: ['UpdateTaskRequest', empty],
      Wait: ['WaitRequest', 'WaitResponse'],
      Stats: ['StatsRequest', 'StatsResponse'],
      Connect: ['ConnectRequest', 'ConnectResponse'],
      Shutdown: ['ShutdownRequest', empty],
    };
    const full = (n: string): string => (n.includes('.') ? `.${n}` : `.containerd.task.v2.${n}`);
    const service = containerdApi().lookupService(TASK_SERVICE);
    assert.deepEqual(Object.keys(service.methods).sort(), Object.keys(expected).sort());
    for (const [name, [req, res]] of Object.entries(expected)) {
      const m = service.methods[name]!;
      m.resolve();
      assert.equal(m.resolvedRequestType?.fullName, full(req), `${name} request`);
      assert.equal(m.resolvedResponseType?.fullName, full(res), `${name} response`);
      assert.ok(!m.requestStream && !m.responseStream, `${name} is unary`);
    }
  });

  it('has the events service with Forward(ForwardRequest) returns (Empty)', () => {
    const forward = containerdApi().lookupService(EVENTS_SERVICE).methods['Forward']!;
    forward.resolve();
    assert.equal(forward.resolvedRequestType?.fullName, '.containerd.services.events.ttrpc.v1.ForwardRequest');
    assert.equal(forward.resolvedResponseType?.fullName, '.google.protobuf.Empty');
  });

  it('type() wants a full message name', () => {
    assert.ok(type('containerd.types.Mount') instanceof protobuf.Type);
    assert.throws(() => type('Mount'), NotFoundError);
    assert.throws(() => type('containerd.v1.types.Status'), NotFoundError); // an enum
    assert.throws(() => type('containerd.task.v2.Task'), NotFoundError); // a service
    assert.throws(() => type('containerd.task.v2.Nope'), /not the full name of a message type/);
  });

  it('round-trips a CreateTaskRequest with rootfs mounts and runc Options', () => {
    const options = packMessage('containerd.runc.v1.Options', { binary_name: 'runc', systemd_cgroup: true, criu_work_path: '/w' });
    assert.equal(options.type_url, 'containerd.runc.v1.Options');
    const req = {
      id: 'c1',
      bundle: '/run/containerd/io.containerd.runtime.v2.task/default/c1',
      rootfs: [
        { type: 'overlay', source: 'overlay', target: '', options: ['index=off', 'lowerdir=/l1:/l2', 'upperdir=/u', 'workdir=/w'] },
        { type: 'bind', source: '/data', target: '/mnt', options: ['rbind', 'ro'] },
      ],
      terminal: false,
      stdin: '',
      stdout: '/run/fifo/c1-stdout',
      stderr: '/run/fifo/c1-stderr',
      checkpoint: '/var/lib/ck/c1',
      parent_checkpoint: '',
      options,
    };
    const back = decode('containerd.task.v2.CreateTaskRequest', encode('containerd.task.v2.CreateTaskRequest', req));
    assert.deepEqual(back, req);
    const unpacked = unpackAny(back['options']);
    assert.equal(unpacked.typeUrl, 'containerd.runc.v1.Options');
    assert.equal(unpacked.message['binary_name'], 'runc');
    assert.equal(unpacked.message['systemd_cgroup'], true);
    assert.equal(unpacked.message['criu_work_path'], '/w');
    assert.equal(unpacked.message['no_pivot_root'], false);
  });

  it('round-trips a StateResponse with status and exited_at', () => {
    const status = containerdApi().lookupEnum('containerd.v1.types.Status').values;
    assert.deepEqual({ ...status }, { UNKNOWN: 0, CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4, PAUSING: 5 });
    const exitedAt = new Date('2024-03-01T12:34:56.789Z');
    const bytes = encode('containerd.task.v2.StateResponse', {
      id: 'c1',
      pid: 4242,
      status: status['STOPPED'],
      exit_status: 137,
      exited_at: toTimestamp(exitedAt),
      exec_id: 'e1',
    });
    const back = decode('containerd.task.v2.StateResponse', bytes);
    assert.equal(back['status'], 3);
    assert.equal(back['pid'], 4242);
    assert.equal(back['exit_status'], 137);
    assert.equal(back['exec_id'], 'e1');
    assert.equal(back['bundle'], '');
    assert.equal(back['terminal'], false);
    assert.deepEqual(back['exited_at'], { seconds: BigInt(Math.floor(exitedAt.getTime() / 1000)), nanos: 789_000_000 });
    assert.equal(fromTimestamp(back['exited_at'] as { seconds: bigint; nanos: number }).getTime(), exitedAt.getTime());
    // Enum names are taken on encode too.
    assert.equal(decode('containerd.task.v2.StateResponse', encode('containerd.task.v2.StateResponse', { status: 'RUNNING' }))['status'], 2);
  });

  it('round-trips a ForwardRequest whose Envelope holds a packed TaskExit', () => {
    const exit = { container_id: 'c1', id: 'c1', pid: 4242, exit_status: 9, exited_at: { seconds: 1_700_000_000, nanos: 5 } };
    const event = packMessage(TASK_EVENT_TYPE_URLS.exit, exit);
    const req = {
      envelope: { timestamp: toTimestamp(new Date(1_700_000_001_000)), namespace: 'default', topic: TASK_TOPICS.exit, event },
    };
    const back = decode('containerd.services.events.ttrpc.v1.ForwardRequest', encode('containerd.services.events.ttrpc.v1.ForwardRequest', req));
    const env = back['envelope'] as Record<string, unknown>;
    assert.deepEqual(env['timestamp'], { seconds: 1_700_000_001n, nanos: 0 });
    assert.equal(env['namespace'], 'default');
    assert.equal(env['topic'], '/tasks/exit');
    assert.deepEqual(env['event'], { type_url: 'containerd.events.TaskExit', value: event.value });
    const unpacked = unpackAny(env['event']);
    assert.equal(unpacked.typeUrl, 'containerd.events.TaskExit');
    assert.deepEqual(unpacked.message, { ...exit, exited_at: { seconds: 1_700_000_000n, nanos: 5 } });
  });

  describe('bytes worked out by hand from the wire rules', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      // field 8, LEN: tag 8<<3|2 = 0x42; length 1; 'x'
      ['containerd.task.v2.CreateTaskRequest', { checkpoint: 'x' }, '420178'],
      // status field 4 varint: 0x20 03; exit_status field 9 varint: 0x48, 137 = 0x89 0x01; exec_id field 11 LEN: 0x5a 01 'e'
      ['containerd.task.v2.StateResponse', { status: 3, exit_status: 137, exec_id: 'e' }, '20034889015a0165'],
      // namespace field 2: 12 01 'n'; topic field 3: 1a 02 '/t'; event field 4: 22 07 { type_url 0a 01 'a', value 12 02 08 01 }
      [
        'containerd.services.events.ttrpc.v1.Envelope',
        { namespace: 'n', topic: '/t', event: packAny('a', Buffer.from([0x08, 0x01])) },
        '12016e1a022f7422070a016112020801',
      ],
      // shim_pid 1: 08 01; task_pid 300 = 0xac 0x02 under tag 0x10; version field 3: 1a 01 'v'
      ['containerd.task.v2.ConnectResponse', { shim_pid: 1, task_pid: 300, version: 'v' }, '0801' + '10ac02' + '1a0176'],
      // map field 3 -> entry 1a 06 { key 0a 01 'k', value 12 01 'v' }
      ['containerd.task.v2.UpdateTaskRequest', { annotations: { k: 'v' } }, '1a060a016b120176'],
      // memory field 4: 22 03 { swap_limit field 35 varint: tag 280 = 0x98 0x02, value 05 }
      ['io.containerd.cgroups.v2.Metrics', { memory: { swap_limit: 5 } }, '2203980205'],
      // memory_events field 8: 42 02 { oom_kill field 5: 28 01 }
      ['io.containerd.cgroups.v2.Metrics', { memory_events: { oom_kill: 1 } }, '42022801'],
      // work_path field 9 LEN: 4a 01 'w'
      ['containerd.runc.v1.CheckpointOptions', { work_path: 'w' }, '4a0177'],
      // criu_work_path field 11 LEN: 5a 01 'c'
      ['containerd.runc.v1.Options', { criu_work_path: 'c' }, '5a0163'],
      // id field 5 LEN: 2a 01 'i'
      ['containerd.events.TaskDelete', { id: 'i' }, '2a0169'],
      // pid field 6 varint: 30 07
      ['containerd.events.TaskCreate', { pid: 7 }, '3007'],
      // Mount options field 4: 22 02 'ro'
      ['containerd.types.Mount', { options: ['ro'] }, '2202726f'],
    ];
    for (const [typeName, fields, expected] of cases) {
      it(`${typeName} encodes to ${expected}`, () => {
        const bytes = encode(typeName, fields);
        assert.equal(hex(bytes), expected);
        // And upstream's bytes decode to the same fields.
        const back = decode(typeName, Buffer.from(expected, 'hex'));
        assert.equal(hex(encode(typeName, back)), expected);
      });
    }
  });

  it('keeps uint64 exact as bigint, both ways', () => {
    const max = 18446744073709551615n;
    const bytes = encode('io.containerd.cgroups.v2.Metrics', { memory: { usage: max } });
    // memory field 4: 22 0c { usage field 32 varint: tag 256 = 80 02, then 2^64-1 as ten bytes ff..ff 01 }
    assert.equal(hex(bytes), '220c8002' + 'ff'.repeat(9) + '01');
    const back = decode('io.containerd.cgroups.v2.Metrics', bytes);
    assert.equal((back['memory'] as Record<string, unknown>)['usage'], max);
    // int64 seconds of a Timestamp: negative and beyond 2^53 too.
    for (const seconds of [-1n, 2n ** 62n + 1n]) {
      const ts = decode('google.protobuf.Timestamp', encode('google.protobuf.Timestamp', { seconds, nanos: 1 }));
      assert.deepEqual(ts, { seconds, nanos: 1 });
    }
  });

  it('refuses field names the message does not have, at any depth', () => {
    assert.throws(() => encode('containerd.task.v2.StateResponse', { exitStatus: 1 }), InvalidArgumentError);
    assert.throws(
      () => encode('containerd.task.v2.CreateTaskRequest', { rootfs: [{ type: 'bind', opts: [] }] }),
      (err: unknown) => err instanceof InvalidArgumentError && /rootfs\[0\] has no field "opts"/.test(err.message),
    );
    assert.throws(() => encode('containerd.task.v2.CreateTaskRequest', { rootfs: 'nope' }), InvalidArgumentError);
  });

  it('reports malformed bytes as BadDataError', () => {
    assert.throws(() => decode('containerd.task.v2.CreateTaskRequest', Buffer.from([0x0a, 0x05, 0x61])), BadDataError);
  });

  it('unpacks runtime-spec Anys from JSON and refuses type URLs containerd would not know', () => {
    const proc = { args: ['sh'], cwd: '/' };
    const spec = unpackAny(packAny(SPEC_TYPE_URLS.process, Buffer.from(JSON.stringify(proc))));
    assert.deepEqual(spec, { typeUrl: SPEC_TYPE_URLS.process, message: proc });
    assert.throws(() => unpackAny(packAny(SPEC_TYPE_URLS.linuxResources, Buffer.from('{'))), BadDataError);
    // containerd's typeurl looks up the bare name; a googleapis prefix is another type to it.
    assert.throws(() => unpackAny(packAny('type.googleapis.com/containerd.events.TaskExit', Buffer.alloc(0))), NotFoundError);
    assert.throws(() => unpackAny({ value: Buffer.alloc(0) }), BadDataError);
    assert.throws(() => packAny('', Buffer.alloc(0)), InvalidArgumentError);
  });

  it('has a type URL naming a message for every topic', () => {
    assert.deepEqual(Object.keys(TASK_EVENT_TYPE_URLS).sort(), Object.keys(TASK_TOPICS).sort());
    for (const url of Object.values(TASK_EVENT_TYPE_URLS)) assert.equal(type(url).fullName, `.${url}`);
    for (const topic of Object.values(TASK_TOPICS)) assert.match(topic, /^\/tasks\/[a-z-]+$/);
  });

  it('the shim answers containerd 2.x\'s -info with a RuntimeInfo (containerd caches only an answer)', function () {
    this.timeout(60_000);
    const shim = path.resolve(__dirname, '..', '..', '..', 'shim', 'bin', 'containerd-shim-ovmigrate-v1');
    const out = execFileSync(shim, ['-info'], { input: Buffer.alloc(0) });
    const info = decode('containerd.types.RuntimeInfo', out);
    assert.equal(info.name, 'io.containerd.ovmigrate.v1');
    assert.match(String((info.version as { version: string }).version), /^\d+\.\d+\.\d+$/);
    assert.deepEqual(info.annotations, {}, 'no mount types of its own: containerd mounts the rootfs');
  });
});
