import fs from 'node:fs';
import path from 'node:path';
import { ExternalError, NotFoundError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import type { FreezeOps } from './cgroup-freeze.js';

/**
 * In the bundle while a checkpoint holds the container frozen: written
 * before `runc pause`, removed once `runc resume` succeeded. A shim that
 * finds it (restarted, shutting down, or `delete` after a crash) thaws.
 */
export const FROZEN_MARKER = 'ovmigrate-frozen.json';

/** Pauses between thaw attempts: a cgroup still settling its freeze may refuse the first. */
const THAW_RETRY_MS = [100, 500];


/**
 * The freeze state of one container and the turn-taking around it. A
 * checkpoint and the container's Pause, Resume, Kill and Delete run one at
 * a time (exclusive), so a user's Pause is never undone by a checkpoint's
 * thaw, and the checkpoint only thaws what it froze itself.
 */
export class Freezer {
  private queue: Promise<unknown> = Promise.resolve();
  /** The user's Pause, as last asked through this shim. */
  private userPaused = false;

  constructor(private readonly runc: FreezeOps, readonly id: string, readonly bundle: string) {}

  /** Runs fn once every earlier exclusive operation on this container has ended. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  pause(): Promise<void> {
    return this.exclusive(async () => {
      await this.runc.pause(this.id);
      this.userPaused = true;
    });
  }

  resume(): Promise<void> {
    return this.exclusive(async () => {
      await this.runc.resume(this.id);
      this.userPaused = false;
    });
  }

  /**
   * For a checkpoint, inside exclusive(): freezes the container unless it is
   * paused already (by the user, or containerd around `ctr containers
   * checkpoint`, which then resumes it itself). True when this froze it: the
   * caller then owes a thaw(). A failed pause is undone as far as it went.
   */
  async freeze(): Promise<boolean> {
    if (this.userPaused || (await this.runc.state(this.id)).status === 'paused') return false;
    const marker = markerPath(this.bundle);
    fs.writeFileSync(marker, JSON.stringify({ id: this.id, shim: process.pid, at: new Date().toISOString() }));
    try {
      await this.runc.pause(this.id);
    } catch (err) {
      // runc pause can fail with the cgroup half frozen (FREEZING): thaw what it reached.
      try {
        await this.runc.resume(this.id);
        fs.rmSync(marker, { force: true });
      } catch (e) {
        const status = await this.runc.state(this.id).then((s) => s.status, () => 'unknown');
        if (status === 'running') fs.rmSync(marker, { force: true });
        else log.error(`${this.id}: resuming after a failed pause (${status}): ${errorMessage(e)}`);
      }
      throw err;
    }
    return true;
  }

  /** Undoes freeze(): runc resume, tried again a few times; the marker goes only once it succeeded. */
  async thaw(): Promise<void> {
    await thawWithRetries(this.runc, this.id);
    fs.rmSync(markerPath(this.bundle), { force: true });
  }

  /** Thaws a container a checkpoint left frozen (its marker in the bundle); true when there was one. */
  static async thawLeftover(runc: FreezeOps, id: string, bundle: string): Promise<boolean> {
    const marker = markerPath(bundle);
    let text: string;
    try {
      text = fs.readFileSync(marker, 'utf8');
    } catch {
      return false;
    }
    let markedId: unknown;
    try {
      markedId = (JSON.parse(text) as { id?: unknown }).id;
    } catch {
      markedId = undefined;
    }
    if (markedId !== undefined && markedId !== id) {
      log.warn(`${bundle}: a freeze marker for ${String(markedId)}, not ${id}: left alone`);
      return false;
    }
    log.warn(`${id}: left frozen by an interrupted checkpoint; thawing`);
    try {
      await thawWithRetries(runc, id);
    } catch (err) {
      if (!(err instanceof ExternalError && err.cause instanceof NotFoundError)) throw err;
    }
    fs.rmSync(marker, { force: true });
    return true;
  }
}

function markerPath(bundle: string): string {
  return path.join(bundle, FROZEN_MARKER);
}

/** runc resume until the container is not paused; a container runc no longer knows needs no thaw. */
async function thawWithRetries(runc: FreezeOps, id: string): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt <= THAW_RETRY_MS.length; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, THAW_RETRY_MS[attempt - 1]));
    try {
      await runc.resume(id);
      return;
    } catch (err) {
      last = err;
      if (err instanceof NotFoundError) break;
      // "container not paused": thawed meanwhile (or by someone else).
      const status = await runc.state(id).then((s) => s.status, () => undefined);
      if (status === 'running' || status === 'stopped') return;
    }
  }
  throw new ExternalError(`${id}: could not thaw the container after its checkpoint: ${errorMessage(last)}`, { cause: last });
}
