import fs from 'node:fs';
import path from 'node:path';
import {
  AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError, errorMessage,
} from '../../common/errors.js';
import { log } from '../../common/log.js';
import type { ProcessHelper } from '../subreaper/index.js';
import { AnyMessage, OVMIGRATE_ARCHIVE_OPTIONS, packMessage, unpackAny } from './api.js';
import { checkArchiveOptions } from './archive-checkpoint.js';
import { bundleRestore, prepareBundleRestore } from './bundle-restore.js';
import type { Checkpointer, CheckpointOptions } from './checkpoint.js';
import type { ExitTracker } from './exits.js';
import { CgroupFreeze } from './cgroup-freeze.js';
import { Freezer } from './freezer.js';
import { launch } from './launch.js';
import { Exit, TaskProcess } from './process.js';
import { mountRootfs, unmountRootfs } from './rootfs.js';
import { Runc } from './runc.js';
import { containerCgroup, containerStats, specCgroupsPath } from './stats.js';
import { ProcessIO, StdioPaths } from './stdio.js';
import {
  CheckpointTaskRequest, CreateTaskRequest, ExecProcessRequest, ProcessInfo, TaskStatus,
} from './task-messages.js';

/** Ids containerd accepts (identifiers.Validate), so they are safe in file names and helper requests. */
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$/;

/** Refuses an id containerd would not give (container or exec id). */
export function checkId(what: 'container' | 'exec', id: string): void {
  if (!ID.test(id)) throw new InvalidArgumentError(`${what} id ${JSON.stringify(id)} is not valid`);
}

/** What a container needs of the shim around it. */
export interface ContainerContext {
  namespace: string;
  helper: ProcessHelper;
  exits: ExitTracker;
}

/**
 * One container and its processes, over runc: what containerd's runc shim
 * keeps in runc/container.go. Methods do the work and throw the errors
 * of common/errors.ts; the task service turns them into statuses.
 */
export class Container {
  readonly execs = new Map<string, TaskProcess>();
  private rootfsMounted = false;
  /** Checkpoint, Pause, Resume, Kill and Delete take turns through it. */
  readonly freezer: Freezer;

  private constructor(
    private readonly ctx: ContainerContext,
    readonly id: string,
    readonly bundle: string,
    /** linux.cgroupsPath of its config.json, read once at Create. */
    readonly cgroupsPath: string,
    readonly init: TaskProcess,
    readonly runc: Runc,
    /** Create with a checkpoint: the images Start restores from. */
    readonly checkpoint: string | undefined,
  ) {
    // Freezing through the cgroup's files: a runc run per Pause and Resume is seconds of guest CPU under TCG.
    this.freezer = new Freezer(new CgroupFreeze(runc, freezerCgroup(cgroupsPath)), id, bundle);
  }

  /**
   * Mounts the rootfs, opens the init's stdio and runs runc create (a restore
   * waits for Start; ovmigrate-cri's puts the checkpoint's rw changes on the rootfs first).
   */
  static async create(req: CreateTaskRequest, ctx: ContainerContext): Promise<Container> {
    checkId('container', req.id);
    const bundle = path.resolve(req.bundle);
    const cgroupsPath = specCgroupsPath(bundle);
    const runc = new Runc(ctx.namespace, runtimeBinary(req.options));
    const init = new TaskProcess(req.id, '', stdioPaths(req));
    // containerd's own checkpoint (ctr container restore, 2.x restore via create) wins over ovmigrate-cri's annotation.
    const restore = req.checkpoint ? undefined : bundleRestore(bundle);
    const c = new Container(ctx, req.id, bundle, cgroupsPath, init, runc, req.checkpoint || restore?.images);
    c.rootfsMounted = await mountRootfs(bundle, req.rootfs);
    try {
      if (restore) await prepareBundleRestore(restore, bundle);
      init.io = await ProcessIO.open(ctx.helper, init.paths);
      if (!c.checkpoint) {
        const pidFile = path.join(bundle, 'init.pid');
        await launch(ctx.helper, ctx.exits, c.id, init, pidFile, (consoleSocket, stdio) => runc.create(c.id, { bundle, pidFile, consoleSocket, stdio }));
      }
    } catch (err) {
      init.io?.close();
      ctx.exits.forget(init);
      if (c.rootfsMounted) await unmountRootfs(bundle);
      throw err;
    }
    return c;
  }

  /** The init for exec id "", else that exec. */
  process(execId: string): TaskProcess {
    if (!execId) return this.init;
    const p = this.execs.get(execId);
    if (!p) throw new NotFoundError(`process ${execId} of container ${this.id} not found`);
    return p;
  }

  /** Starts a process Create or Exec made: runc exec, restore or start. */
  async start(proc: TaskProcess): Promise<void> {
    if (proc.started) throw new FailedPreconditionError(`${proc.name} is already started`);
    const { helper, exits } = this.ctx;
    if (!proc.isInit) {
      const processFile = path.join(this.bundle, `exec-${proc.execId}.json`);
      const pidFile = path.join(this.bundle, `exec-${proc.execId}.pid`);
      fs.writeFileSync(processFile, JSON.stringify(proc.spec));
      await launch(helper, exits, this.id, proc, pidFile, (consoleSocket, stdio) =>
        this.runc.exec(this.id, this.bundle, { processFile, pidFile, consoleSocket, stdio }));
    } else if (this.checkpoint) {
      const imagePath = this.checkpoint;
      const pidFile = path.join(this.bundle, 'init.pid');
      const workPath = path.join(this.bundle, 'restore-work');
      fs.mkdirSync(workPath, { recursive: true });
      log.info(`${this.id}: restoring from ${imagePath}`);
      await launch(helper, exits, this.id, proc, pidFile, (consoleSocket, stdio) =>
        this.runc.restore(this.id, { bundle: this.bundle, pidFile, imagePath, workPath, consoleSocket, stdio }));
    } else {
      await this.runc.start(this.id, this.bundle);
    }
    proc.started = true;
  }

  /**
   * Deletes a process that has exited or never started, and with the init
   * the container (runc's state, the rootfs mount, every exec's stdio).
   * How it ended; one never started counts as status 0, now.
   */
  delete(proc: TaskProcess): Promise<Exit> {
    return this.freezer.exclusive(() => this.deleteNow(proc));
  }

  private async deleteNow(proc: TaskProcess): Promise<Exit> {
    if (proc.started && !proc.exit) throw new FailedPreconditionError(`${proc.name} is still running: kill it first`);
    const exit = proc.exit ?? { status: 0, at: new Date() };
    if (!proc.isInit) {
      this.execs.delete(proc.execId);
      this.ctx.exits.forget(proc);
      proc.io?.close();
      return exit;
    }
    for (const e of this.execs.values()) {
      e.io?.close();
      this.ctx.exits.forget(e);
    }
    // A checkpoint whose thaw failed left its marker: thaw before runc forgets the container.
    await Freezer.thawLeftover(this.runc, this.id, this.bundle).catch((e: unknown) => log.warn(`${this.id}: ${errorMessage(e)}`));
    try {
      await this.runc.delete(this.id, !proc.started || !!this.checkpoint);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    proc.io?.close();
    this.ctx.exits.forget(proc);
    if (this.rootfsMounted) await unmountRootfs(this.bundle);
    return exit;
  }

  async status(proc: TaskProcess): Promise<TaskStatus> {
    const status = proc.status;
    if (status !== TaskStatus.RUNNING || !proc.isInit) return status;
    // containerd (the CRI's sandbox lookups) gives State 2 s: on cgroup v2 the freezer's file answers without a runc run.
    const frozen = await Promise.resolve()
      .then(() => fs.promises.readFile(path.join('/sys/fs/cgroup', containerCgroup(this.cgroupsPath), 'cgroup.freeze'), 'utf8'))
      .catch(() => undefined);
    if (frozen !== undefined) return frozen.trim() === '1' ? TaskStatus.PAUSED : status;
    const s = await this.runc.state(this.id).catch(() => undefined);
    return s?.status === 'paused' ? TaskStatus.PAUSED : status;
  }

  /** The container's pids, an exec's with its exec id (as containerd.runc.v1.ProcessDetails). */
  async pids(): Promise<ProcessInfo[]> {
    const pids = await this.runc.ps(this.id);
    return pids.map((pid) => {
      const exec = [...this.execs.values()].find((p) => p.pid === pid);
      return { pid, info: exec ? packMessage('containerd.runc.v1.ProcessDetails', { exec_id: exec.execId }) : undefined };
    });
  }

  pause(): Promise<void> {
    return this.freezer.pause();
  }

  resume(): Promise<void> {
    return this.freezer.resume();
  }

  kill(proc: TaskProcess, signal: number, all: boolean): Promise<void> {
    return this.freezer.exclusive(() => this.killNow(proc, signal, all));
  }

  private async killNow(proc: TaskProcess, signal: number, all: boolean): Promise<void> {
    if (proc.exit) throw new NotFoundError(`process ${proc.name} already finished`);
    if (proc.isInit) {
      await this.runc.kill(this.id, signal, all);
      return;
    }
    if (!proc.pid) throw new FailedPreconditionError(`process ${proc.execId} is not started`);
    process.kill(proc.pid, signal);
  }

  /** Adds an exec'd process (runc exec runs at its Start), its stdio open already. */
  async exec(req: ExecProcessRequest): Promise<TaskProcess> {
    const execId = req.exec_id;
    checkId('exec', execId);
    if (this.execs.has(execId)) throw new AlreadyExistsError(`exec ${execId} already exists in container ${this.id}`);
    if (this.init.exit) throw new FailedPreconditionError(`container ${this.id} has stopped`);
    const spec = unpackAny(req.spec).message;
    const proc = new TaskProcess(this.id, execId, stdioPaths(req), spec);
    proc.io = await ProcessIO.open(this.ctx.helper, proc.paths);
    this.execs.set(execId, proc);
    return proc;
  }

  resizePty(proc: TaskProcess, width: number, height: number): void {
    if (!proc.paths.terminal) throw new FailedPreconditionError(`${proc.name} has no terminal`);
    this.ctx.helper.resize(`${this.id}/${proc.key}`, width, height);
  }

  closeStdin(proc: TaskProcess): void {
    proc.io?.closeStdin();
  }

  /** runc update with the LinuxResources containerd packs as JSON. */
  async update(resources: AnyMessage | null): Promise<void> {
    const file = path.join(this.bundle, 'update-resources.json');
    fs.writeFileSync(file, JSON.stringify(unpackAny(resources).message));
    await this.runc.update(this.id, file);
  }

  stats(): AnyMessage {
    return containerStats(containerCgroup(this.cgroupsPath));
  }

  /** Checkpoints the running container where containerd asks (runc's image_path option, else the request's path); the target. */
  async checkpointTo(checkpointer: Checkpointer, req: CheckpointTaskRequest): Promise<string> {
    if (!this.init.started || this.init.exit) throw new FailedPreconditionError(`container ${this.id} is not running`);
    const options = checkpointRequestOptions(req);
    const target = String(options.image_path || req.path);
    if (!target) throw new InvalidArgumentError('checkpoint needs a path');
    await checkpointer.checkpoint({
      id: this.id, bundle: this.bundle, runc: this.runc, cgroup: containerCgroup(this.cgroupsPath), target, options, freezer: this.freezer,
    });
    return target;
  }
}

/** The container's cgroup v2 directory, when its cgroupsPath is a cgroupfs one (runc freezes a systemd slice's itself). */
function freezerCgroup(cgroupsPath: string): string | undefined {
  return cgroupsPath.startsWith('/') ? path.join('/sys/fs/cgroup', containerCgroup(cgroupsPath)) : undefined;
}

function stdioPaths(req: { stdin: string; stdout: string; stderr: string; terminal: boolean }): StdioPaths {
  return { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal };
}

/** containerd's runc options (ctr --runc-binary and the like): only the binary matters here. */
function runtimeBinary(options: AnyMessage | null): string {
  if (!options?.type_url) return 'runc';
  const { message } = unpackAny(options);
  return typeof message.binary_name === 'string' && message.binary_name ? message.binary_name : 'runc';
}

/** A CheckpointTaskRequest's options: runc's (containerd's CheckpointOptions, image_path among them) or ours from the CRI layer (an archive the host writes). */
export function checkpointRequestOptions(req: Pick<CheckpointTaskRequest, 'options'>): CheckpointOptions & { image_path?: string } {
  const any = req.options?.type_url ? unpackAny(req.options) : undefined;
  return (any?.typeUrl === OVMIGRATE_ARCHIVE_OPTIONS ? { archive: checkArchiveOptions(any.message) } : any?.message ?? {}) as CheckpointOptions & { image_path?: string };
}
