import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ProcessHelper } from '../subreaper/index.js';
import type { ExitTracker } from './exits.js';
import type { TaskProcess } from './process.js';
import type { Stdio } from './runc.js';

/** Where the helper listens for the terminals runc hands over (--console-socket). */
const CONSOLE_DIR = '/run/ovmigrate/console';

/** Runs one runc command that starts a process: create, exec or restore. */
export type RuncLaunch = (consoleSocket: string | undefined, stdio: Stdio) => Promise<unknown>;

/**
 * Starts a process through runc with its stdio, or with a terminal the
 * helper takes from runc when it has one; then gives the process its ends
 * and claims its pid (runc wrote it to pidFile).
 */
export async function launch(
  helper: ProcessHelper, exits: ExitTracker, containerId: string, proc: TaskProcess, pidFile: string, run: RuncLaunch,
): Promise<void> {
  let socket: string | undefined;
  let ready: Promise<void> | undefined;
  if (proc.paths.terminal) {
    fs.mkdirSync(CONSOLE_DIR, { recursive: true, mode: 0o700 });
    socket = path.join(CONSOLE_DIR, `${crypto.randomBytes(8).toString('hex')}.sock`);
    ({ ready } = await helper.console(`${containerId}/${proc.key}`, socket, proc.paths.stdin, proc.paths.stdout));
  }
  await run(socket, proc.io!.runcStdio());
  await ready;
  proc.io!.closeTheirs();
  exits.claimPid(proc, pidFile);
}
