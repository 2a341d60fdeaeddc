import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

/**
 * Opt-in CPU profiles of a long-lived guest program (ovmigrate-cri, the shim,
 * the relay), for finding where a checkpoint's guest CPU goes: with
 * OVMIGRATE_CPU_PROFILE=DIR in its environment the program samples itself
 * from its start, and each SIGUSR2 writes what was sampled since the last one
 * to DIR/<name>-<pid>-<n>.cpuprofile (Chrome's format) and starts anew.
 * `node --cpu-prof` writes only at exit, which these programs reach rarely.
 * Nothing is loaded or sampled without the variable.
 */
export const CPU_PROFILE_ENV = 'OVMIGRATE_CPU_PROFILE';

/** Microseconds between samples: coarse, so that sampling under TCG costs little of what it measures. */
const INTERVAL_US = 2000;

export function profileOnSignal(name: string, env: NodeJS.ProcessEnv = process.env): void {
  const dir = env[CPU_PROFILE_ENV];
  if (!dir) return;
  const session = new inspector.Session();
  session.connect();
  const start = () => session.post('Profiler.start');
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: INTERVAL_US });
  start();
  let n = 0;
  process.on('SIGUSR2', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, `${name}-${process.pid}-${++n}.cpuprofile`), JSON.stringify(result.profile));
      }
      start();
    });
  });
}
