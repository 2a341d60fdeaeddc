import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { encodeCri } from '../../shim/cri/cri-messages.js';
import { type CheckpointNote, OVMIGRATE_RUNTIME, PauseGuard, checkpointContainer, getString, methodPath } from '../../shim/cri/index.js';
import { taskBundle } from '../../shim/cri/shim-task.js';
import { CriProxyRig, criProxyRig } from './helpers/cri-proxy-rig.js';
import { FakeTaskShim, fakeBackendAccess, fakeRunc } from './helpers/fake-task-shim.js';
import { quietLogs } from './helpers/quiet-logs.js';

const raw = (b: Buffer): Buffer => b;
const CHECKPOINT = methodPath({ service: 'RuntimeService', name: 'CheckpointContainer', streaming: 'unary' });
const CONTAINER_STATUS = methodPath({ service: 'RuntimeService', name: 'ContainerStatus', streaming: 'unary' });
const POD_STATUS = methodPath({ service: 'RuntimeService', name: 'PodSandboxStatus', streaming: 'unary' });
const ID = 'c0ffee';
const MAIN = path.resolve(__dirname, '..', '..', 'shim', 'cri', 'main.js');

/** containerd's CRI as the intercept asks it: a running container of our runtime in pod p1. */
async function fakeContainerd(socket: string): Promise<grpc.Server> {
  const server = new grpc.Server();
  server.register(CONTAINER_STATUS, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    const id = getString(call.request, 1);
    if (id !== ID) return cb({ code: grpc.status.NOT_FOUND, details: `container "${id}": not found` });
    cb(null, encodeCri('ContainerStatusResponse', {
      status: { id: ID, metadata: { name: 'counter', attempt: 0 }, state: 1, created_at: 1_700_000_000_000_000_000n, image: { image: 'busybox:ovm' }, image_ref: 'sha256:ab', log_path: '' },
      info: { info: JSON.stringify({ sandboxID: 'p1', runtimeType: OVMIGRATE_RUNTIME, pid: 42 }) },
    }));
  }, raw, raw, 'unary');
  server.register(POD_STATUS, (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    cb(null, encodeCri('PodSandboxStatusResponse', { status: { id: 'p1', metadata: { name: 'pod', namespace: 'default', uid: 'u1', attempt: 0 } } }));
  }, raw, raw, 'unary');
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return server;
}

function checkpoint(client: grpc.Client, location: string, deadlineMs = 20_000): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest(CHECKPOINT, raw, raw, encodeCri('CheckpointContainerRequest', { container_id: ID, location }), new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs }, () => undefined);
    call.on('status', resolve);
  });
}

const tarNames = (file: string) => execFileSync('tar', ['-tf', file]).toString().split('\n').filter(Boolean);

describe('ovmigrate-cri checkpoint faults (fake containerd, a fake shim over the real Freezer and Checkpointer): nothing is lost', function () {
  // Each archive's rw layer runs python3 (opaque directories): seconds on a loaded host.
  this.timeout(20_000);
  quietLogs();
  let dir: string;
  let out: string;
  let notes: string;
  let share: string;
  let configFile: string;
  let state: string;
  let shim: FakeTaskShim | undefined;
  let rig: CriProxyRig | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cri-faults-'));
    out = path.join(dir, 'out');
    notes = path.join(dir, 'notes');
    share = path.join(dir, 'share');
    state = path.join(dir, 'state');
    for (const d of [out, share, state, path.join(dir, 'rig')]) fs.mkdirSync(d);
    fs.mkdirSync(path.join(dir, 'upper', 'tmp'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'upper', 'tmp', 'count'), '1\n');
    configFile = path.join(dir, 'shim.json');
  });

  afterEach(async () => {
    await rig?.close();
    await shim?.close();
    rig = undefined;
    shim = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The fake shim of container ID over `runc` and `access`, and a proxy in front of the fake containerd. */
  async function setUp(runc = fakeRunc(), access = fakeBackendAccess(share), fallback: 'criu' | 'refuse' = 'criu') {
    fs.writeFileSync(configFile, JSON.stringify({ images: share, fallback }));
    shim = new FakeTaskShim(ID, taskBundle(ID, state), runc, configFile, access);
    await shim.start();
    const guard = new PauseGuard(notes);
    rig = await criProxyRig(path.join(dir, 'rig'), fakeContainerd, (upstream) => new Map([
      [CHECKPOINT, checkpointContainer(upstream, { containerdState: state, guard, upperDir: () => path.join(dir, 'upper') })],
    ]));
    return { runc, access, client: rig.client, guard };
  }

  const leftovers = () => fs.readdirSync(out);
  const noteFiles = () => (fs.existsSync(notes) ? fs.readdirSync(notes) : []);

  it("backend down, fallback 'refuse': FAILED_PRECONDITION naming the unreachable backend; the container was resumed and runs; nothing at the location, no note", async () => {
    const { runc, client } = await setUp(fakeRunc(), fakeBackendAccess(share, { down: true }), 'refuse');
    const status = await checkpoint(client, path.join(out, 'cp.tar'));
    assert.equal(status.code, grpc.status.FAILED_PRECONDITION, status.details);
    assert.match(status.details, /backend is unreachable \(no answer on the ovmigrate\.0 channel: hello: no answer within 2000 ms\)/);
    assert.match(status.details, /fallback "refuse"/);
    assert.deepEqual(runc.calls, [`pause ${ID}`, `resume ${ID}`], 'paused by the CRI layer, never checkpointed, resumed');
    assert.equal(runc.status(), 'running');
    assert.deepEqual(leftovers(), []);
    assert.deepEqual(noteFiles(), []);
  });

  it("backend down, fallback 'criu': CRIU in the guest (runc checkpoint) while paused; the archive holds its images; resumed", async () => {
    const { runc, client } = await setUp(fakeRunc(), fakeBackendAccess(share, { down: true }), 'criu');
    const status = await checkpoint(client, path.join(out, 'cp.tar'));
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.deepEqual(runc.calls, [`pause ${ID}`, `checkpoint ${ID} leave-running=true (paused)`, `resume ${ID}`]);
    assert.equal(runc.status(), 'running');
    assert.deepEqual(leftovers(), ['cp.tar']);
    const names = tarNames(path.join(out, 'cp.tar'));
    assert.deepEqual(names, ['checkpoint/', 'checkpoint/inventory.img', 'config.dump', 'rootfs-diff.tar', 'spec.dump', 'stats-dump', 'status.dump']);
    assert.equal((fs.statSync(path.join(out, 'cp.tar')).mode & 0o777), 0o600);
    assert.deepEqual(noteFiles(), []);
  });

  it('a container the user paused (ctr task pause, through the shim) is checkpointed as it is and stays paused: no Pause, no Resume of ours', async () => {
    const { runc, access, client } = await setUp();
    await shim!.freezer.pause(); // the user's
    runc.calls.length = 0;
    const status = await checkpoint(client, path.join(out, 'cp.tar'));
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.equal(access.checkpoints, 1, 'the backend dumped it');
    assert.deepEqual(runc.calls, [], 'neither paused nor resumed by the checkpoint');
    assert.equal(runc.status(), 'paused');
    assert.ok(tarNames(path.join(out, 'cp.tar')).includes('checkpoint/pages-1.img'));
    // With CRIU in the guest as well.
    fs.writeFileSync(configFile, JSON.stringify({ images: share, fallback: 'criu' }));
    (access as { portPresent: () => boolean }).portPresent = () => false;
    assert.equal((await checkpoint(client, path.join(out, 'cp2.tar'))).code, grpc.status.OK);
    assert.deepEqual(runc.calls, [`checkpoint ${ID} leave-running=true (paused)`]);
    assert.equal(runc.status(), 'paused');
    // The user's Resume still works: the shim knows it as the user's pause.
    await shim!.freezer.resume();
    assert.equal(runc.status(), 'running');
  });

  it('while paused for a checkpoint the note (0600) names the container, its staging and the location; it goes with the Resume; a second checkpoint of the container meanwhile is refused', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { runc, client } = await setUp(fakeRunc(), fakeBackendAccess(share, { gate }));
    const first = checkpoint(client, path.join(out, 'cp.tar'));
    while (runc.status() !== 'paused') await sleep(5);
    const file = path.join(notes, `${ID}.json`);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const note = JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointNote;
    assert.equal(note.id, ID);
    assert.equal(note.paused, true);
    assert.equal(note.location, path.join(out, 'cp.tar'));
    assert.equal(path.dirname(note.stage), out);
    assert.ok(fs.existsSync(note.stage), 'the staging it names exists');
    const second = await checkpoint(client, path.join(out, 'other.tar'));
    assert.equal(second.code, grpc.status.FAILED_PRECONDITION);
    assert.match(second.details, /already underway/);
    open();
    assert.equal((await first).code, grpc.status.OK);
    assert.deepEqual(noteFiles(), []);
    assert.deepEqual(leftovers(), ['cp.tar']);
    assert.equal(runc.status(), 'running');
  });

  it('recover(): a dead run\'s paused container is resumed, its staging and partial archive removed, the note taken; others\' files stay', async () => {
    const { runc } = await setUp();
    await shim!.freezer.pause(); // as the dead ovmigrate-cri's Pause left it
    runc.calls.length = 0;
    const location = path.join(out, 'cp.tar');
    const stage = path.join(out, '.cp.tar.ovmigrate-0123456789ab.staging-d');
    fs.mkdirSync(path.join(stage, 'checkpoint'), { recursive: true });
    fs.writeFileSync(path.join(stage, 'checkpoint', 'pages-1.img'), 'x');
    fs.writeFileSync(path.join(out, '.cp.tar.ovmigrate-ba9876543210.partial'), 'half');
    fs.writeFileSync(path.join(out, 'mine.tar'), 'the user\'s');
    fs.writeFileSync(path.join(out, '.other.tar.ovmigrate-ba9876543210.partial'), 'another location\'s');
    fs.mkdirSync(notes);
    const note: CheckpointNote = { id: ID, bundle: taskBundle(ID, state), location, stage, paused: true, pid: 999999, at: new Date().toISOString() };
    fs.writeFileSync(path.join(notes, `${ID}.json`), JSON.stringify(note), { mode: 0o600 });
    fs.writeFileSync(path.join(notes, 'garbage.json'), '{');

    await new PauseGuard(notes).recover();
    assert.deepEqual(runc.calls, [`resume ${ID}`]);
    assert.equal(runc.status(), 'running');
    assert.deepEqual(leftovers().sort(), ['.other.tar.ovmigrate-ba9876543210.partial', 'mine.tar']);
    assert.deepEqual(noteFiles(), []);

    // A note whose container is running already (resumed by someone else), or whose shim is gone: nothing resumed, the note goes.
    fs.writeFileSync(path.join(notes, `${ID}.json`), JSON.stringify(note));
    fs.writeFileSync(path.join(notes, 'gone.json'), JSON.stringify({ ...note, id: 'gone', bundle: path.join(dir, 'nowhere') }));
    await new PauseGuard(notes).recover();
    assert.deepEqual(runc.calls, [`resume ${ID}`]);
    assert.deepEqual(noteFiles(), []);
  });

  describe('ovmigrate-cri SIGKILLed between its Pause and Resume (the real program)', () => {
    let proc: ChildProcess | undefined;
    afterEach(() => {
      if (proc?.exitCode === null) proc.kill('SIGKILL');
      proc = undefined;
    });

    async function startProgram(listen: string, containerd: string, log: string): Promise<ChildProcess> {
      fs.rmSync(listen, { force: true });
      // The container's rootfs as the program finds it: an overlay, mounted in a mount namespace of its own (unshare
      // execs, so the pid is the program's).
      const rootfs = path.join(taskBundle(ID, state), 'rootfs');
      const [lower, work] = [path.join(dir, 'lower'), path.join(dir, 'work')];
      for (const d of [rootfs, lower, work]) fs.mkdirSync(d, { recursive: true });
      const mount = `mount -t overlay overlay -o lowerdir=${lower},upperdir=${path.join(dir, 'upper')},workdir=${work} ${rootfs} && exec "$0" "$@"`;
      const p = spawn('unshare', ['-rm', 'sh', '-c', mount, process.execPath, MAIN,
        '--listen', listen, '--containerd', containerd, '--containerd-state', state, '--checkpoint-notes', notes, '--log-level', 'debug'],
      { stdio: ['ignore', 'ignore', fs.openSync(log, 'a')] });
      // Until it serves or exits: a start on a loaded machine can take many seconds (the test's timeout bounds it).
      while (!fs.existsSync(listen) && p.exitCode === null && p.signalCode === null) await sleep(50);
      assert.ok(fs.existsSync(listen), `ovmigrate-cri serves: ${fs.readFileSync(log, 'utf8')}`);
      return p;
    }

    it('the next start resumes the container, removes the staging and the partial archive, then serves; a later checkpoint works', async function () {
      this.timeout(180_000);
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const { runc } = await setUp(fakeRunc(), fakeBackendAccess(share, { gate }));
      const listen = path.join(dir, 'program.sock');
      const log = process.env.OVM_DEBUG_LOG ?? path.join(dir, 'program.log');
      const containerd = path.join(dir, 'rig', 'containerd.sock');
      proc = await startProgram(listen, containerd, log);
      const client = new grpc.Client(`unix://${listen}`, grpc.credentials.createInsecure());
      try {
        const first = checkpoint(client, path.join(out, 'cp.tar'));
        while (runc.status() !== 'paused') await sleep(10);
        proc.kill('SIGKILL');
        await new Promise((r) => proc!.once('exit', r));
        assert.notEqual((await first).code, grpc.status.OK);
        assert.equal(runc.status(), 'paused', 'left paused by the dead one');
        assert.equal(JSON.parse(fs.readFileSync(path.join(notes, `${ID}.json`), 'utf8')).paused, true);
        // The shim's checkpoint is still running (the shim cannot be interrupted): it ends while the next one starts.
        setTimeout(open, 300);
        proc = await startProgram(listen, containerd, log);
        assert.equal(runc.status(), 'running', 'resumed before it served');
        assert.deepEqual(runc.calls, [`pause ${ID}`, `resume ${ID}`]);
        assert.deepEqual(leftovers(), [], 'no staging, no partial archive');
        assert.deepEqual(noteFiles(), []);
        assert.match(fs.readFileSync(log, 'utf8'), /paused by a checkpoint of an ovmigrate-cri that died .*resumed/);
        const again = await checkpoint(client, path.join(out, 'again.tar'));
        assert.equal(again.code, grpc.status.OK, again.details);
        assert.deepEqual(leftovers(), ['again.tar']);
      } finally {
        client.close();
      }
    });
  });
});
