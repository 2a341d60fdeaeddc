/**
 * A process of its own that resumes a paused VM: started (detached) before
 * the backend sends QMP `stop`, it sends `cont` on its own QMP connection
 * when the pause budget runs out, or at once when its parent goes away
 * (its stdin closes without "done": the backend died or was killed while
 * the VM was stopped). Its parent writes "done" once it has resumed the VM
 * itself. Out of process, it works even when the parent's event loop is
 * stuck. Usage: node cont-watchdog.js QMP_SOCKET BUDGET_MS
 */
import { QmpClient } from './qmp.js';

const ATTEMPTS = 5;

async function cont(socket: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const qmp = await QmpClient.connect(socket, 5_000);
      try {
        await qmp.execute('cont', undefined, 5_000);
        return;
      } finally {
        qmp.close();
      }
    } catch (err) {
      if (attempt >= ATTEMPTS) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

function main(): void {
  const [socket, budget] = process.argv.slice(2);
  const ms = Number(budget);
  if (!socket || !Number.isFinite(ms) || ms < 0) {
    process.stderr.write('usage: cont-watchdog QMP_SOCKET BUDGET_MS\n');
    process.exit(2);
  }
  let fired = false;
  let input = '';
  const fire = (why: string) => {
    if (fired) return;
    fired = true;
    clearTimeout(timer);
    process.stdin.destroy();
    cont(socket).then(() => {
      process.stderr.write(`ovmigrate cont-watchdog: resumed the VM at ${socket} (${why})\n`);
      process.exit(0);
    }, (err: unknown) => {
      process.stderr.write(`ovmigrate cont-watchdog: could not resume the VM at ${socket} (${why}): ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
  };
  const timer = setTimeout(() => fire(`the pause budget of ${ms} ms ran out`), ms);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    input += chunk;
    if (input.includes('done')) process.exit(0);
  });
  process.stdin.on('end', () => fire('the backend went away while the VM was paused'));
  process.stdin.on('error', () => fire('the backend went away while the VM was paused'));
  process.stdout.write('ready\n');
}

main();
