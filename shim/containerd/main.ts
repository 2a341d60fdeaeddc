/**
 * containerd-shim-ovmigrate-v1: containerd's runtime v2 shim for runtime
 * type io.containerd.ovmigrate.v1. Commands, as containerd runs them:
 *   start   start the shim server and print its ttrpc address
 *   delete  clean up after a shim that is gone (prints a DeleteResponse)
 *   (none)  serve containerd.task.v2.Task (started by start, under subreaper.py)
 * Flags: -namespace -address -publish-binary -id -bundle -socket -debug, -v, and -info
 * (containerd 2.x: the RuntimeInfo protobuf on stdout).
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import winston from 'winston';
import { InvalidArgumentError, OvmError, errorMessage } from '../../common/errors.js';
import { profileOnSignal } from '../../common/cpu-profile.js';
import { log } from '../../common/log.js';
import { TtrpcServer } from '../../common/ttrpc/index.js';
import { TASK_SERVICE, encode, toTimestamp } from './api.js';
import { backendPortPresent, connectBackend } from './checkpoint.js';
import { EventPublisher } from './events.js';
import { Freezer } from './freezer.js';
import { withoutStandIn } from '../criu-version/index.js';
import { HELPER_SCRIPT, ProcessHelper } from '../subreaper/index.js';
import { Runc } from './runc.js';
import { SHIM_VERSION, TaskService } from './service.js';
import { fifoOpensPending } from './stdio.js';
import type { DeleteResponse } from './task-messages.js';

const SOCKET_DIR = '/run/containerd/s';
const RUNTIME_TYPE = 'io.containerd.ovmigrate.v1';
const FLAGS = new Set(['namespace', 'address', 'publish-binary', 'id', 'bundle', 'socket']);

interface Flags {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  socket: string;
  debug: boolean;
  version: boolean;
  info: boolean;
  action: string;
}

/** Go's flag syntax, as containerd passes it: -name value, -name=value, -bool. */
function parseFlags(argv: string[]): Flags {
  const values = new Map<string, string>();
  let debug = false;
  let version = false;
  let info = false;
  let action = '';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-')) {
      action = arg;
      continue;
    }
    const [name, inline] = arg.replace(/^--?/, '').split(/=(.*)/s, 2);
    if (name === 'debug') debug = inline === undefined || inline === 'true';
    else if (name === 'v' || name === 'version') version = true;
    else if (name === 'info') info = true;
    else if (FLAGS.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new InvalidArgumentError(`flag -${name} needs a value`);
      values.set(name, value);
    } else throw new InvalidArgumentError(`unknown flag -${name}`);
  }
  return {
    namespace: values.get('namespace') ?? process.env.NAMESPACE ?? '',
    address: values.get('address') ?? '',
    publishBinary: values.get('publish-binary') ?? '',
    id: values.get('id') ?? '',
    bundle: values.get('bundle') ?? process.cwd(),
    socket: values.get('socket') ?? '',
    debug, version, info, action,
  };
}

/** containerd's ttrpc address: TTRPC_ADDRESS, or its gRPC address with .ttrpc. */
function ttrpcAddress(f: Flags): string {
  return process.env.TTRPC_ADDRESS ?? `${f.address}.ttrpc`;
}

/** A socket path per (containerd, namespace, id), as upstream's shim.SocketAddress derives one. */
function socketPath(f: Flags): string {
  const hash = crypto.createHash('sha256').update(path.join(f.address, f.namespace, f.id)).digest('hex');
  return path.join(SOCKET_DIR, hash);
}

function canConnect(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socket);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** start: launch the server (under the subreaper helper), wait until it listens, print its address. */
async function start(f: Flags): Promise<void> {
  if (!f.namespace || !f.id) throw new InvalidArgumentError('start needs -namespace and -id');
  const socket = socketPath(f);
  const address = `unix://${socket}`;
  if (await canConnect(socket)) {
    process.stdout.write(address);
    return;
  }
  fs.mkdirSync(SOCKET_DIR, { recursive: true, mode: 0o711 });
  fs.rmSync(socket, { force: true });
  const args = [HELPER_SCRIPT, process.execPath, __filename, '-namespace', f.namespace, '-id', f.id, '-address', f.address,
    '-publish-binary', f.publishBinary, '-socket', socket, ...(f.debug ? ['-debug'] : [])];
  // Not containerd's stderr: containerd reads start's output until every holder has closed it.
  const stderr = fs.openSync(path.join(process.cwd(), 'shim.stderr'), 'a');
  const child = spawn('python3', args, {
    cwd: process.cwd(),
    detached: true,
    stdio: ['ignore', 'pipe', stderr],
    // Stdin FIFOs are opened in the thread pool (an open waits for containerd's writer): room for several.
    env: { ...process.env, TTRPC_ADDRESS: ttrpcAddress(f), UV_THREADPOOL_SIZE: '16' },
  });
  const ready = await new Promise<string>((resolve) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => resolve(`exited ${code}`));
  });
  fs.closeSync(stderr);
  if (ready !== 'ready') {
    const said = fs.readFileSync(path.join(process.cwd(), 'shim.stderr'), 'utf8').trim().split('\n').slice(-5).join('\n');
    throw new OvmError(`the shim server did not start (${ready}): ${said}`);
  }
  child.stdout!.destroy();
  child.unref();
  fs.writeFileSync(path.join(process.cwd(), 'address'), address);
  process.stdout.write(address);
}

/** delete: the shim is gone; make sure runc's container is too, and say how it ended. */
async function cleanup(f: Flags): Promise<void> {
  const runc = new Runc(f.namespace);
  // A shim killed mid-checkpoint left the container frozen: thawed, so that nothing waits on it frozen.
  await Freezer.thawLeftover(runc, f.id, f.bundle).catch((err: unknown) => log.warn(`thawing ${f.id}: ${errorMessage(err)}`));
  // Paused by anyone else (containerd pauses a task around its checkpoint): runc delete --force of a frozen
  // container leaves its processes, its cgroup and its state behind.
  if ((await runc.state(f.id).catch(() => undefined))?.status === 'paused') {
    await runc.resume(f.id).catch((err: unknown) => log.warn(`resuming ${f.id} before deleting it: ${errorMessage(err)}`));
  }
  try {
    await runc.delete(f.id, true);
  } catch (err) {
    log.warn(`runc delete ${f.id}: ${errorMessage(err)}`);
  }
  const rootfs = path.join(f.bundle, 'rootfs');
  spawn('umount', [rootfs], { stdio: 'ignore' });
  const response: DeleteResponse = { pid: 0, exit_status: 128 + 9, exited_at: toTimestamp(new Date()) };
  process.stdout.write(encode('containerd.task.v2.DeleteResponse', response));
}

/** The bundle's log FIFO: containerd copies what the shim writes there into its own log. */
function logToFifo(bundle: string, debug: boolean): void {
  const fifo = path.join(bundle, 'log');
  if (!fs.existsSync(fifo)) return;
  // Read-write: opening does not wait for containerd's reader.
  const stream = fs.createWriteStream('', { fd: fs.openSync(fifo, fs.constants.O_RDWR) });
  log.clear();
  log.add(new winston.transports.Stream({ stream }));
  if (debug) log.level = 'debug';
}

async function serve(f: Flags): Promise<void> {
  if (!f.socket || !f.namespace || !f.id) throw new InvalidArgumentError('serving needs -socket, -namespace and -id (run the start command)');
  logToFifo(process.cwd(), f.debug);
  profileOnSignal('shim');
  const helper = ProcessHelper.attach();
  const events = new EventPublisher(ttrpcAddress(f), f.namespace);
  const server = new TtrpcServer();
  const thawLeftover = () => Freezer.thawLeftover(new Runc(f.namespace), f.id, process.cwd())
    .catch((err: unknown) => log.warn(`thawing ${f.id}: ${errorMessage(err)}`));
  const shutdown = async (): Promise<void> => {
    // A checkpoint still running when the shim goes must not leave its container frozen.
    await thawLeftover();
    // Events first (containerd waits for TaskDelete), bounded; then go, without waiting on clients to hang up.
    await Promise.race([events.flush(), new Promise((resolve) => setTimeout(resolve, 5000))]);
    void server.close();
    fs.rmSync(f.socket, { force: true });
    // exit() joins the thread pool: a FIFO open nobody will ever answer (its path gone) would hang it.
    if (fifoOpensPending()) process.kill(process.pid, 'SIGKILL');
    process.exit(0);
  };
  // A shim before this one in the bundle died mid-checkpoint.
  await thawLeftover();
  const service = new TaskService(f.namespace, helper, events, () => void shutdown());
  server.register(TASK_SERVICE, service.handlers());
  fs.rmSync(f.socket, { force: true });
  await server.listen(f.socket);
  process.on('SIGTERM', () => void shutdown());
  log.info(`shim ${SHIM_VERSION} for ${f.namespace}/${f.id} serving on ${f.socket}`);
  // The guest's relay to the backend is started now, so a checkpoint does not wait for a node to start.
  if (backendPortPresent()) {
    connectBackend().then((c) => c.close(), (err: unknown) => log.warn(`starting the backend relay: ${errorMessage(err)}`));
  }
  process.stdout.write('ready\n');
  // start has read that line and gone: nothing more goes to stdout.
  process.stdout.on('error', () => undefined);
}

async function main(): Promise<void> {
  // containerd's criu lookup may find the version-only stand-in on the PATH it gives shims; runc must not.
  const searchPath = withoutStandIn(process.env.PATH);
  if (searchPath !== undefined) process.env.PATH = searchPath;
  const f = parseFlags(process.argv.slice(2));
  if (f.version) {
    process.stdout.write(`containerd-shim-ovmigrate-v1:\n  Version: ${SHIM_VERSION}\n  Runtime: ${RUNTIME_TYPE}\n`);
    return;
  }
  if (f.info) {
    // containerd 2.x asks before creating a task, and caches only an answer: a failed one costs a node start each time.
    // No annotations: containerd mounts the rootfs for us (as for runc's shim); runtime options on stdin are not read.
    process.stdout.write(encode('containerd.types.RuntimeInfo', { name: RUNTIME_TYPE, version: { version: SHIM_VERSION } }));
    return;
  }
  if (f.action === 'start') return start(f);
  if (f.action === 'delete') return cleanup(f);
  if (f.action) throw new InvalidArgumentError(`unknown command ${f.action}: give start, delete, or none to serve`);
  return serve(f);
}

main().catch((err: unknown) => {
  log.error(errorMessage(err));
  process.stderr.write(`containerd-shim-ovmigrate-v1: ${errorMessage(err)}\n`);
  process.exit(1);
});
