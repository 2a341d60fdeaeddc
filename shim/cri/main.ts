/**
 * ovmigrate-cri: the guest's CRI endpoint for the kubelet and crictl. It
 * serves CRI runtime.v1 on a unix socket and forwards every call to
 * containerd's CRI socket (see proxy.ts), except CheckpointContainer of our
 * runtime's containers (checkpoint-container.ts), and CreateContainer from a
 * checkpoint archive or image and RemoveContainer of what it made (restore.ts).
 * At start it resumes what a killed predecessor left paused (pause-guard.ts).
 *
 *   ovmigrate-cri [--listen /run/ovmigrate/cri.sock] [--containerd /run/containerd/containerd.sock] [--containerd-state /run/containerd]
 *                 [--checkpoint-notes /run/ovmigrate/cri-checkpoints]
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Command, InvalidArgumentError as CommanderArgumentError, Option } from 'commander';
import { AlreadyExistsError, errorMessage } from '../../common/errors.js';
import { profileOnSignal } from '../../common/cpu-profile.js';
import { log, setLogLevel } from '../../common/log.js';
import { checkpointContainer, warmCheckpointCodecs } from './checkpoint-container.js';
import { ContainerdCheckpointImages } from './checkpoint-image.js';
import { methodPath } from './methods.js';
import { CHECKPOINT_NOTES, PauseGuard } from './pause-guard.js';
import { CriProxy, type Intercepts } from './proxy.js';
import { CriRestore } from './restore.js';
import { opaqueDirLister } from './rootfs-diff.js';
import { CONTAINERD_STATE } from './shim-task.js';
import { Upstream } from './upstream.js';

export const DEFAULT_LISTEN = '/run/ovmigrate/cri.sock';
export const DEFAULT_CONTAINERD = '/run/containerd/containerd.sock';

/** A socket file left by a proxy that is gone is removed; one that answers is another proxy's. */
async function clearStaleSocket(socket: string): Promise<void> {
  if (!fs.existsSync(socket)) return;
  if (!fs.lstatSync(socket).isSocket()) throw new AlreadyExistsError(`${socket} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const conn = net.connect(socket);
    conn.once('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.once('error', () => resolve(false));
  });
  if (live) throw new AlreadyExistsError(`${socket}: something already serves there`);
  fs.rmSync(socket, { force: true });
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new CommanderArgumentError('a number of seconds');
  return n;
}

interface Options {
  listen: string;
  containerd: string;
  connectTimeout: number;
  containerdState: string;
  checkpointNotes: string;
  logLevel: string;
}

async function serve(o: Options): Promise<void> {
  profileOnSignal('cri');
  const listen = path.resolve(o.listen);
  fs.mkdirSync(path.dirname(listen), { recursive: true, mode: 0o700 });
  await clearStaleSocket(listen);
  // Before serving: containers a killed predecessor paused for a checkpoint are resumed, its staging removed.
  const guard = new PauseGuard(path.resolve(o.checkpointNotes));
  await guard.recover();
  const upstream = new Upstream(path.resolve(o.containerd), { connectTimeoutMs: o.connectTimeout * 1000 });
  const restore = new CriRestore(upstream, { checkpointImage: new ContainerdCheckpointImages(upstream) });
  const intercepts: Intercepts = new Map([
    [methodPath({ service: 'RuntimeService', name: 'CheckpointContainer', streaming: 'unary' }), checkpointContainer(upstream, { containerdState: o.containerdState, guard })],
    ...restore.intercepts(),
  ]);
  const proxy = new CriProxy(upstream, intercepts);
  await proxy.listen(listen);
  // What a container's first checkpoint would pay otherwise (under TCG, seconds): one python for the rw layer's
  // opaque directories, and the CRI codecs; once serving, so the kubelet does not wait for them.
  opaqueDirLister.start();
  setImmediate(() => {
    try {
      warmCheckpointCodecs();
    } catch (err) {
      log.warn(`cri: preparing the checkpoint's CRI codecs: ${errorMessage(err)}`);
    }
  });
  fs.chmodSync(listen, 0o600);
  log.info(`cri: serving CRI runtime.v1 on ${listen}, forwarding to ${o.containerd}`);
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => {
      log.info(`cri: ${signal}: stopping`);
      resolve();
    });
  });
  await proxy.close();
  upstream.close();
  fs.rmSync(listen, { force: true });
}

const program = new Command('ovmigrate-cri')
  .description("the guest's CRI runtime endpoint: forwards CRI runtime.v1 to containerd, intercepting checkpoint and restore")
  .option('--listen <socket>', 'the unix socket to serve (the kubelet\'s --container-runtime-endpoint)', DEFAULT_LISTEN)
  .option('--containerd <socket>', "containerd's CRI socket", DEFAULT_CONTAINERD)
  .option('--connect-timeout <seconds>', 'how long a call waits for containerd to come back (within its deadline) before failing UNAVAILABLE', seconds, 10)
  .option('--containerd-state <dir>', "containerd's state directory (its task bundles)", CONTAINERD_STATE)
  .option('--checkpoint-notes <dir>', 'where each checkpoint underway is noted, for the next start to resume what a killed one paused', CHECKPOINT_NOTES)
  .addOption(new Option('--log-level <level>', 'winston log level').choices(['error', 'warn', 'info', 'debug']).default('info'))
  .action(async (o: Options) => {
    setLogLevel(o.logLevel);
    await serve(o);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`ovmigrate-cri: ${errorMessage(err)}\n`);
  process.exitCode = 1;
});
