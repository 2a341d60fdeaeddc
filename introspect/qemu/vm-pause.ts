import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { ExternalError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { QmpClient } from './qmp.js';

/** Pause budget when the caller gives none. */
export const DEFAULT_PAUSE_MS = 10_000;
const CONT_ATTEMPTS = 3;

/**
 * Stops and resumes a QEMU guest's vCPUs over QMP. A guest that was already
 * stopped when asked is left stopped by cont(). Resuming is made certain
 * on every path we control: cont() retries on fresh connections, and a
 * watchdog process (cont-watchdog.ts) resumes the VM when the pause
 * outlives its budget or this process dies while the VM is stopped.
 */
export class QmpPause {
  private wasRunning = true;
  private watchdog?: ChildProcess;

  private constructor(private qmp: QmpClient, private readonly socket: string) {}

  static async connect(socket: string): Promise<QmpPause> {
    return new QmpPause(await QmpClient.connect(socket), socket);
  }

  /** Stops the vCPUs for at most `budgetMs`: past it the watchdog resumes them whatever this process does. */
  async stop(budgetMs = DEFAULT_PAUSE_MS): Promise<void> {
    const status = await this.qmp.execute<{ running: boolean }>('query-status');
    this.wasRunning = status.running;
    if (!this.wasRunning) return;
    this.watchdog = await startWatchdog(this.socket, budgetMs);
    try {
      await this.qmp.execute('stop');
    } catch (err) {
      // A stop that timed out may still have stopped the VM.
      await this.cont().catch((e: unknown) => log.warn(`resuming after a failed stop: ${errorMessage(e)}`));
      throw err;
    }
  }

  /** Resumes the vCPUs (retried on fresh connections), then lets the watchdog go. */
  async cont(): Promise<void> {
    if (!this.wasRunning) return;
    let failure: unknown;
    for (let attempt = 1; attempt <= CONT_ATTEMPTS; attempt++) {
      try {
        if (attempt > 1) {
          this.qmp.close();
          this.qmp = await QmpClient.connect(this.socket, 5_000);
        }
        await this.qmp.execute('cont');
        this.release();
        return;
      } catch (err) {
        failure = err;
        log.warn(`QMP cont failed (attempt ${attempt} of ${CONT_ATTEMPTS}): ${errorMessage(err)}`);
      }
    }
    // The watchdog, still armed, resumes the VM when the budget runs out.
    throw new ExternalError(`could not resume the VM over ${this.socket}; its watchdog will retry`, { cause: failure });
  }

  close(): void {
    this.qmp.close();
  }

  private release(): void {
    const w = this.watchdog;
    this.watchdog = undefined;
    if (!w) return;
    w.stdin?.end('done\n');
    w.unref();
  }
}

/** Starts the watchdog and waits until it listens, so that no stop is ever sent without it. */
function startWatchdog(socket: string, budgetMs: number): Promise<ChildProcess> {
  const script = path.join(__dirname, 'cont-watchdog.js');
  // Detached: a signal to our process group (Ctrl-C) must not take the watchdog with us.
  const child = spawn(process.execPath, [script, socket, String(budgetMs)], { detached: true, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => reject(new ExternalError(`cannot start the QMP watchdog: ${err.message}`, { cause: err }));
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`it exited with ${code}`)));
    child.stdout!.once('data', () => {
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
      child.on('error', () => undefined);
      child.stdout!.destroy();
      resolve(child);
    });
  });
}
