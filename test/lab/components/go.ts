import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ExternalError, NotFoundError, TimeoutError } from '../../../common/errors.js';
import { cacheRoot } from '../paths.js';

/** The Go caches the component builds use, under OVMIGRATE_CACHE so that a warm cache is one directory. */
export function goCacheDirs(): { modcache: string; buildcache: string } {
  return { modcache: path.join(cacheRoot(), 'go', 'mod'), buildcache: path.join(cacheRoot(), 'go', 'build') };
}

/**
 * The environment of every go command: static binaries (no cgo), the module
 * proxy as `go env` has it, our caches, no workspace, and the toolchain that
 * is installed (a module wanting a newer Go fails instead of fetching one,
 * unless GOTOOLCHAIN says otherwise). -modcacherw keeps the cache removable.
 */
export function goEnv(extraFlags: string[] = []): NodeJS.ProcessEnv {
  const { modcache, buildcache } = goCacheDirs();
  return {
    ...process.env,
    GOMODCACHE: modcache,
    GOCACHE: buildcache,
    CGO_ENABLED: '0',
    GOWORK: 'off',
    GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'local',
    GOFLAGS: ['-buildvcs=false', '-modcacherw', ...extraFlags].join(' '),
  };
}

export interface GoRun {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Output of the command is appended here (the build log of the component). */
  logFile: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Runs `go ARGS` at the lowest CPU priority (other work on the machine, such
 * as guests under test, keeps its share) and resolves with its stdout. A
 * failure is an ExternalError quoting the end of the log.
 */
export function go(args: string[], opts: GoRun): Promise<string> {
  fs.appendFileSync(opts.logFile, `$ go ${args.join(' ')}\n`);
  const log = fs.openSync(opts.logFile, 'a');
  return new Promise<string>((resolve, reject) => {
    const child = spawn('nice', ['-n', '19', 'go', ...args], {
      cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', log],
    });
    const out: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    let timedOut = false;
    // In our process group, so a ^C on the terminal reaches go too; its compilers end on their own.
    const kill = () => child.kill('SIGKILL');
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    opts.signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      fs.closeSync(log);
      const e = err as NodeJS.ErrnoException;
      reject(e.code === 'ENOENT' ? new NotFoundError('nice or go is not installed', { cause: err }) : err);
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', kill);
      fs.closeSync(log);
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) {
        resolve(stdout);
        return;
      }
      const tail = fs.readFileSync(opts.logFile, 'utf8').trimEnd().split('\n').slice(-8).join('\n');
      const what = `go ${args.slice(0, 2).join(' ')} in ${opts.cwd}`;
      if (timedOut) reject(new TimeoutError(`${what} ran over ${opts.timeoutMs / 1000} s (log ${opts.logFile})`));
      else reject(new ExternalError(`${what} failed (${sig ?? `exit ${code}`}); log ${opts.logFile}:\n${tail}`));
    });
  });
}

/** The installed Go's version (go1.26.8): part of each build's cache key. */
export async function goVersion(logFile: string): Promise<string> {
  const out = await go(['env', 'GOVERSION'], { cwd: cacheRoot(), env: goEnv(), logFile, timeoutMs: 60_000 });
  return out.trim();
}

/** Downloads MODULE@VERSION through the module proxy (once) and returns its directory in the module cache. */
export async function downloadModule(module: string, version: string, opts: Omit<GoRun, 'cwd' | 'env'>): Promise<string> {
  const out = await go(['mod', 'download', '-json', `${module}@${version}`], { ...opts, cwd: cacheRoot(), env: goEnv() });
  const info = JSON.parse(out) as { Dir?: string; Error?: string };
  if (info.Error || !info.Dir) throw new ExternalError(`go mod download ${module}@${version}: ${info.Error ?? 'no directory'}`);
  return info.Dir;
}
