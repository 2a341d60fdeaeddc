import assert from 'node:assert/strict';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { requirePrograms } from '../helpers/cli.js';
import { components } from '../helpers/components.js';
import { CriClient, type Msg } from '../helpers/cri-client.js';
import { HostContainerd, startHostContainerd } from '../helpers/host-containerd.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';
import { PAUSE_IMAGE, buildPauseImage } from '../lab/pause-image.js';
import { projectRoot } from '../lab/paths.js';

const NODE_NETWORK = 2; // NamespaceMode.NODE: no CNI here


function commandLines(word: string): string[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((pid) => {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv.includes(word) ? [argv.join(' ')] : [];
    } catch {
      return [];
    }
  });
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Both answers decoded, with fields that differ between two calls of the same thing (times, sizes in use) left out. */
function stable(msg: Msg, drop: string[]): Msg {
  return JSON.parse(JSON.stringify(msg, (k, v) => (drop.includes(k) ? undefined : typeof v === 'bigint' ? String(v) : v)));
}

describe('ovmigrate-cri in front of a real containerd CRI (containerd 1.6 on this host)', function () {
  // crictl, for the last test: built in the background while the others run.
  components.declare(['cri-tools']);
  let cd: HostContainerd;
  let proxyProcess: ChildProcess;
  let direct: CriClient;
  let via: CriClient;
  let tmp: string;
  let socket: string;
  let podId = '';
  let ctrId = '';
  let sandboxConfig: Msg;
  let eventStream: grpc.ClientReadableStream<Msg> | undefined;

  before(async function () {
    requirePrograms(this, ['containerd', 'ctr', 'runc', 'gcc', 'tar', 'busybox']);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cri-'));
    socket = path.join(tmp, 'cri.sock');
    cd = await startHostContainerd('cri', { cri: { sandboxImage: PAUSE_IMAGE } });
    await Promise.all([buildPauseImage(path.join(tmp, 'pause.tar')), buildBusyboxImage(path.join(tmp, 'busybox.tar'))]);
    await cd.ctr(['images', 'import', path.join(tmp, 'pause.tar')]);
    await cd.ctr(['images', 'import', path.join(tmp, 'busybox.tar')]);
    proxyProcess = spawn(path.join(projectRoot, 'shim', 'bin', 'ovmigrate-cri'), ['--listen', socket, '--containerd', cd.address, '--log-level', 'debug'], {
      stdio: ['ignore', 'ignore', fs.openSync(path.join(tmp, 'proxy.log'), 'a')],
    });
    await until('the proxy socket', () => fs.existsSync(socket));
    direct = new CriClient(cd.address);
    via = new CriClient(socket);
    sandboxConfig = {
      metadata: { name: 'ovm-pod', uid: `uid-${process.pid}`, namespace: 'default', attempt: 0 },
      log_directory: path.join(tmp, 'pod-logs'),
      linux: { security_context: { namespace_options: { network: NODE_NETWORK } } },
    };
  });

  after(async () => {
    eventStream?.cancel();
    direct?.close();
    via?.close();
    if (proxyProcess && proxyProcess.exitCode === null) {
      proxyProcess.kill('SIGTERM');
      await new Promise((r) => proxyProcess.once('exit', r));
    }
    await cd?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && tmp) process.stdout.write(`proxy log:\n${fs.readFileSync(path.join(tmp, 'proxy.log'), 'utf8').slice(-3000)}\n`);
  });

  it('Version and Status: the same bytes as from containerd', async () => {
    const [d, v] = await Promise.all([direct.result('Version', {}), via.result('Version', {})]);
    assert.equal(v.status.code, grpc.status.OK);
    assert.deepEqual(v.raw, d.raw);
    assert.equal(v.response!.runtime_name, 'containerd');
    assert.equal(v.response!.runtime_api_version, 'v1');
    const [ds, vs] = await Promise.all([direct.result('Status', { verbose: false }), via.result('Status', { verbose: false })]);
    assert.deepEqual(vs.raw, ds.raw);
  });

  it('ListImages and ImageStatus: the imported busybox and pause images, as containerd lists them', async () => {
    const byId = (r: Msg) => [...r.images].sort((a: Msg, b: Msg) => a.id.localeCompare(b.id));
    const [d, v] = await Promise.all([direct.call('ListImages'), via.call('ListImages')]);
    assert.deepEqual(stable({ images: byId(v) }, []), stable({ images: byId(d) }, []));
    assert.deepEqual(v.images.flatMap((i: Msg) => i.repo_tags).sort(), [BUSYBOX_IMAGE, PAUSE_IMAGE]);
    const [ds, vs] = await Promise.all([direct.result('ImageStatus', { image: { image: BUSYBOX_IMAGE } }), via.result('ImageStatus', { image: { image: BUSYBOX_IMAGE } })]);
    assert.deepEqual(vs.raw, ds.raw);
    assert.deepEqual(vs.response!.image.repo_tags, [BUSYBOX_IMAGE]);
  });

  it('GetContainerEvents through the proxy ends as it does from containerd, or streams (opened before the pod)', async () => {
    // containerd 1.6 answers UNIMPLEMENTED (its evented PLEG support came in 1.7); the proxy must pass that on as is.
    const outcome = (c: CriClient) => new Promise<grpc.StatusObject | 'open'>((resolve) => {
      const s = c.stream('GetContainerEvents', {});
      s.on('error', () => undefined);
      s.on('status', resolve);
      setTimeout(() => {
        if (c === direct) s.cancel();
        resolve('open');
      }, 1000);
      if (c === via) eventStream = s;
    });
    const [d, v] = await Promise.all([outcome(direct), outcome(via)]);
    if (d === 'open') {
      assert.equal(v, 'open');
    } else {
      assert.notEqual(v, 'open');
      const vs = v as grpc.StatusObject;
      assert.equal(vs.code, d.code);
      assert.equal(vs.details, d.details);
      console.log(`      containerd's GetContainerEvents: ${grpc.status[d.code]}: ${d.details}`);
    }
  });

  it('RunPodSandbox with the pause image in the node network; PodSandboxStatus and ListPodSandbox as containerd answers them', async () => {
    const r = await via.call('RunPodSandbox', { config: sandboxConfig });
    podId = r.pod_sandbox_id;
    assert.match(podId, /^[0-9a-f]{64}$/);
    const [d, v] = await Promise.all([direct.result('PodSandboxStatus', { pod_sandbox_id: podId }), via.result('PodSandboxStatus', { pod_sandbox_id: podId })]);
    assert.deepEqual(v.raw, d.raw);
    assert.equal(v.response!.status.state, 0); // SANDBOX_READY
    const [dl, vl] = await Promise.all([direct.result('ListPodSandbox', {}), via.result('ListPodSandbox', {})]);
    assert.deepEqual(vl.raw, dl.raw);
    assert.deepEqual(vl.response!.items.map((p: Msg) => p.id), [podId]);
    await until('our pause program to run', () => commandLines('/pause').length >= 1);
  });

  it('CreateContainer and StartContainer; ListContainers and ContainerStatus as containerd answers them', async () => {
    const config = {
      metadata: { name: 'worker', attempt: 0 },
      image: { image: BUSYBOX_IMAGE },
      command: ['sh', '-c', 'echo started; exec sleep 100000'],
      log_path: 'worker.log',
    };
    ctrId = (await via.call('CreateContainer', { pod_sandbox_id: podId, config, sandbox_config: sandboxConfig })).container_id;
    await via.call('StartContainer', { container_id: ctrId });
    const [dl, vl] = await Promise.all([direct.result('ListContainers', {}), via.result('ListContainers', {})]);
    assert.deepEqual(vl.raw, dl.raw);
    assert.equal(vl.response!.containers.length, 1);
    assert.equal(vl.response!.containers[0].state, 1); // CONTAINER_RUNNING
    const [ds, vs] = await Promise.all([direct.result('ContainerStatus', { container_id: ctrId }), via.result('ContainerStatus', { container_id: ctrId })]);
    assert.deepEqual(vs.raw, ds.raw);
    assert.equal(vs.response!.status.metadata.name, 'worker');
    await until('the container log', () => fs.existsSync(path.join(tmp, 'pod-logs', 'worker.log')) && fs.readFileSync(path.join(tmp, 'pod-logs', 'worker.log'), 'utf8').includes('started'));
  });

  it('ExecSync: output and exit code as from containerd', async () => {
    const req = { container_id: ctrId, cmd: ['sh', '-c', 'echo out; echo err >&2; exit 7'], timeout: 10 };
    const [d, v] = await Promise.all([direct.result('ExecSync', req), via.result('ExecSync', req)]);
    assert.deepEqual(v.raw, d.raw);
    assert.equal(v.response!.stdout.toString(), 'out\n');
    assert.equal(v.response!.stderr.toString(), 'err\n');
    assert.equal(v.response!.exit_code, 7);
  });

  it("Exec: the streaming URL points at containerd's streaming server on loopback", async () => {
    const r = await via.call('Exec', { container_id: ctrId, cmd: ['echo', 'hi'], stdout: true, stderr: true });
    const url = new URL(r.url);
    assert.equal(url.hostname, '127.0.0.1');
    assert.match(url.pathname, /^\/exec\/\S+/);
    // An HTTP request without the stream upgrade is refused by that server, which shows it is there.
    const res = await fetch(r.url).catch((err: unknown) => err as Error);
    assert.ok(!(res instanceof Error), `the streaming server answers: ${res instanceof Error ? res.message : ''}`);
  });

  it('ContainerStats: the same container, and CPU and memory figures', async () => {
    const [d, v] = await Promise.all([direct.call('ContainerStats', { container_id: ctrId }), via.call('ContainerStats', { container_id: ctrId })]);
    assert.deepEqual(v.stats.attributes, d.stats.attributes);
    assert.equal(v.stats.attributes.id, ctrId);
    assert.ok(v.stats.memory.working_set_bytes?.value > 0n);
  });

  it("an unknown container: containerd's NOT_FOUND code and message come through", async () => {
    const [d, v] = await Promise.all([direct.result('ContainerStatus', { container_id: 'no-such-container' }), via.result('ContainerStatus', { container_id: 'no-such-container' })]);
    assert.equal(d.status.code, grpc.status.NOT_FOUND);
    assert.equal(v.status.code, d.status.code);
    assert.equal(v.status.details, d.status.details);
    assert.match(v.status.details, /no-such-container/);
  });

  // containerd kills an ExecSync's process when its context ends, but 1.6 sends that kill with the ended
  // context, so it does not always go out: the kill is reported, not asserted. The unit test (cri-proxy)
  // shows the cancel and the deadline reaching the server exactly.
  const killedWithin = async (marker: string, ms: number) => until('the exec to end', () => commandLines(marker).length === 0, ms).then(() => true, () => false);

  it("a client's cancel: CANCELLED at once, as from containerd directly", async () => {
    for (const [client, marker] of [[via, '31337'], [direct, '31339']] as const) {
      const r = await client.result('ExecSync', { container_id: ctrId, cmd: ['sleep', marker], timeout: 0 }, {
        started: (call) => void until('the exec to run', () => commandLines(marker).length > 0).then(() => call.cancel()),
      });
      assert.equal(r.status.code, grpc.status.CANCELLED);
      console.log(`      ${client === via ? 'through the proxy' : 'directly'}: containerd ${await killedWithin(marker, 3000) ? 'killed' : 'did not kill'} the exec`);
    }
  });

  it("a client's deadline: DEADLINE_EXCEEDED when it runs out, as from containerd directly", async () => {
    for (const [client, marker] of [[via, '31338'], [direct, '31340']] as const) {
      const r = await client.result('ExecSync', { container_id: ctrId, cmd: ['sleep', marker], timeout: 0 }, { deadline: Date.now() + 1500 });
      assert.equal(r.status.code, grpc.status.DEADLINE_EXCEEDED);
      console.log(`      ${client === via ? 'through the proxy' : 'directly'}: containerd ${await killedWithin(marker, 3000) ? 'killed' : 'did not kill'} the exec`);
    }
  });

  it('containerd restarted under the proxy: a call made while it is down reaches the new containerd, the next call succeeds, the container is still there', async () => {
    eventStream?.cancel();
    eventStream = undefined;
    let during: Promise<{ status: grpc.StatusObject; raw?: Buffer; response?: Msg }> | undefined;
    let directDuring: grpc.StatusObject | undefined;
    await cd.restart(async () => {
      during = via.result('ContainerStatus', { container_id: ctrId }, { deadline: Date.now() + 20_000 });
      // A plain client of the dead socket fails at once: the proxy's wait is what makes the restart a slow call.
      directDuring = (await direct.result('Version', {}, { deadline: Date.now() + 5000 })).status;
      await new Promise((r) => setTimeout(r, 1000));
    });
    assert.equal(directDuring!.code, grpc.status.UNAVAILABLE);
    // The waiting call reached the new containerd: it answers, or says (as to any client) that its CRI
    // plugin is still starting; the proxy passes that on and does not retry it.
    const v = await during!;
    if (v.status.code !== grpc.status.OK) assert.match(`${v.status.code} ${v.status.details}`, /^2 server is not initialized yet/);
    else assert.equal(v.response!.status.state, 1);
    await until("containerd's CRI to be initialized", async () => (await direct.result('Version', {})).status.code === grpc.status.OK);
    // The next call through the proxy succeeds, and answers as containerd does.
    const [vs, ds] = await Promise.all([via.result('ContainerStatus', { container_id: ctrId }), direct.result('ContainerStatus', { container_id: ctrId })]);
    assert.equal(vs.status.code, grpc.status.OK, vs.status.details);
    assert.equal(vs.response!.status.state, 1);
    assert.deepEqual(vs.raw, ds.raw);
    const again = await via.result('Version', {});
    assert.equal(again.status.code, grpc.status.OK);
  });

  it('StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox', async () => {
    await via.call('StopContainer', { container_id: ctrId, timeout: 2 });
    await via.call('RemoveContainer', { container_id: ctrId });
    await via.call('StopPodSandbox', { pod_sandbox_id: podId });
    await via.call('RemovePodSandbox', { pod_sandbox_id: podId });
    const [dl, vl] = await Promise.all([direct.result('ListPodSandbox', {}), via.result('ListPodSandbox', {})]);
    assert.deepEqual(vl.raw, dl.raw);
    assert.equal(vl.response!.items.length, 0);
    assert.equal((await via.call('ListContainers')).containers.length, 0);
  });

  it('crictl (the pinned release) through the proxy: version, info, images, runp, create, start, exec, logs, stop, rm', async function () {
    this.timeout(300_000);
    const crictl = await components.program('cri-tools', 'crictl', this);
    const config = (name: string, sock: string) => {
      const file = path.join(tmp, `crictl-${name}.yaml`);
      fs.writeFileSync(file, `runtime-endpoint: unix://${sock}\nimage-endpoint: unix://${sock}\ntimeout: 60\n`);
      return file;
    };
    const [viaConfig, directConfig] = [config('proxy', socket), config('direct', cd.address)];
    // In the scratch directory: crictl also looks for a crictl.yaml beside itself and in its cwd.
    const crictlAt = (file: string) => (args: string[]) => new Promise<string>((resolve, reject) => {
      execFile(crictl, ['--config', file, ...args], { cwd: tmp, timeout: 120_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`crictl ${args.join(' ')}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    const run = crictlAt(viaConfig);
    const runDirect = crictlAt(directConfig);
    const version = await run(['version']);
    assert.equal(version, await runDirect(['version']));
    assert.match(version, /RuntimeName:\s+containerd/);
    assert.match(version, /RuntimeApiVersion:\s+v1/);
    const info = JSON.parse(await run(['info', '-o', 'json'])) as { status: { conditions: { type: string; status: boolean }[] } };
    assert.ok(info.status.conditions.some((c) => c.type === 'RuntimeReady' && c.status), JSON.stringify(info.status));
    const images = await run(['images', '-o', 'json']);
    assert.equal(images, await runDirect(['images', '-o', 'json']));
    assert.deepEqual((JSON.parse(images) as { images: { repoTags: string[] }[] }).images.flatMap((i) => i.repoTags).sort(), [BUSYBOX_IMAGE, PAUSE_IMAGE]);
    const pod = path.join(tmp, 'crictl-pod.json');
    const ctr = path.join(tmp, 'crictl-ctr.json');
    fs.writeFileSync(pod, JSON.stringify({
      metadata: { name: 'crictl-pod', uid: `crictl-${process.pid}`, namespace: 'default', attempt: 0 },
      log_directory: path.join(tmp, 'crictl-logs'),
      linux: { security_context: { namespace_options: { network: NODE_NETWORK } } },
    }));
    fs.writeFileSync(ctr, JSON.stringify({
      metadata: { name: 'crictl-worker' }, image: { image: BUSYBOX_IMAGE },
      command: ['sh', '-c', 'echo hello-from-crictl; exec sleep 100000'], log_path: 'worker.log',
    }));
    const podId = (await run(['runp', pod])).trim();
    assert.match(podId, /^[0-9a-f]{64}$/);
    const ctrId = (await run(['create', '--no-pull', podId, ctr, pod])).trim();
    assert.match(ctrId, /^[0-9a-f]{64}$/);
    await run(['start', ctrId]);
    assert.match(await run(['ps', '-q', '--state', 'running']), new RegExp(ctrId));
    // exec streams through containerd's streaming server (the URL came through the proxy); -s is ExecSync.
    assert.equal(await run(['exec', ctrId, 'sh', '-c', 'echo streamed-$((6*7))']), 'streamed-42\n');
    const synced = await run(['exec', '-s', ctrId, 'echo', 'synced']);
    assert.match(synced, /^synced\n/);
    assert.equal(synced, await runDirect(['exec', '-s', ctrId, 'echo', 'synced']));
    await until('the log line', async () => (await run(['logs', ctrId])).includes('hello-from-crictl'));
    assert.equal(await run(['inspect', '-o', 'json', ctrId]), await runDirect(['inspect', '-o', 'json', ctrId]));
    await run(['stop', '--timeout', '2', ctrId]);
    assert.match(await run(['inspect', '-o', 'json', ctrId]), /"state":\s*"CONTAINER_EXITED"/);
    await run(['rm', ctrId]);
    await run(['stopp', podId]);
    await run(['rmp', podId]);
    assert.equal((await run(['pods', '-q'])).trim(), '');
    assert.equal((await run(['ps', '-a', '-q'])).trim(), '');
  });
});
