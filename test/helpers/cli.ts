import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { execCapture } from '../lab/exec-client.js';

/** The lab's CLI (the product's commands with the lab plugged in), run as a user runs it. */
export const CLI = path.resolve(__dirname, '..', 'lab', 'cli', 'main.js');
/** The product's own CLI, which knows VMs only by their descriptions and cannot reach into a guest. */
export const PRODUCT_CLI = path.resolve(__dirname, '..', '..', 'introspect', 'cli', 'main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the lab CLI (or `entry`, such as PRODUCT_CLI); with `binary`, stdout is decoded as latin1 so Buffer.from(stdout, 'latin1') gives its bytes. */
export function cli(args: string[], opts: { input?: string; timeoutMs?: number; binary?: boolean; entry?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [opts.entry ?? CLI, ...args], {
      timeout: opts.timeoutMs ?? 600_000, maxBuffer: 256 << 20, encoding: opts.binary ? 'latin1' : 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** Like cli() but a non-zero exit throws with the command's stderr. */
export async function cliOk(args: string[], opts: { input?: string; timeoutMs?: number; binary?: boolean; entry?: string } = {}): Promise<string> {
  const r = await cli(args, opts);
  if (r.code !== 0) throw new Error(`ovmigrate ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

/**
 * What a test needs is not here: under CI that is a failure (CI must run
 * every test), elsewhere the test skips, saying why.
 */
export function missingComponent(ctx: Mocha.Context, reason: string): never {
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: a missing component fails the test)`);
  console.log(`      skipped: ${reason}`);
  ctx.skip();
}

/** Fails under CI and skips elsewhere when any of these programs is not on PATH. */
export function requirePrograms(ctx: Mocha.Context, programs: string[]): void {
  const missing = programs.filter((p) => spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0);
  if (missing.length) missingComponent(ctx, `missing ${missing.join(', ')}`);
}

/** Fails under CI and skips elsewhere when not run as root. */
export function requireRoot(ctx: Mocha.Context): void {
  if (process.getuid?.() !== 0) missingComponent(ctx, 'needs root');
}

/**
 * Runs a shell script in a lab guest and returns its stdout; a non-zero exit throws. It talks to the guest's
 * exec socket from this process, as `lab exec` does (lab.test runs that CLI): a CLI process per script would be a
 * node start-up of host CPU each, hundreds of times a run, taken from the TCG guests on a 2-core machine.
 */
export async function guestSh(guest: string, script: string, timeoutS = 300): Promise<string> {
  let r: Awaited<ReturnType<typeof execCapture>>;
  try {
    r = await execCapture(guest, ['sh', '-c', script], { timeoutMs: timeoutS * 1000 });
  } catch (err) {
    throw new Error(`in ${guest}: ${script}\n${(err as Error).message}`, { cause: err });
  }
  if (r.exitCode !== 0) {
    const why = [r.error && `sh: ${r.error}`, r.timedOut && `killed after ${timeoutS} s`].filter(Boolean).join('\n');
    throw new Error(`in ${guest}: ${script}\nexit ${r.exitCode}\n${why ? `${why}\n` : ''}${r.stderr}\n${r.stdout}`);
  }
  return r.stdout;
}
