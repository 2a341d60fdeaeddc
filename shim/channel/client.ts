import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  CheckpointRequest, CheckpointResponse, HelloResponse, backendMethods,
} from '../../common/backend-api.js';
import { errorMessage } from '../../common/errors.js';
import { StatusCode, TtrpcClient, TtrpcError } from '../../common/ttrpc/index.js';
import { DEFAULT_SOCKET, RELAY_MAIN, relayLog } from './paths.js';

export type { CheckpointRequest, CheckpointResponse, HelloResponse } from '../../common/backend-api.js';

export interface BackendConnectOptions {
  /** The relay's socket (default /run/ovmigrate/backend.sock). */
  socket?: string;
  /** Start the relay when nothing listens on the socket (default true). */
  startRelay?: boolean;
  /** How long a relay just started gets to listen (default 3000 ms). */
  startTimeoutMs?: number;
}

export interface BackendCallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

const RETRY_MS = 100;

/**
 * The host backend, as a shim calls it: through the guest's relay (one per
 * guest: the channel's port opens once), started here when it is not
 * running. Calls reject with TtrpcError; UNAVAILABLE and DEADLINE_EXCEEDED
 * mean no backend is there (the shim then checkpoints in the guest).
 */
export class BackendClient {
  private constructor(private readonly client: TtrpcClient) {}

  static async connect(opts: BackendConnectOptions = {}): Promise<BackendClient> {
    const socket = opts.socket ?? DEFAULT_SOCKET;
    try {
      return new BackendClient(await TtrpcClient.connect(socket));
    } catch (err) {
      if (opts.startRelay === false || !noListener(err)) throw unavailable(socket, err);
    }
    startRelay(socket);
    const deadline = Date.now() + (opts.startTimeoutMs ?? 3000);
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      try {
        return new BackendClient(await TtrpcClient.connect(socket));
      } catch (err) {
        if (!noListener(err) || Date.now() >= deadline) throw unavailable(socket, err, ` (relay log: ${relayLog(socket)})`);
      }
    }
  }

  /** Who answers; give a short deadline, as an absent backend shows as silence. */
  hello(opts: { timeoutMs: number }): Promise<HelloResponse> {
    return backendMethods().hello.call(this.client, {}, opts);
  }

  /** Dumps a frozen container into a new image directory on the share; the guest freezes and thaws it. */
  checkpoint(req: CheckpointRequest, opts: BackendCallOptions = {}): Promise<CheckpointResponse> {
    return backendMethods().checkpoint.call(this.client, req, opts);
  }

  /** The images are taken: the host removes the directory. */
  async release(name: string, opts: BackendCallOptions = {}): Promise<void> {
    await backendMethods().release.call(this.client, { name }, opts);
  }

  close(): void {
    this.client.close();
  }
}

function noListener(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ECONNREFUSED';
}

function unavailable(socket: string, err: unknown, hint = ''): TtrpcError {
  return new TtrpcError(StatusCode.UNAVAILABLE, `no backend relay on ${socket}: ${errorMessage(err)}${hint}`, { cause: err });
}

/**
 * Starts the relay detached, so it outlives this shim, with no stdio of
 * ours: containerd reads a shim's stdout to its end at `start`.
 */
function startRelay(socket: string): void {
  fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
  const out = fs.openSync(relayLog(socket), 'a', 0o600);
  try {
    spawn(process.execPath, [RELAY_MAIN, '--socket', socket], { detached: true, stdio: ['ignore', out, out] }).unref();
  } finally {
    fs.closeSync(out);
  }
}
