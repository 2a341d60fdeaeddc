/**
 * `make bench`, CRI part: what ovmigrate-cri costs under the kubelet's
 * polling (ListPodSandbox, ListContainers, then ContainerStatus and
 * ContainerStats of each container, as its PLEG and stats loops ask every
 * second), against a containerd 1.6 CRI of its own on this host. Prints the
 * proxy's CPU per 100 forwarded calls beside containerd's for the same
 * calls, and the proxy's CPU per second at the kubelet's 1 Hz pace.
 * OVMIGRATE_CRI_CPU_PROF=DIR also writes a V8 CPU profile of the proxy there.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CriClient } from '../helpers/cri-client.js';
import { cpuSeconds, kubeletRound } from '../helpers/cri-poll.js';
import { startHostContainerd } from '../helpers/host-containerd.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';
import { PAUSE_IMAGE, buildPauseImage } from '../lab/pause-image.js';

const MAIN = path.resolve(__dirname, '..', '..', 'shim', 'cri', 'main.js');
const CONTAINERS = 3;
/** Polling rounds at full speed (each round is 2 + 2 * CONTAINERS calls). */
const ROUNDS = Number(process.env.OVMIGRATE_CRI_ROUNDS ?? 300);
/** Seconds at the kubelet's pace. */
const PACED_S = Number(process.env.OVMIGRATE_CRI_PACED_S ?? 20);
function containerdPid(dir: string): number {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (path.basename(argv[0]) === 'containerd' && argv.includes(path.join(dir, 'config.toml'))) return Number(pid);
    } catch {
      // Gone meanwhile.
    }
  }
  throw new Error('the bench containerd is not running');
}

async function main(): Promise<void> {
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cri-poll-'));
  const cd = await startHostContainerd('cripoll', { cri: { sandboxImage: PAUSE_IMAGE } });
  let proxy: ChildProcess | undefined;
  const via = new CriClient(path.join(tmp, 'cri.sock'));
  try {
    await Promise.all([buildPauseImage(path.join(tmp, 'pause.tar')), buildBusyboxImage(path.join(tmp, 'busybox.tar'))]);
    await cd.ctr(['images', 'import', path.join(tmp, 'pause.tar')]);
    await cd.ctr(['images', 'import', path.join(tmp, 'busybox.tar')]);
    const prof = process.env.OVMIGRATE_CRI_CPU_PROF;
    proxy = spawn(process.execPath, [...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), MAIN, '--listen', path.join(tmp, 'cri.sock'), '--containerd', cd.address,
      '--checkpoint-notes', path.join(tmp, 'notes')], { stdio: ['ignore', 'ignore', 'inherit'] });
    for (let i = 0; i < 200 && !fs.existsSync(path.join(tmp, 'cri.sock')); i++) await new Promise((r) => setTimeout(r, 100));
    const sandbox = {
      metadata: { name: 'poll', uid: `poll-${process.pid}`, namespace: 'default', attempt: 0 },
      log_directory: path.join(tmp, 'logs'),
      linux: { security_context: { namespace_options: { network: 2 } } },
    };
    progress(`a pod of ${CONTAINERS} containers`);
    const pod = (await via.call('RunPodSandbox', { config: sandbox })).pod_sandbox_id as string;
    const ids: string[] = [];
    for (let i = 0; i < CONTAINERS; i++) {
      const config = { metadata: { name: `c${i}`, attempt: 0 }, image: { image: BUSYBOX_IMAGE }, command: ['sleep', '100000'], log_path: `c${i}.log` };
      const id = (await via.call('CreateContainer', { pod_sandbox_id: pod, config, sandbox_config: sandbox })).container_id as string;
      await via.call('StartContainer', { container_id: id });
      ids.push(id);
    }
    const round = () => kubeletRound(via, ids);
    const callsPerRound = 2 + 2 * CONTAINERS;
    await round(); // warm: channels open, code compiled
    const ctrdPid = containerdPid(cd.dir);
    const [p0, c0, t0] = [cpuSeconds(proxy.pid!), cpuSeconds(ctrdPid), Date.now()];
    for (let i = 0; i < ROUNDS; i++) await round();
    const [p1, c1, t1] = [cpuSeconds(proxy.pid!), cpuSeconds(ctrdPid), Date.now()];
    const calls = ROUNDS * callsPerRound;
    const per100 = (s: number) => ((s * 1000 * 100) / calls).toFixed(1);
    console.log(`ovmigrate-cri under kubelet-style polling (${calls} calls, ${CONTAINERS} containers, ${((t1 - t0) / 1000).toFixed(1)} s):`);
    console.log(`  CPU per 100 calls: ovmigrate-cri ${per100(p1 - p0)} ms, containerd ${per100(c1 - c0)} ms, ratio ${((p1 - p0) / Math.max(c1 - c0, 0.01)).toFixed(2)}`);
    const idle0 = cpuSeconds(proxy.pid!);
    await new Promise((r) => setTimeout(r, 10_000));
    console.log(`  idle for 10 s after: ovmigrate-cri ${(10 * (cpuSeconds(proxy.pid!) - idle0)).toFixed(2)}% of a CPU`);
    const [p2, c2] = [cpuSeconds(proxy.pid!), cpuSeconds(ctrdPid)];
    for (let s = 0; s < PACED_S; s++) {
      const start = Date.now();
      await round();
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - start))));
    }
    const [p3, c3] = [cpuSeconds(proxy.pid!), cpuSeconds(ctrdPid)];
    console.log(`  at 1 round a second for ${PACED_S} s: ovmigrate-cri ${((100 * (p3 - p2)) / PACED_S).toFixed(2)}% of a CPU, containerd ${((100 * (c3 - c2)) / PACED_S).toFixed(2)}%`);
    for (const id of ids) {
      await via.call('StopContainer', { container_id: id, timeout: 0 });
      await via.call('RemoveContainer', { container_id: id });
    }
    await via.call('StopPodSandbox', { pod_sandbox_id: pod });
    await via.call('RemovePodSandbox', { pod_sandbox_id: pod });
  } finally {
    via.close();
    if (proxy && proxy.exitCode === null) {
      proxy.kill('SIGTERM');
      await new Promise((r) => proxy!.once('exit', r));
    }
    await cd.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
