import { ChildProcess, spawn } from 'node:child_process';
import { CLI } from './cli.js';

/** `ovmigrate serve` for one guest, as a host would run it; its log kept for the test. */
export class ServedBackend {
  readonly log: string[] = [];
  private child?: ChildProcess;

  constructor(private readonly guest: string, private readonly images: string, private readonly staging: string) {}

  async start(): Promise<void> {
    this.child = spawn(process.execPath, [CLI, '--log-level', 'debug', 'serve', '--vm', this.guest, '--images', this.images, '--staging', this.staging], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = (d: Buffer) => this.log.push(...d.toString().split('\n').filter(Boolean));
    this.child.stdout!.on('data', lines);
    this.child.stderr!.on('data', lines);
    // Serving once it has said so (or soon after connecting).
    const deadline = Date.now() + 30_000;
    while (!this.log.some((l) => /serving|connected/i.test(l))) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`ovmigrate serve did not start:\n${this.log.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

