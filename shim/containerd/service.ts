import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  AlreadyExistsError, ExternalError, FailedPreconditionError, InvalidArgumentError, NotFoundError, errorMessage,
} from '../../common/errors.js';
import { log } from '../../common/log.js';
import type { Handler } from '../../common/ttrpc/index.js';
import { decode, encode, packMessage, toTimestamp, unpackAny } from './api.js';
import { Checkpointer } from './checkpoint.js';
import type { EventPublisher } from './events.js';
import type { ProcessHelper } from '../subreaper/index.js';
import { Runc, Stdio } from './runc.js';
import { containerCgroup, containerStats, specCgroupsPath } from './stats.js';
import { ProcessIO, StdioPaths } from './stdio.js';

const run = promisify(execFile);
export const SHIM_VERSION = '0.1.0';

/** Ids containerd accepts (identifiers.Validate), so they are safe in file names and helper requests. */
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$/;
const CONSOLE_DIR = '/run/ovmigrate/console';

interface Exit {
  status: number;
  at: Date;
}

/** The container's init or an exec'd process. */
class Proc {
  pid = 0;
  started = false;
  exit?: Exit;
  io?: ProcessIO;
  readonly exited: Promise<Exit>;
  private resolveExit!: (e: Exit) => void;

  constructor(readonly execId: string, readonly paths: StdioPaths, readonly spec?: Record<string, unknown>) {
    this.exited = new Promise((resolve) => { this.resolveExit = resolve; });
  }

  /** For the helper's terminal copy and for file names. */
  get key(): string {
    return this.execId || 'init';
  }

  finish(exit: Exit): void {
    this.exit = exit;
    this.resolveExit(exit);
  }
}

interface Container {
  id: string;
  bundle: string;
  /** linux.cgroupsPath of its config.json, read once at Create. */
  cgroupsPath: string;
  rootfsMounted: boolean;
  init: Proc;
  execs: Map<string, Proc>;
  /** Create with a checkpoint: the images Start restores from. */
  checkpoint?: string;
  runc: Runc;
}

/** A decoded request: proto field names, 64-bit integers as strings. */
type Req = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * containerd.task.v2.Task backed by runc: what containerd's runc shim does
 * for one container, with checkpoint sent out of the VM (checkpoint.ts).
 */
export class TaskService {
  private container?: Container;
  /** Exits the helper reported before we learnt the pid (runc returns after the process may already be gone). */
  private readonly unclaimedExits = new Map<number, Exit>();
  readonly checkpointer: Checkpointer;

  constructor(
    private readonly namespace: string,
    private readonly helper: ProcessHelper,
    private readonly events: EventPublisher,
    private readonly onShutdown: () => void,
  ) {
    this.checkpointer = new Checkpointer();
    helper.on('exit', (pid, status) => this.onExit(pid, { status, at: new Date() }));
  }

  /** Handlers for TtrpcServer.register(TASK_SERVICE, ...). */
  handlers(): Record<string, Handler> {
    const m = (req: string, res: string, fn: (r: Req) => Promise<Record<string, unknown>>): Handler =>
      async (payload) => encode(res, await fn(decode(req, payload)));
    const empty = 'google.protobuf.Empty';
    const t = (n: string) => `containerd.task.v2.${n}`;
    return {
      State: m(t('StateRequest'), t('StateResponse'), (r) => this.state(r)),
      Create: m(t('CreateTaskRequest'), t('CreateTaskResponse'), (r) => this.create(r)),
      Start: m(t('StartRequest'), t('StartResponse'), (r) => this.start(r)),
      Delete: m(t('DeleteRequest'), t('DeleteResponse'), (r) => this.delete(r)),
      Pids: m(t('PidsRequest'), t('PidsResponse'), (r) => this.pids(r)),
      Pause: m(t('PauseRequest'), empty, (r) => this.pause(r)),
      Resume: m(t('ResumeRequest'), empty, (r) => this.resume(r)),
      Checkpoint: m(t('CheckpointTaskRequest'), empty, (r) => this.checkpoint(r)),
      Kill: m(t('KillRequest'), empty, (r) => this.kill(r)),
      Exec: m(t('ExecProcessRequest'), empty, (r) => this.exec(r)),
      ResizePty: m(t('ResizePtyRequest'), empty, (r) => this.resizePty(r)),
      CloseIO: m(t('CloseIORequest'), empty, (r) => this.closeIO(r)),
      Update: m(t('UpdateTaskRequest'), empty, (r) => this.update(r)),
      Wait: m(t('WaitRequest'), t('WaitResponse'), (r) => this.wait(r)),
      Stats: m(t('StatsRequest'), t('StatsResponse'), (r) => this.stats(r)),
      Connect: m(t('ConnectRequest'), t('ConnectResponse'), (r) => this.connect(r)),
      Shutdown: m(t('ShutdownRequest'), empty, (r) => this.shutdown(r)),
    };
  }

  private get(id: string): Container {
    if (!this.container || this.container.id !== id) throw new NotFoundError(`container ${id} not found in this shim`);
    return this.container;
  }

  private proc(id: string, execId: string): Proc {
    const c = this.get(id);
    if (!execId) return c.init;
    const p = c.execs.get(execId);
    if (!p) throw new NotFoundError(`process ${execId} of container ${id} not found`);
    return p;
  }

  private onExit(pid: number, exit: Exit): void {
    const c = this.container;
    const proc = c && [c.init, ...c.execs.values()].find((p) => p.pid === pid && !p.exit);
    if (!proc) {
      this.unclaimedExits.set(pid, exit);
      return;
    }
    void this.exited(c, proc, exit);
  }

  /** A process is gone: its output is flushed, then TaskExit goes out and waiters wake. */
  private async exited(c: Container, proc: Proc, exit: Exit): Promise<void> {
    log.info(`${c.id}${proc.execId ? '/' + proc.execId : ''}: pid ${proc.pid} exited with status ${exit.status}`);
    await proc.io?.drained();
    this.events.publish('exit', {
      container_id: c.id, id: proc.execId || c.id, pid: proc.pid, exit_status: exit.status, exited_at: toTimestamp(exit.at),
    });
    proc.finish(exit);
  }

  /** The pid runc wrote, claimed against exits that may already have been reported. */
  private claimPid(c: Container, proc: Proc, pidFile: string): void {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new ExternalError(`runc wrote no pid to ${pidFile}`);
    proc.pid = pid;
    const early = this.unclaimedExits.get(pid);
    if (early) {
      this.unclaimedExits.delete(pid);
      void this.exited(c, proc, early);
    }
  }

  /**
   * Runs the runc command that starts a process (create, exec, restore) with the process's stdio, or with a
   * terminal from the helper when it has one; then gives the process its ends and claims its pid.
   */
  private async launch(c: Container, proc: Proc, pidFile: string, run: (consoleSocket: string | undefined, stdio: Stdio) => Promise<unknown>): Promise<void> {
    let socket: string | undefined;
    let ready: Promise<void> | undefined;
    if (proc.paths.terminal) {
      fs.mkdirSync(CONSOLE_DIR, { recursive: true, mode: 0o700 });
      socket = path.join(CONSOLE_DIR, `${crypto.randomBytes(8).toString('hex')}.sock`);
      ({ ready } = await this.helper.console(`${c.id}/${proc.key}`, socket, proc.paths.stdin, proc.paths.stdout));
    }
    await run(socket, proc.io!.runcStdio());
    await ready;
    proc.io!.closeTheirs();
    this.claimPid(c, proc, pidFile);
  }

  private async create(r: Req): Promise<Record<string, unknown>> {
    const id = String(r.id);
    if (!ID.test(id)) throw new InvalidArgumentError(`container id ${JSON.stringify(id)} is not valid`);
    if (this.container) throw new AlreadyExistsError(`this shim already runs container ${this.container.id}`);
    const bundle = path.resolve(String(r.bundle));
    const cgroupsPath = specCgroupsPath(bundle);
    const binary = runtimeBinary(r.options);
    const paths: StdioPaths = { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: !!r.terminal };
    const init = new Proc('', paths);
    const c: Container = {
      id, bundle, cgroupsPath, init, execs: new Map(), rootfsMounted: false, runc: new Runc(this.namespace, binary),
      checkpoint: r.checkpoint ? String(r.checkpoint) : undefined,
    };
    await mountRootfs(bundle, (r.rootfs ?? []) as Req[]);
    c.rootfsMounted = (r.rootfs ?? []).length > 0;
    try {
      init.io = await ProcessIO.open(this.helper, paths);
      this.container = c;
      if (!c.checkpoint) {
        const pidFile = path.join(bundle, 'init.pid');
        await this.launch(c, init, pidFile, (consoleSocket, stdio) => c.runc.create(id, { bundle, pidFile, consoleSocket, stdio }));
      }
    } catch (err) {
      init.io?.close();
      this.container = undefined;
      if (c.rootfsMounted) await unmount(path.join(bundle, 'rootfs'));
      throw err;
    }
    this.events.publish('create', {
      container_id: id, bundle, rootfs: r.rootfs ?? [], io: { stdin: paths.stdin, stdout: paths.stdout, stderr: paths.stderr, terminal: paths.terminal },
      checkpoint: c.checkpoint ?? '', pid: init.pid,
    });
    return { pid: init.pid };
  }

  private async start(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    const proc = this.proc(r.id, r.exec_id);
    if (proc.started) throw new FailedPreconditionError(`${proc.execId || c.id} is already started`);
    if (proc.execId) {
      const processFile = path.join(c.bundle, `exec-${proc.execId}.json`);
      const pidFile = path.join(c.bundle, `exec-${proc.execId}.pid`);
      fs.writeFileSync(processFile, JSON.stringify(proc.spec));
      await this.launch(c, proc, pidFile, (consoleSocket, stdio) => c.runc.exec(c.id, c.bundle, { processFile, pidFile, consoleSocket, stdio }));
      proc.started = true;
      this.events.publish('execStarted', { container_id: c.id, exec_id: proc.execId, pid: proc.pid });
    } else {
      const imagePath = c.checkpoint;
      if (imagePath) {
        const pidFile = path.join(c.bundle, 'init.pid');
        const workPath = path.join(c.bundle, 'restore-work');
        fs.mkdirSync(workPath, { recursive: true });
        log.info(`${c.id}: restoring from ${imagePath}`);
        await this.launch(c, proc, pidFile, (consoleSocket, stdio) =>
          c.runc.restore(c.id, { bundle: c.bundle, pidFile, imagePath, workPath, consoleSocket, stdio }));
      } else {
        await c.runc.start(c.id, c.bundle);
      }
      proc.started = true;
      this.events.publish('start', { container_id: c.id, pid: proc.pid });
    }
    return { pid: proc.pid };
  }

  private async delete(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    const proc = this.proc(r.id, r.exec_id);
    if (proc.started && !proc.exit) throw new FailedPreconditionError(`${proc.execId || c.id} is still running: kill it first`);
    const exit = proc.exit ?? { status: 0, at: new Date() };
    if (proc.execId) {
      c.execs.delete(proc.execId);
      proc.io?.close();
    } else {
      for (const e of c.execs.values()) e.io?.close();
      try {
        await c.runc.delete(c.id, !proc.started || !!c.checkpoint);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
      proc.io?.close();
      if (c.rootfsMounted) await unmount(path.join(c.bundle, 'rootfs'));
      this.events.publish('delete', { container_id: c.id, pid: proc.pid, exit_status: exit.status, exited_at: toTimestamp(exit.at), id: c.id });
      this.container = undefined;
    }
    return { pid: proc.pid, exit_status: exit.status, exited_at: toTimestamp(exit.at) };
  }

  private async state(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    const proc = this.proc(r.id, r.exec_id);
    let status = 1; // CREATED
    if (proc.exit) status = 3; // STOPPED
    else if (proc.started) {
      status = 2; // RUNNING
      if (!proc.execId) {
        const s = await c.runc.state(c.id).catch(() => undefined);
        if (s?.status === 'paused') status = 4;
      }
    }
    return {
      id: proc.execId || c.id, bundle: c.bundle, pid: proc.pid, status,
      stdin: proc.paths.stdin, stdout: proc.paths.stdout, stderr: proc.paths.stderr, terminal: proc.paths.terminal,
      exit_status: proc.exit?.status ?? 0, exited_at: proc.exit ? toTimestamp(proc.exit.at) : undefined, exec_id: proc.execId,
    };
  }

  private async pids(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    const pids = await c.runc.ps(c.id);
    return {
      processes: pids.map((pid) => {
        const exec = [...c.execs.values()].find((p) => p.pid === pid);
        return { pid, info: exec ? packMessage('containerd.runc.v1.ProcessDetails', { exec_id: exec.execId }) : undefined };
      }),
    };
  }

  private async pause(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    await c.runc.pause(c.id);
    this.events.publish('paused', { container_id: c.id });
    return {};
  }

  private async resume(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    await c.runc.resume(c.id);
    this.events.publish('resumed', { container_id: c.id });
    return {};
  }

  private async kill(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    const proc = this.proc(r.id, r.exec_id);
    const signal = Number(r.signal);
    if (proc.exit) throw new NotFoundError(`process ${proc.execId || c.id} already finished`);
    if (proc.execId) {
      if (!proc.pid) throw new FailedPreconditionError(`process ${proc.execId} is not started`);
      process.kill(proc.pid, signal);
    } else {
      await c.runc.kill(c.id, signal, !!r.all);
    }
    return {};
  }

  private async exec(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    const execId = String(r.exec_id);
    if (!ID.test(execId)) throw new InvalidArgumentError(`exec id ${JSON.stringify(execId)} is not valid`);
    if (c.execs.has(execId)) throw new AlreadyExistsError(`exec ${execId} already exists in container ${c.id}`);
    if (c.init.exit) throw new FailedPreconditionError(`container ${c.id} has stopped`);
    const spec = unpackAny(r.spec).message;
    const paths: StdioPaths = { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: !!r.terminal };
    const proc = new Proc(execId, paths, spec);
    proc.io = await ProcessIO.open(this.helper, paths);
    c.execs.set(execId, proc);
    this.events.publish('execAdded', { container_id: c.id, exec_id: execId });
    return {};
  }

  private async resizePty(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    const proc = this.proc(r.id, r.exec_id);
    if (!proc.paths.terminal) throw new FailedPreconditionError(`${proc.execId || c.id} has no terminal`);
    this.helper.resize(`${c.id}/${proc.key}`, Number(r.width), Number(r.height));
    return {};
  }

  private async closeIO(r: Req): Promise<Record<string, unknown>> {
    const proc = this.proc(r.id, r.exec_id);
    if (r.stdin) proc.io?.closeStdin();
    return {};
  }

  private async update(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    const resources = unpackAny(r.resources).message;
    const file = path.join(c.bundle, 'update-resources.json');
    fs.writeFileSync(file, JSON.stringify(resources));
    await c.runc.update(c.id, file);
    return {};
  }

  private async wait(r: Req): Promise<Record<string, unknown>> {
    const proc = this.proc(r.id, r.exec_id);
    const exit = await proc.exited;
    return { exit_status: exit.status, exited_at: toTimestamp(exit.at) };
  }

  private async stats(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    return { stats: containerStats(containerCgroup(c.cgroupsPath)) };
  }

  private async connect(r: Req): Promise<Record<string, unknown>> {
    const c = this.container;
    return { shim_pid: process.pid, task_pid: c && c.id === r.id ? c.init.pid : 0, version: SHIM_VERSION };
  }

  private async shutdown(r: Req): Promise<Record<string, unknown>> {
    log.debug(`shutdown asked (now: ${String(!!r.now)}, container: ${this.container?.id ?? 'none'})`);
    // containerd asks after each delete; a shim whose container still exists stays (upstream does the same).
    if (this.container && !r.now) return {};
    setImmediate(this.onShutdown);
    return {};
  }

  private async checkpoint(r: Req): Promise<Record<string, unknown>> {
    const c = this.get(r.id);
    if (!c.init.started || c.init.exit) throw new FailedPreconditionError(`container ${c.id} is not running`);
    const options = r.options?.type_url ? unpackAny(r.options).message : {};
    const target = String(options.image_path || r.path);
    if (!target) throw new InvalidArgumentError('checkpoint needs a path');
    await this.checkpointer.checkpoint({
      id: c.id, bundle: c.bundle, runc: c.runc, cgroup: containerCgroup(c.cgroupsPath), target, options,
    });
    this.events.publish('checkpointed', { container_id: c.id, checkpoint: target });
    return {};
  }
}

/** containerd's runc options (ctr --runc-binary and the like): only the binary matters here. */
function runtimeBinary(options: unknown): string {
  const o = options as { type_url?: string } | undefined;
  if (!o?.type_url) return 'runc';
  const { message } = unpackAny(o);
  return typeof message.binary_name === 'string' && message.binary_name ? message.binary_name : 'runc';
}

/** The rootfs mounts containerd hands over (an overlay of the image's layers), mounted at BUNDLE/rootfs. */
async function mountRootfs(bundle: string, mounts: Req[]): Promise<void> {
  if (mounts.length > 1) throw new InvalidArgumentError(`${mounts.length} rootfs mounts: this shim mounts one`);
  for (const m of mounts) {
    const target = path.join(bundle, 'rootfs');
    fs.mkdirSync(target, { recursive: true });
    const options = (m.options as string[]).join(',');
    try {
      await run('mount', ['-t', String(m.type), ...(options ? ['-o', options] : []), String(m.source), target]);
    } catch (err) {
      throw new ExternalError(`mounting the rootfs of ${bundle}: ${errorMessage(err)}`, { cause: err });
    }
  }
}

async function unmount(target: string): Promise<void> {
  try {
    await run('umount', [target]);
  } catch (err) {
    log.warn(`unmounting ${target}: ${errorMessage(err)}`);
  }
}
