import { log } from '../../../common/log.js';

type State = 'waiting' | 'cached' | 'downloading' | 'building' | 'done' | 'failed';

interface Row {
  label: string;
  state: State;
  since: number;
  detail?: string;
}

/**
 * The builds' progress. On a terminal one status line, redrawn each second
 * (a kubelet build runs for minutes); everywhere each change of state is also
 * a log line through winston, with the line cleared first so the two do not mix.
 */
export class BuildProgress {
  private readonly rows = new Map<string, Row>();
  private timer?: NodeJS.Timeout;
  private readonly tty = process.stderr.isTTY === true;
  private drawn = false;

  add(id: string, label: string): void {
    this.rows.set(id, { label, state: 'waiting', since: Date.now() });
  }

  /** Off a terminal (a log file, CI), a line a minute says what is still going: a kubelet build is quiet for many minutes. */
  start(): void {
    if (this.tty) this.timer = setInterval(() => this.draw(), 1000);
    else this.timer = setInterval(() => {
      const line = this.going();
      if (line) log.info(line);
    }, 60_000);
  }

  set(id: string, state: State, detail?: string): void {
    const row = this.rows.get(id)!;
    const took = seconds(Date.now() - row.since);
    row.state = state;
    row.detail = detail;
    row.since = Date.now();
    this.clear();
    if (state === 'done') log.info(`${row.label}: built in ${took}${detail ? ` (${detail})` : ''}`);
    else if (state === 'failed') log.error(`${row.label}: build failed after ${took}`);
    else if (state === 'cached') log.info(`${row.label}: cached`);
    else log.info(`${row.label}: ${state}${detail ? ` ${detail}` : ''}`);
    this.draw();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private draw(): void {
    if (!this.tty) return;
    const line = this.going();
    if (!line) return;
    const width = process.stderr.columns || 120;
    process.stderr.write(`\r\x1b[K${line.length > width - 1 ? line.slice(0, width - 2) + '…' : line}`);
    this.drawn = true;
  }

  /** The builds in progress and how long each has been at it, or nothing. */
  private going(): string | undefined {
    const now = Date.now();
    const parts = [...this.rows.values()]
      .filter((r) => r.state === 'downloading' || r.state === 'building')
      .map((r) => `${r.label} ${r.state} ${seconds(now - r.since)}`);
    return parts.length ? `components: ${parts.join(' | ')}` : undefined;
  }

  private clear(): void {
    if (!this.drawn) return;
    process.stderr.write('\r\x1b[K');
    this.drawn = false;
  }
}

function seconds(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
