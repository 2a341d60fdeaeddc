import fs from 'node:fs';
import path from 'node:path';
import { ExternalError, errorMessage } from '../../common/errors.js';
import type { Runc } from './runc.js';

/** What the Freezer asks of runc: pause, resume, and whether the container is paused. */
export interface FreezeOps {
  pause(id: string): Promise<unknown>;
  resume(id: string): Promise<unknown>;
  state(id: string): Promise<{ status: string }>;
}

/** runc's wait for a freeze to settle (libcontainer/cgroups/fs2/freezer.go waitFrozen: 1000 reads, 10 ms apart). */
const POLL_MS = 10;
const WAIT_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The container's cgroup v2 freezer worked as `runc pause` and `runc resume`
 * work it on cgroup v2 (write cgroup.freeze, then for a freeze wait until
 * cgroup.events says `frozen 1`), without starting runc: in a guest each
 * runc run is a Go program's start, and a checkpoint paid two of them (the
 * CRI layer's Pause and Resume) in guest CPU. runc keeps no pause state of its
 * own on cgroup v2 (its `state` reads the freezer), so runc sees what this
 * did. Without cgroup v2's cgroup.freeze (cgroup v1, systemd slices), runc does it.
 */
export class CgroupFreeze implements FreezeOps {
  constructor(private readonly runc: Pick<Runc, 'pause' | 'resume' | 'state'>, private readonly cgroupDir: string | undefined) {}

  async pause(id: string): Promise<unknown> {
    const file = this.freezeFile();
    if (!file) return this.runc.pause(id);
    await this.write(id, file, '1');
    const events = path.join(this.cgroupDir!, 'cgroup.events');
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const text = await fs.promises.readFile(events, 'utf8').catch((err: unknown) => {
        throw new ExternalError(`pausing container ${id}: reading ${events}: ${errorMessage(err)}`, { cause: err });
      });
      if (/^frozen 1$/m.test(text)) return undefined;
      if (Date.now() >= deadline) {
        throw new ExternalError(`pausing container ${id}: ${this.cgroupDir} not frozen after ${WAIT_MS} ms (cgroup.events: ${text.trim().replace(/\n/g, ', ')})`);
      }
      await sleep(POLL_MS);
    }
  }

  async resume(id: string): Promise<unknown> {
    const file = this.freezeFile();
    if (!file) return this.runc.resume(id);
    await this.write(id, file, '0');
    return undefined;
  }

  /**
   * Paused or not, from the freezer (all the Freezer asks); with no cgroup
   * to read (cgroup v1, or gone with the container), what runc says.
   */
  async state(id: string): Promise<{ status: string }> {
    const file = this.freezeFile();
    const frozen = file ? await fs.promises.readFile(file, 'utf8').catch(() => undefined) : undefined;
    if (frozen === undefined) return this.runc.state(id);
    return { status: frozen.trim() === '1' ? 'paused' : 'running' };
  }

  private freezeFile(): string | undefined {
    if (!this.cgroupDir) return undefined;
    const file = path.join(this.cgroupDir, 'cgroup.freeze');
    return fs.existsSync(file) ? file : undefined;
  }

  private async write(id: string, file: string, value: '0' | '1'): Promise<void> {
    try {
      await fs.promises.writeFile(file, value);
    } catch (err) {
      throw new ExternalError(`${value === '1' ? 'pausing' : 'resuming'} container ${id}: writing ${file}: ${errorMessage(err)}`, { cause: err });
    }
  }
}
