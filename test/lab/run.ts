import { execFile } from 'node:child_process';
import { ExternalError } from '../../common/errors.js';

/** Runs a host program to completion; a non-zero exit is an ExternalError with its stderr. */
export function run(file: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const detail = String(stderr).trim().split('\n').slice(-5).join('\n');
        reject(new ExternalError(`${file} ${args.join(' ')} failed: ${detail || err.message}`, { cause: err }));
      } else {
        resolve(String(stdout));
      }
    });
  });
}
