import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { vmDescriptionPath } from '../../introspect/vm/index.js';
import { PRODUCT_CLI } from './cli.js';

/** What a fault case changes in the VM description the backend is given. */
export interface BackendSetup {
  images: string;
  staging: string;
  /** A QMP socket instead of the VM's (a failing proxy). */
  qmpSocket?: string;
  /** The shares the description declares instead of the VM's. */
  shares?: string[];
  /** A channel socket instead of the VM's chardev (a proxy that cuts it). */
  channelSocket?: string;
}

/**
 * `ovmigrate serve` for one lab guest, as an operator runs it (the product
 * CLI, --vm NAME), from a copy of the guest's description in a directory of
 * its own, so that a case can give it a failing QMP socket or another
 * share. Its log is kept for the test to time faults by.
 */
export class FaultBackend {
  readonly log: string[] = [];
  private child?: ChildProcess;

  constructor(private readonly guest: string, private readonly vmDir: string) {}

  async start(setup: BackendSetup): Promise<void> {
    await this.stop();
    const description = JSON.parse(fs.readFileSync(vmDescriptionPath(this.guest), 'utf8')) as Record<string, unknown>;
    if (setup.qmpSocket) description.qmpSocket = setup.qmpSocket;
    if (setup.shares) description.shares = setup.shares;
    if (setup.channelSocket) description.channelSocket = setup.channelSocket;
    fs.mkdirSync(this.vmDir, { recursive: true });
    fs.writeFileSync(path.join(this.vmDir, `${this.guest}.json`), JSON.stringify(description));
    const mark = this.log.length;
    const child = spawn(process.execPath, [PRODUCT_CLI, '--log-level', 'debug', 'serve', '--vm', this.guest, '--images', setup.images, '--staging', setup.staging], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OVMIGRATE_VM_DIR: this.vmDir },
    });
    this.child = child;
    const lines = (d: Buffer) => this.log.push(...d.toString().split('\n').filter(Boolean));
    child.stdout!.on('data', lines);
    child.stderr!.on('data', lines);
    // Serving once connected to the guest's channel.
    const deadline = Date.now() + 30_000;
    while (!this.log.slice(mark).some((l) => /connected/i.test(l))) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`ovmigrate serve did not start:\n${this.log.slice(mark).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Resolves once a log line after `from` matches (the backend reached that stage). */
  async reached(pattern: RegExp, from: number, timeoutMs = 120_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.log.slice(from).some((l) => pattern.test(l))) {
      if (Date.now() > deadline || !this.running) return false;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return true;
  }

  /** SIGSTOP / SIGCONT: holds the backend at a stage while the test does something else. */
  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}
