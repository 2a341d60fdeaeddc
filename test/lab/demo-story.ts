import { log } from '../../common/log.js';
import { guestScript } from './containerd.js';

/**
 * What a demo tells on its terminal, all through winston (stderr), so that
 * the story, the commands typed in each guest, their output and the lab's
 * own lines (guests booting, nodes up) come in one stream, in order. A long
 * wait (minutes under TCG on a loaded host) shows its seconds on one line
 * rewritten in place when stderr is a terminal, and a line a minute when not.
 */
export class DemoStory {
  private readonly tty = process.stderr.isTTY === true;

  /** A step of the story. */
  step(line: string): void {
    log.info(`== ${line}`);
  }

  /** Output to show as it is, line by line. */
  show(prefix: string, text: string): void {
    for (const line of text.split('\n')) if (line.trim()) log.info(`${prefix} ${line}`);
  }

  /** A script run in a guest, shown as typed there, its output after it. */
  async inGuest(guest: string, script: string, timeoutMs = 600_000): Promise<string> {
    log.info(`[${guest}]$ ${script.trim().split('\n').map((l) => l.trim()).join('; ')}`);
    const out = await guestScript(guest, script, timeoutMs);
    this.show(`[${guest}]`, out);
    return out;
  }

  /** Waits for a long step, showing the seconds gone; says how long it took. */
  async waiting<T>(what: string, step: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    const seconds = () => Math.round((Date.now() - t0) / 1000);
    let minutes = 0;
    // Ends in \r: the next log line (longer, with its timestamp) writes over it.
    const tick = setInterval(() => {
      const s = seconds();
      if (this.tty) process.stderr.write(`\r   ${what}: ${s} s\r`);
      else if (Math.floor(s / 60) > minutes) log.info(`   ${what}: ${++minutes} min`);
    }, 1000);
    try {
      return await step();
    } finally {
      clearInterval(tick);
      if (this.tty) process.stderr.write('\r\x1b[K');
      log.info(`   ${what}: took ${seconds()} s`);
    }
  }
}
