import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../paths.js';

/** The product's CLI: a node's backend is `ovmigrate serve`, as an operator runs it. */
const PRODUCT_CLI = path.join(projectRoot, 'dist', 'introspect', 'cli', 'main.js');

/** The host-side directories of a node's backend. */
export interface NodeBackendOptions {
  /** The backend's image directory, a share of the guest (mounted at the same path there). */
  images: string;
  /** Beside it, on its file system, seen by no guest. */
  staging: string;
  log: string;
}

/**
 * `ovmigrate serve --vm NAME` for a lab node, started by the guest's keeper
 * once the VM description is written, and stopped by it with QEMU: the
 * backend lives exactly as long as the guest.
 */
export function startNodeBackend(guest: string, o: NodeBackendOptions): ChildProcess {
  const logFd = fs.openSync(o.log, 'a');
  try {
    return spawn(process.execPath, [PRODUCT_CLI, '--log-level', 'info', 'serve', '--vm', guest, '--images', o.images, '--staging', o.staging], {
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    fs.closeSync(logFd);
  }
}
