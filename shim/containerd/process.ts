import type { ProcessIO, StdioPaths } from './stdio.js';
import { TaskStatus } from './task-messages.js';

/** How a process ended: its status as wait reports it (code, or 128 + signal) and when the shim learnt of it. */
export interface Exit {
  status: number;
  at: Date;
}

/**
 * The container's init or an exec'd process: its pid once runc has started
 * it, its stdio, and its exit, which Wait waits for.
 */
export class TaskProcess {
  pid = 0;
  started = false;
  exit?: Exit;
  io?: ProcessIO;
  readonly exited: Promise<Exit>;
  private resolveExit!: (e: Exit) => void;

  /** execId "" is the container's init; spec is an exec's runtime-spec Process. */
  constructor(readonly containerId: string, readonly execId: string, readonly paths: StdioPaths, readonly spec?: Record<string, unknown>) {
    this.exited = new Promise((resolve) => { this.resolveExit = resolve; });
  }

  get isInit(): boolean {
    return this.execId === '';
  }

  /** For the helper's terminal copy and for file names. */
  get key(): string {
    return this.execId || 'init';
  }

  /** The process as containerd names it in events and errors: the container id for the init. */
  get name(): string {
    return this.execId || this.containerId;
  }

  /** What State reports, paused aside (only runc knows that, and only of the init). */
  get status(): TaskStatus {
    if (this.exit) return TaskStatus.STOPPED;
    return this.started ? TaskStatus.RUNNING : TaskStatus.CREATED;
  }

  finish(exit: Exit): void {
    this.exit = exit;
    this.resolveExit(exit);
  }
}
