import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SHIM_BIN } from '../lab/containerd.js';
import { criConfigLines } from '../lab/cri-config.js';


export interface HostContainerd {
  address: string;
  /** The containerd's own directory (config, log, root, state). */
  dir: string;
  /** The containerd namespace ctr works in (k8s.io with the CRI plugin: the CRI's own). */
  namespace: string;
  /** Where containerd keeps a task's bundle, by container id. */
  bundle(id: string): string;
  /** ctr in this containerd and the test's namespace; rejects on a non-zero exit with ctr's stderr. */
  ctr(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** Like ctr, but resolves with the exit code and output whatever they are. */
  ctrResult(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
  /**
   * Stops containerd (SIGTERM; its shims and containers live on), runs
   * `whileDown`, and starts it again on the same root, state and socket.
   */
  restart(whileDown?: () => Promise<void> | void): Promise<void>;
  stop(): Promise<void>;
}

/** Mount points below `dir`, deepest first (/proc/self/mountinfo escapes spaces as \\040). */
function mountsUnder(dir: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((line) => line.split(' ')[4]?.replace(/\\(\d{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((m): m is string => !!m && m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

export interface HostContainerdOptions {
  /**
   * Enable the CRI plugin (on containerd's own socket), its sandbox image
   * this reference (import it with ctr before the first RunPodSandbox). No
   * CNI is configured: pods must use the host's network namespace.
   */
  cri?: { sandboxImage: string };
}

/** The CRI plugin's config: runc with its own root, streaming on loopback. */
function criConfig(dir: string, sandboxImage: string): string[] {
  return criConfigLines({
    sandboxImage,
    runtimes: [{ name: 'runc', type: 'io.containerd.runc.v2', runcRoot: `${dir}/runc` }],
    cniDir: `${dir}/cni`,
  });
}

/**
 * A containerd of the test's own on this host (its own root, state and
 * socket; no CRI unless asked), with our shim on its PATH, in a namespace
 * that names the test run: runc state of other containerds is never touched.
 */
export async function startHostContainerd(label: string, opts: HostContainerdOptions = {}): Promise<HostContainerd> {
  const dir = fs.mkdtempSync(`/run/ovmigrate-test-${label}-`);
  const address = path.join(dir, 'containerd.sock');
  const namespace = opts.cri ? 'k8s.io' : `ovm-test-${process.pid}`;
  const bundle = (id: string) => path.join(dir, 'state', 'io.containerd.runtime.v2.task', namespace, id);
  fs.writeFileSync(path.join(dir, 'config.toml'), [
    'version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`,
    ...(opts.cri ? [] : ['disabled_plugins = ["io.containerd.grpc.v1.cri"]']),
    '[grpc]', `  address = "${address}"`,
    ...(opts.cri ? criConfig(dir, opts.cri.sandboxImage) : []), '',
  ].join('\n'));
  const spawnDaemon = (): ChildProcess => {
    const logFd = fs.openSync(path.join(dir, 'containerd.log'), 'a');
    const child = spawn('containerd', ['--log-level', 'debug', '--config', path.join(dir, 'config.toml')], {
      stdio: ['ignore', logFd, logFd], env: { ...process.env, PATH: `${SHIM_BIN}:${process.env.PATH}` },
    });
    fs.closeSync(logFd);
    return child;
  };
  const stopDaemon = async (child: ChildProcess) => {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));
  };
  let daemon = spawnDaemon();
  const ctrResult = (args: string[], opts: { input?: string; timeoutMs?: number } = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile('ctr', ['-a', address, '-n', namespace, ...args], { timeout: opts.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
      child.stdin!.end(opts.input ?? '');
    });
  const ctr = async (args: string[], opts?: { input?: string; timeoutMs?: number }) => {
    const r = await ctrResult(args, opts);
    if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const untilUp = async () => {
    for (let i = 0; ; i++) {
      if ((await ctrResult(['version'])).code === 0) break;
      if (i > 100 || daemon.exitCode !== null) throw new Error(`containerd did not start:\n${fs.readFileSync(path.join(dir, 'containerd.log'), 'utf8').slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  await untilUp();
  return {
    address, dir, namespace, bundle, ctr, ctrResult,
    async restart(whileDown) {
      // Containers and shims outlive the daemon, as under systemd's KillMode=process.
      await stopDaemon(daemon);
      await whileDown?.();
      daemon = spawnDaemon();
      await untilUp();
    },
    async stop() {
      // Whatever a failed test left: tasks killed, containers and images removed, then containerd stopped.
      for (const line of (await ctrResult(['task', 'ls', '-q'])).stdout.split('\n').filter(Boolean)) {
        await ctrResult(['task', 'kill', '-s', 'SIGKILL', line]);
        await ctrResult(['task', 'rm', '-f', line]);
      }
      for (const line of (await ctrResult(['container', 'ls', '-q'])).stdout.split('\n').filter(Boolean)) await ctrResult(['container', 'rm', line]);
      await stopDaemon(daemon);
      // A CRI sandbox left behind has its /dev/shm mounted in the state directory.
      if (opts.cri) for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
      spawn('umount', ['-R', path.join(dir, 'root')], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
