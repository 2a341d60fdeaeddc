import { backendMethods } from '../../common/backend-api.js';
import { AlreadyExistsError, NotFoundError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { prepareCodecs } from '../../common/proto.js';
import { StatusCode, TtrpcError, statusMessageOf, statusOf, type Handler } from '../../common/ttrpc/index.js';
import { envelopeTypes } from '../../common/ttrpc/messages.js';
import type { ProcessHelper } from '../subreaper/index.js';
import { TASK_EVENT_TYPE_URLS, decode, encode, toTimestamp, type } from './api.js';
import { Checkpointer } from './checkpoint.js';
import { Container, checkId } from './container.js';
import type { EventPublisher } from './events.js';
import { ExitTracker } from './exits.js';
import type { Exit, TaskProcess } from './process.js';
import type * as M from './task-messages.js';

export const SHIM_VERSION = '0.1.0';

/**
 * The status a task method answers with for an error, the one place that
 * decides it (containerd's runc shim: errdefs.ToGRPC): the classes of
 * common/errors.ts as common/ttrpc maps them, and a signal to a process
 * that is gone (ESRCH) as NOT_FOUND, which containerd takes as "already
 * finished".
 */
export function taskError(err: unknown): TtrpcError {
  if (err instanceof TtrpcError) return err;
  const status = (err as NodeJS.ErrnoException | undefined)?.code === 'ESRCH' ? StatusCode.NOT_FOUND : statusOf(err);
  return new TtrpcError(status, statusMessageOf(err), { cause: err });
}

/** A Handler from a method of plain objects: decode, run, convert the error (taskError), encode. */
function adapt<Req, Res extends object>(request: string, response: string, fn: (r: Req) => Promise<Res>): Handler {
  return async (payload) => {
    const req = decode(request, payload) as unknown as Req;
    let res: Res;
    try {
      res = await fn(req);
    } catch (err) {
      throw taskError(err);
    }
    return encode(response, res);
  };
}

const EMPTY = 'google.protobuf.Empty';
const t = (name: string): string => `containerd.task.v2.${name}`;

/** The messages of a checkpoint's calls (containerd's or ovmigrate-cri's), its events and the backend's calls. */
const CHECKPOINT_TYPES = [t('PauseRequest'), t('ResumeRequest'), t('CheckpointTaskRequest'), t('StateRequest'), t('StateResponse'), EMPTY,
  'containerd.runc.v1.CheckpointOptions', 'containerd.services.events.ttrpc.v1.ForwardRequest',
  TASK_EVENT_TYPE_URLS.paused, TASK_EVENT_TYPE_URLS.resumed, TASK_EVENT_TYPE_URLS.checkpointed];

/** How long after its container starts a shim generates the checkpoint path's codecs: out of the start's way. */
const WARM_AFTER_START_MS = 2000;

/**
 * Has protobufjs generate the checkpoint path's codecs now: it generates a
 * type's on its first use, which under TCG would cost a first checkpoint
 * guest CPU, much of it while the container is frozen.
 */
export function warmCheckpointCodecs(): void {
  for (const name of CHECKPOINT_TYPES) prepareCodecs(type(name));
  for (const m of Object.values(backendMethods())) for (const x of [m.requestType, m.responseType]) prepareCodecs(x);
  for (const x of envelopeTypes()) prepareCodecs(x);
}

/**
 * containerd.task.v2.Task for one container, over runc (container.ts),
 * with checkpoint sent out of the VM (checkpoint.ts). Each method finds the
 * container or process, delegates, and publishes the event containerd
 * expects; adapt converts errors.
 */
export class TaskService {
  private container?: Container;
  readonly checkpointer = new Checkpointer();
  private readonly exits: ExitTracker;

  constructor(
    private readonly namespace: string,
    private readonly helper: ProcessHelper,
    private readonly events: EventPublisher,
    private readonly onShutdown: () => void,
  ) {
    this.exits = new ExitTracker(helper, (proc, exit) => this.exited(proc, exit));
  }

  /** Handlers for TtrpcServer.register(TASK_SERVICE, ...). */
  handlers(): Record<string, Handler> {
    return {
      State: adapt(t('StateRequest'), t('StateResponse'), (r: M.StateRequest) => this.state(r)),
      Create: adapt(t('CreateTaskRequest'), t('CreateTaskResponse'), (r: M.CreateTaskRequest) => this.create(r)),
      Start: adapt(t('StartRequest'), t('StartResponse'), (r: M.StartRequest) => this.start(r)),
      Delete: adapt(t('DeleteRequest'), t('DeleteResponse'), (r: M.DeleteRequest) => this.delete(r)),
      Pids: adapt(t('PidsRequest'), t('PidsResponse'), (r: M.PidsRequest) => this.pids(r)),
      Pause: adapt(t('PauseRequest'), EMPTY, (r: M.PauseRequest) => this.pause(r)),
      Resume: adapt(t('ResumeRequest'), EMPTY, (r: M.ResumeRequest) => this.resume(r)),
      Checkpoint: adapt(t('CheckpointTaskRequest'), EMPTY, (r: M.CheckpointTaskRequest) => this.checkpoint(r)),
      Kill: adapt(t('KillRequest'), EMPTY, (r: M.KillRequest) => this.kill(r)),
      Exec: adapt(t('ExecProcessRequest'), EMPTY, (r: M.ExecProcessRequest) => this.exec(r)),
      ResizePty: adapt(t('ResizePtyRequest'), EMPTY, (r: M.ResizePtyRequest) => this.resizePty(r)),
      CloseIO: adapt(t('CloseIORequest'), EMPTY, (r: M.CloseIORequest) => this.closeIO(r)),
      Update: adapt(t('UpdateTaskRequest'), EMPTY, (r: M.UpdateTaskRequest) => this.update(r)),
      Wait: adapt(t('WaitRequest'), t('WaitResponse'), (r: M.WaitRequest) => this.wait(r)),
      Stats: adapt(t('StatsRequest'), t('StatsResponse'), (r: M.StatsRequest) => this.stats(r)),
      Connect: adapt(t('ConnectRequest'), t('ConnectResponse'), (r: M.ConnectRequest) => this.connect(r)),
      Shutdown: adapt(t('ShutdownRequest'), EMPTY, (r: M.ShutdownRequest) => this.shutdown(r)),
    };
  }

  private find(id: string): Container {
    if (!this.container || this.container.id !== id) throw new NotFoundError(`container ${id} not found in this shim`);
    return this.container;
  }

  private findProcess(r: M.ProcessRequest): [Container, TaskProcess] {
    const c = this.find(r.id);
    return [c, c.process(r.exec_id)];
  }

  /** A process is gone (its output flushed): TaskExit goes out before its waiters wake. */
  private exited(proc: TaskProcess, exit: Exit): void {
    log.info(`${proc.containerId}${proc.execId ? '/' + proc.execId : ''}: pid ${proc.pid} exited with status ${exit.status}`);
    this.events.publish('exit', {
      container_id: proc.containerId, id: proc.name, pid: proc.pid, exit_status: exit.status, exited_at: toTimestamp(exit.at),
    });
  }

  private async create(r: M.CreateTaskRequest): Promise<M.CreateTaskResponse> {
    checkId('container', r.id);
    if (this.container) throw new AlreadyExistsError(`this shim already runs container ${this.container.id}`);
    const c = await Container.create(r, { namespace: this.namespace, helper: this.helper, exits: this.exits });
    this.container = c;
    const { paths } = c.init;
    this.events.publish('create', {
      container_id: c.id, bundle: c.bundle, rootfs: r.rootfs,
      io: { stdin: paths.stdin, stdout: paths.stdout, stderr: paths.stderr, terminal: paths.terminal },
      checkpoint: c.checkpoint ?? '', pid: c.init.pid,
    });
    return { pid: c.init.pid };
  }

  private async start(r: M.StartRequest): Promise<M.StartResponse> {
    const [c, proc] = this.findProcess(r);
    await c.start(proc);
    if (!proc.isInit) {
      this.events.publish('execStarted', { container_id: c.id, exec_id: proc.execId, pid: proc.pid });
      return { pid: proc.pid };
    }
    this.events.publish('start', { container_id: c.id, pid: proc.pid });
    setTimeout(() => {
      try {
        warmCheckpointCodecs();
      } catch (err) {
        log.warn(`generating the checkpoint path's codecs: ${errorMessage(err)}`);
      }
    }, WARM_AFTER_START_MS).unref();
    return { pid: proc.pid };
  }

  private async delete(r: M.DeleteRequest): Promise<M.DeleteResponse> {
    const [c, proc] = this.findProcess(r);
    const exit = await c.delete(proc);
    if (proc.isInit) {
      this.events.publish('delete', { container_id: c.id, pid: proc.pid, exit_status: exit.status, exited_at: toTimestamp(exit.at), id: c.id });
      this.container = undefined;
    }
    return { pid: proc.pid, exit_status: exit.status, exited_at: toTimestamp(exit.at) };
  }

  private async state(r: M.StateRequest): Promise<M.StateResponse> {
    const [c, proc] = this.findProcess(r);
    const { paths } = proc;
    return {
      id: proc.name, bundle: c.bundle, pid: proc.pid, status: await c.status(proc),
      stdin: paths.stdin, stdout: paths.stdout, stderr: paths.stderr, terminal: paths.terminal,
      exit_status: proc.exit?.status ?? 0, exited_at: proc.exit ? toTimestamp(proc.exit.at) : undefined, exec_id: proc.execId,
    };
  }

  private async pids(r: M.PidsRequest): Promise<M.PidsResponse> {
    return { processes: await this.find(r.id).pids() };
  }

  private async pause(r: M.PauseRequest): Promise<M.Empty> {
    const c = this.find(r.id);
    await c.pause();
    this.events.publish('paused', { container_id: c.id });
    return {};
  }

  private async resume(r: M.ResumeRequest): Promise<M.Empty> {
    const c = this.find(r.id);
    await c.resume();
    this.events.publish('resumed', { container_id: c.id });
    return {};
  }

  private async kill(r: M.KillRequest): Promise<M.Empty> {
    const [c, proc] = this.findProcess(r);
    await c.kill(proc, r.signal, r.all);
    return {};
  }

  private async exec(r: M.ExecProcessRequest): Promise<M.Empty> {
    const c = this.find(r.id);
    const proc = await c.exec(r);
    this.events.publish('execAdded', { container_id: c.id, exec_id: proc.execId });
    return {};
  }

  private async resizePty(r: M.ResizePtyRequest): Promise<M.Empty> {
    const [c, proc] = this.findProcess(r);
    c.resizePty(proc, r.width, r.height);
    return {};
  }

  private async closeIO(r: M.CloseIORequest): Promise<M.Empty> {
    const [c, proc] = this.findProcess(r);
    if (r.stdin) c.closeStdin(proc);
    return {};
  }

  private async update(r: M.UpdateTaskRequest): Promise<M.Empty> {
    await this.find(r.id).update(r.resources);
    return {};
  }

  private async wait(r: M.WaitRequest): Promise<M.WaitResponse> {
    const [, proc] = this.findProcess(r);
    const exit = await proc.exited;
    return { exit_status: exit.status, exited_at: toTimestamp(exit.at) };
  }

  private async stats(r: M.StatsRequest): Promise<M.StatsResponse> {
    return { stats: this.find(r.id).stats() };
  }

  private async connect(r: M.ConnectRequest): Promise<M.ConnectResponse> {
    const c = this.container;
    return { shim_pid: process.pid, task_pid: c && c.id === r.id ? c.init.pid : 0, version: SHIM_VERSION };
  }

  private async shutdown(r: M.ShutdownRequest): Promise<M.Empty> {
    log.debug(`shutdown asked (now: ${String(r.now)}, container: ${this.container?.id ?? 'none'})`);
    // containerd asks after each delete; a shim whose container still exists stays (upstream does the same).
    if (this.container && !r.now) return {};
    setImmediate(this.onShutdown);
    return {};
  }

  private async checkpoint(r: M.CheckpointTaskRequest): Promise<M.Empty> {
    const c = this.find(r.id);
    const target = await c.checkpointTo(this.checkpointer, r);
    this.events.publish('checkpointed', { container_id: c.id, checkpoint: target });
    return {};
  }
}
