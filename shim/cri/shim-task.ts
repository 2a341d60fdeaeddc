import fs from 'node:fs';
import path from 'node:path';
import { BadDataError, NotFoundError } from '../../common/errors.js';
import { TtrpcClient, TypedMethod } from '../../common/ttrpc/index.js';
import { type AnyMessage, OVMIGRATE_ARCHIVE_OPTIONS, TASK_SERVICE, type } from '../containerd/api.js';
import type { ArchiveOptions } from '../containerd/archive-checkpoint.js';
import type * as M from '../containerd/task-messages.js';

/** containerd's state root in the guest, where each task's bundle lies (containerd's `state` setting). */
export const CONTAINERD_STATE = '/run/containerd';
/** The CRI's containerd namespace. */
export const CRI_NAMESPACE = 'k8s.io';

/** A CRI container's bundle directory (runtime v2: <state>/io.containerd.runtime.v2.task/<namespace>/<id>). */
export function taskBundle(id: string, state = CONTAINERD_STATE): string {
  return path.join(state, 'io.containerd.runtime.v2.task', CRI_NAMESPACE, id);
}

const method = <Req extends object, Res extends object>(name: string, req: string, res: string) =>
  new TypedMethod<Req, Res>(TASK_SERVICE, name, type(`containerd.task.v2.${req}`), type(res.includes('.') ? res : `containerd.task.v2.${res}`));

const PAUSE = method<M.PauseRequest, M.Empty>('Pause', 'PauseRequest', 'google.protobuf.Empty');
const RESUME = method<M.ResumeRequest, M.Empty>('Resume', 'ResumeRequest', 'google.protobuf.Empty');
const CHECKPOINT = method<{ id: string; path: string; options?: AnyMessage }, M.Empty>('Checkpoint', 'CheckpointTaskRequest', 'google.protobuf.Empty');
const STATE = method<M.StateRequest, M.StateResponse>('State', 'StateRequest', 'StateResponse');
const CONNECT = method<M.ConnectRequest, M.ConnectResponse>('Connect', 'ConnectRequest', 'ConnectResponse');

/** The message types of the calls above (for warmCheckpointCodecs). */
export const SHIM_TASK_TYPES = [PAUSE, RESUME, CHECKPOINT, STATE, CONNECT].flatMap((m) => [m.requestType, m.responseType]);

/**
 * The task service of one container's shim (ours), reached as containerd
 * reaches it: the ttrpc address its `start` wrote into the bundle.
 */
export class ShimTask {
  private constructor(private readonly client: TtrpcClient, readonly id: string) {}

  static async connect(id: string, bundle: string): Promise<ShimTask> {
    let address: string;
    try {
      address = fs.readFileSync(path.join(bundle, 'address'), 'utf8').trim();
    } catch (err) {
      throw new NotFoundError(`container ${id} has no shim address in ${bundle}: is its task running?`, { cause: err });
    }
    if (!address.startsWith('unix://')) throw new BadDataError(`shim address of container ${id} is ${JSON.stringify(address)}, not unix://`);
    return new ShimTask(await TtrpcClient.connect(address.slice('unix://'.length)), id);
  }

  /** The init's state: PAUSED when someone (the user, with ctr task pause) paused it through the shim. */
  state(): Promise<M.StateResponse> {
    return STATE.call(this.client, { id: this.id, exec_id: '' });
  }

  pause(): Promise<M.Empty> {
    return PAUSE.call(this.client, { id: this.id });
  }

  resume(): Promise<M.Empty> {
    return RESUME.call(this.client, { id: this.id });
  }

  /**
   * The shim's checkpoint into `dir`: flat image files with no options, as
   * containerd 2.x sends for non-runc runtimes; with ArchiveOptions (ours,
   * shim/containerd/archive-checkpoint.ts), the host's archive.
   */
  checkpoint(dir: string, timeoutMs: number, archive?: ArchiveOptions): Promise<M.Empty> {
    const options = archive ? { type_url: OVMIGRATE_ARCHIVE_OPTIONS, value: Buffer.from(JSON.stringify(archive)) } : undefined;
    return CHECKPOINT.call(this.client, { id: this.id, path: dir, ...(options ? { options } : {}) }, { timeoutMs });
  }

  connectInfo(): Promise<M.ConnectResponse> {
    return CONNECT.call(this.client, { id: this.id });
  }

  close(): void {
    this.client.close();
  }
}
