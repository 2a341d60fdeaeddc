import fs from 'node:fs';
import path from 'node:path';
import { ExternalError } from '../../../common/errors.js';
import { TtrpcServer, type Handler } from '../../../common/ttrpc/index.js';
import type { BackendClient } from '../../../shim/channel/client.js';
import { TASK_SERVICE, decode, encode } from '../../../shim/containerd/api.js';
import { type BackendAccess, Checkpointer } from '../../../shim/containerd/checkpoint.js';
import { checkpointRequestOptions } from '../../../shim/containerd/container.js';
import type { CheckpointTaskRequest } from '../../../shim/containerd/task-messages.js';
import { Freezer } from '../../../shim/containerd/freezer.js';
import type { Runc } from '../../../shim/containerd/runc.js';
import { taskError } from '../../../shim/containerd/service.js';
import { TaskStatus } from '../../../shim/containerd/task-messages.js';

/** runc as the shim drives it: a container's status, each command recorded; runc checkpoint writes a CRIU image. */
export interface FakeRunc {
  runc: Runc;
  calls: string[];
  status(): 'running' | 'paused';
}

export function fakeRunc(initial: 'running' | 'paused' = 'running'): FakeRunc {
  let status = initial;
  const calls: string[] = [];
  const runc = {
    state: async () => ({ status, pid: 1 }),
    pause: async (id: string) => {
      calls.push(`pause ${id}`);
      // As runc: pausing a paused container fails ("container not running").
      if (status === 'paused') throw new ExternalError(`runc pause ${id}: container not running or created: paused`);
      status = 'paused';
      return '';
    },
    resume: async (id: string) => {
      calls.push(`resume ${id}`);
      if (status !== 'paused') throw new ExternalError(`runc resume ${id}: container not paused`);
      status = 'running';
      return '';
    },
    kill: async () => '',
    checkpoint: async (id: string, _bundle: string, o: { imagePath: string; leaveRunning: boolean }) => {
      calls.push(`checkpoint ${id} leave-running=${o.leaveRunning} (${status})`);
      fs.mkdirSync(o.imagePath, { recursive: true });
      fs.writeFileSync(path.join(o.imagePath, 'inventory.img'), Buffer.from([0x16, 0x31, 0x31, 0x58]));
      fs.writeFileSync(path.join(o.imagePath, 'stats-dump'), 'stats');
      return '';
    },
  };
  return { runc: runc as unknown as Runc, calls, status: () => status };
}

/** A backend that dumps by writing images into the share (after `gate`, when given), or is down. */
export function fakeBackendAccess(share: string, o: { down?: boolean; gate?: Promise<void> } = {}): BackendAccess & { checkpoints: number } {
  const access = {
    checkpoints: 0,
    portPresent: () => true,
    connect: async () => ({
      hello: async () => {
        if (o.down) throw new ExternalError('hello: no answer within 2000 ms');
        return { version: 'test', max_request_bytes: 1 << 20, max_concurrent_checkpoints: 2 };
      },
      checkpoint: async () => {
        access.checkpoints++;
        await o.gate;
        const name = 'cd'.repeat(16);
        fs.mkdirSync(path.join(share, name), { recursive: true });
        for (const f of ['inventory.img', 'pages-1.img']) fs.writeFileSync(path.join(share, name, f), f);
        return { name, pids: [10], pages_written: 1n, bytes_written: 4096n, total_ms: 1, pause_ms: 1 };
      },
      release: async (name: string) => fs.rmSync(path.join(share, name), { recursive: true, force: true }),
      close: () => undefined,
    }) as unknown as BackendClient,
  };
  return access;
}

/**
 * A container's shim as ovmigrate-cri reaches it (the ttrpc address in its
 * bundle): the Task service's State, Pause, Resume and Checkpoint over the
 * shim's own Freezer and Checkpointer, with runc and the backend faked.
 */
export class FakeTaskShim {
  readonly freezer: Freezer;
  private readonly server = new TtrpcServer();
  private readonly checkpointer: Checkpointer;

  constructor(readonly id: string, readonly bundle: string, readonly runc: FakeRunc, configFile: string, access: BackendAccess) {
    this.freezer = new Freezer(runc.runc, id, bundle);
    this.checkpointer = new Checkpointer(configFile, access);
    const t = (name: string) => `containerd.task.v2.${name}`;
    const handler = (req: string, res: string, fn: (r: Record<string, unknown>) => Promise<object>): Handler => async (payload) => {
      try {
        return encode(res, await fn(decode(req, payload)));
      } catch (err) {
        throw taskError(err);
      }
    };
    this.server.register(TASK_SERVICE, {
      State: handler(t('StateRequest'), t('StateResponse'), async () => ({
        id, bundle, pid: 1, status: runc.status() === 'paused' ? TaskStatus.PAUSED : TaskStatus.RUNNING,
      })),
      Pause: handler(t('PauseRequest'), 'google.protobuf.Empty', async () => (await this.freezer.pause(), {})),
      Resume: handler(t('ResumeRequest'), 'google.protobuf.Empty', async () => (await this.freezer.resume(), {})),
      Checkpoint: handler(t('CheckpointTaskRequest'), 'google.protobuf.Empty', async (r) => {
        await this.checkpointer.checkpoint({ id, bundle, runc: runc.runc, cgroup: `/k8s/${id}`, target: String(r.path), options: checkpointRequestOptions(r as Pick<CheckpointTaskRequest, 'options'>), freezer: this.freezer });
        return {};
      }),
    });
  }

  /** Serves on a socket in the bundle and writes its address there, as `shim start` does. */
  async start(): Promise<void> {
    fs.mkdirSync(this.bundle, { recursive: true });
    fs.writeFileSync(path.join(this.bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations: { 'io.kubernetes.cri.container-name': 'counter' } }));
    const socket = path.join(this.bundle, 'shim.sock');
    await this.server.listen(socket);
    fs.writeFileSync(path.join(this.bundle, 'address'), `unix://${socket}`);
  }

  async close(): Promise<void> {
    await this.server.close();
  }
}
