import { QmpClient } from './qmp.js';

/**
 * Stops and resumes a QEMU guest's vCPUs over QMP. A guest that was already
 * stopped when asked is left stopped by cont().
 */
export class QmpPause {
  private wasRunning = true;

  private constructor(private readonly qmp: QmpClient) {}

  static async connect(socket: string): Promise<QmpPause> {
    return new QmpPause(await QmpClient.connect(socket));
  }

  async stop(): Promise<void> {
    const status = await this.qmp.execute<{ running: boolean }>('query-status');
    this.wasRunning = status.running;
    if (this.wasRunning) await this.qmp.execute('stop');
  }

  async cont(): Promise<void> {
    if (this.wasRunning) await this.qmp.execute('cont');
  }

  close(): void {
    this.qmp.close();
  }
}
