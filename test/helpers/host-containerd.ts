import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SHIM_BIN } from '../lab/containerd.js';


export interface HostContainerd {
  address: string;
  /** Where containerd keeps a task's bundle, by container id. */
  bundle(id: string): string;
  /** ctr in this containerd and the test's namespace; rejects on a non-zero exit with ctr's stderr. */
  ctr(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** Like ctr, but resolves with the exit code and output whatever they are. */
  ctrResult(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/**
 * A containerd of the test's own on this host (its own root, state and
 * socket; no CRI), with our shim on its PATH, in a namespace that names the
 * test run: runc state of other containerds is never touched.
 */
export async function startHostContainerd(label: string): Promise<HostContainerd> {
  const dir = fs.mkdtempSync(`/run/ovmigrate-test-${label}-`);
  const address = path.join(dir, 'containerd.sock');
  const namespace = `ovm-test-${process.pid}`;
  const bundle = (id: string) => path.join(dir, 'state', 'io.containerd.runtime.v2.task', namespace, id);
  fs.writeFileSync(path.join(dir, 'config.toml'), [
    'version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]', `  address = "${address}"`, '',
  ].join('\n'));
  const logFd = fs.openSync(path.join(dir, 'containerd.log'), 'a');
  const daemon: ChildProcess = spawn('containerd', ['--log-level', 'debug', '--config', path.join(dir, 'config.toml')], {
    stdio: ['ignore', logFd, logFd], env: { ...process.env, PATH: `${SHIM_BIN}:${process.env.PATH}` },
  });
  fs.closeSync(logFd);
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
  for (let i = 0; ; i++) {
    if ((await ctrResult(['version'])).code === 0) break;
    if (i > 100 || daemon.exitCode !== null) throw new Error(`containerd did not start:\n${fs.readFileSync(path.join(dir, 'containerd.log'), 'utf8').slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    address, bundle, ctr, ctrResult,
    async stop() {
      // Whatever a failed test left: tasks killed, containers and images removed, then containerd stopped.
      for (const line of (await ctrResult(['task', 'ls', '-q'])).stdout.split('\n').filter(Boolean)) {
        await ctrResult(['task', 'kill', '-s', 'SIGKILL', line]);
        await ctrResult(['task', 'rm', '-f', line]);
      }
      for (const line of (await ctrResult(['container', 'ls', '-q'])).stdout.split('\n').filter(Boolean)) await ctrResult(['container', 'rm', line]);
      daemon.kill('SIGTERM');
      await new Promise((resolve) => (daemon.exitCode !== null ? resolve(null) : daemon.once('exit', resolve)));
      spawn('umount', ['-R', path.join(dir, 'root')], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
