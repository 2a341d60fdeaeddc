import fs from 'node:fs';
import { ExternalError } from '../../common/errors.js';
import type { ProcessHelper } from '../subreaper/index.js';
import type { Exit, TaskProcess } from './process.js';

/** Told of an exit once the process's output is flushed; the process's waiters wake after it returns. */
export type ExitListener = (proc: TaskProcess, exit: Exit) => void;

/**
 * Matches the exits the subreaper reports to the processes runc started.
 * runc returns after the process may already be gone, so an exit can come
 * before its pid is known: it waits here until the pid is claimed.
 */
export class ExitTracker {
  /** Started processes by pid, until they exit or are forgotten. */
  private readonly live = new Map<number, TaskProcess>();
  /** Exits of pids no process has claimed (yet). */
  private readonly unclaimed = new Map<number, Exit>();

  constructor(helper: ProcessHelper, private readonly onExit: ExitListener) {
    helper.on('exit', (pid, status) => this.reported(pid, { status, at: new Date() }));
  }

  /** The pid runc wrote to pidFile becomes the process's; an exit already reported for it is delivered now. */
  claimPid(proc: TaskProcess, pidFile: string): void {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new ExternalError(`runc wrote no pid to ${pidFile}`);
    proc.pid = pid;
    const early = this.unclaimed.get(pid);
    if (early) {
      this.unclaimed.delete(pid);
      void this.deliver(proc, early);
    } else {
      this.live.set(pid, proc);
    }
  }

  /** The process is deleted: an exit of its pid from now on is nobody's. */
  forget(proc: TaskProcess): void {
    if (this.live.get(proc.pid) === proc) this.live.delete(proc.pid);
  }

  private reported(pid: number, exit: Exit): void {
    const proc = this.live.get(pid);
    if (!proc || proc.exit) {
      this.unclaimed.set(pid, exit);
      return;
    }
    this.live.delete(pid);
    void this.deliver(proc, exit);
  }

  /** Output first (containerd reads it to its end before it looks at the exit), then the event, then Wait. */
  private async deliver(proc: TaskProcess, exit: Exit): Promise<void> {
    await proc.io?.drained();
    this.onExit(proc, exit);
    proc.finish(exit);
  }
}
