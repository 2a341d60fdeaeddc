import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ExternalError, NotFoundError } from '../../common/errors.js';
import { log } from '../../common/log.js';

/** Where runc keeps container state, per containerd namespace (as containerd's runc shim keeps it). */
export const RUNC_ROOT = '/run/containerd/runc';

/** stdin, stdout, stderr of a runc command: fds of ours, or ignored. */
export type Stdio = [number | 'ignore', number | 'ignore', number | 'ignore'];

export interface CreateOptions {
  bundle: string;
  pidFile: string;
  consoleSocket?: string;
  stdio: Stdio;
}

/**
 * runc, run as its command line. Errors carry runc's own last error line
 * from its JSON log (runc writes its reasons there, not to stderr, when
 * --log is given; stderr may be the container's).
 */
export class Runc {
  readonly root: string;

  constructor(namespace: string, readonly binary = 'runc') {
    this.root = path.join(RUNC_ROOT, namespace);
  }

  private async run(args: string[], opts: { logFile?: string; stdio?: Stdio; cwd?: string } = {}): Promise<string> {
    const logFile = opts.logFile;
    const full = ['--root', this.root, ...(logFile ? ['--log', logFile, '--log-format', 'json'] : []), ...args];
    log.debug(`runc ${full.join(' ')}`);
    const [stdin, stdout, stderr] = opts.stdio ?? ['ignore', 'pipe', 'pipe'];
    const logStart = logFile ? (fs.statSync(logFile, { throwIfNoEntry: false })?.size ?? 0) : 0;
    const child = spawn(this.binary, full, { stdio: [stdin, stdout, stderr], cwd: opts.cwd });
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', (e) => reject(new ExternalError(`runc ${args[0]}: ${e.message}`, { cause: e })));
      child.once('close', (c, sig) => resolve(c ?? 128 + (sig ? 9 : 0)));
    });
    if (code !== 0) {
      const reason = (logFile && lastError(logFile, logStart)) || err.trim() || out.trim() || `exit status ${code}`;
      if (/does not exist|not found/.test(reason) && args[0] !== 'create') throw new NotFoundError(`runc ${args[0]}: ${reason}`);
      throw new ExternalError(`runc ${args[0]} failed: ${reason}`);
    }
    return out;
  }

  create(id: string, o: CreateOptions): Promise<string> {
    return this.run(['create', '--bundle', o.bundle, '--pid-file', o.pidFile, ...(o.consoleSocket ? ['--console-socket', o.consoleSocket] : []), id],
      { logFile: path.join(o.bundle, 'log.json'), stdio: o.stdio, cwd: o.bundle });
  }

  /**
   * runc restore --detach from CRIU images (containerd's restore of a checkpoint). A failure carries CRIU's own
   * last errors from restore.log: runc only names that file, and containerd removes the bundle holding it.
   */
  async restore(id: string, o: CreateOptions & { imagePath: string; workPath: string }): Promise<string> {
    try {
      return await this.run(['restore', '--detach', '--bundle', o.bundle, '--image-path', o.imagePath, '--work-path', o.workPath,
        '--pid-file', o.pidFile, ...(o.consoleSocket ? ['--console-socket', o.consoleSocket] : []), id],
      { logFile: path.join(o.bundle, 'log.json'), stdio: o.stdio, cwd: o.bundle });
    } catch (err) {
      const criu = criuErrors(path.join(o.workPath, 'restore.log'));
      if (!criu || !(err instanceof ExternalError)) throw err;
      throw new ExternalError(`${err.message}; CRIU: ${criu}`, { cause: err });
    }
  }

  start(id: string, bundle: string): Promise<string> {
    return this.run(['start', id], { logFile: path.join(bundle, 'log.json') });
  }

  exec(id: string, bundle: string, o: { processFile: string; pidFile: string; consoleSocket?: string; stdio: Stdio }): Promise<string> {
    return this.run(['exec', '--detach', '--process', o.processFile, '--pid-file', o.pidFile,
      ...(o.consoleSocket ? ['--console-socket', o.consoleSocket] : []), id], { logFile: path.join(bundle, 'log.json'), stdio: o.stdio });
  }

  kill(id: string, signal: number, all: boolean): Promise<string> {
    return this.run(['kill', ...(all ? ['--all'] : []), id, String(signal)]);
  }

  delete(id: string, force: boolean): Promise<string> {
    return this.run(['delete', ...(force ? ['--force'] : []), id]);
  }

  pause(id: string): Promise<string> {
    return this.run(['pause', id]);
  }

  resume(id: string): Promise<string> {
    return this.run(['resume', id]);
  }

  async ps(id: string): Promise<number[]> {
    const out = await this.run(['ps', '--format', 'json', id]);
    const pids = JSON.parse(out || '[]') as unknown;
    return Array.isArray(pids) ? pids.filter((p): p is number => Number.isInteger(p)) : [];
  }

  async state(id: string): Promise<{ status: string; pid: number }> {
    return JSON.parse(await this.run(['state', id])) as { status: string; pid: number };
  }

  update(id: string, resourcesFile: string): Promise<string> {
    return this.run(['update', '--resources', resourcesFile, id]);
  }

  /** In-guest CRIU through runc (the fallback when no backend answers). */
  checkpoint(id: string, bundle: string, o: { imagePath: string; workPath: string; leaveRunning: boolean; extra: string[] }): Promise<string> {
    return this.run(['checkpoint', '--image-path', o.imagePath, '--work-path', o.workPath, ...(o.leaveRunning ? ['--leave-running'] : []), ...o.extra, id],
      { logFile: path.join(bundle, 'log.json') });
  }
}

/** The message of the last error runc logged after `from` (JSON lines: {"level":"error","msg":...}). */
function lastError(file: string, from: number): string | undefined {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.max(0, Math.min(size - from, 16384)));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const lines = text.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if (entry.level === 'error' && entry.msg) return entry.msg;
    } catch {
      // A partial first line.
    }
  }
  return undefined;
}

/** CRIU's last error lines in its log ("(00.012345) Error (criu/files.c:123): ..."), joined; undefined without any. */
function criuErrors(file: string, keep = 4): string | undefined {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, 65536));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const errors = text.split('\n').filter((l) => /\bError \(/.test(l)).map((l) => l.replace(/^\(\s*[\d.]+\)\s*/, '').trim());
  return errors.length ? errors.slice(-keep).join(' | ') : undefined;
}
