import winston from 'winston';

/**
 * One winston logger per process, writing to stderr: stdout belongs to
 * command output and protocols (JSON, shim start/delete).
 */
export const log = winston.createLogger({
  level: process.env.OVMIGRATE_LOG_LEVEL ?? 'info',
  format: winston.format.combine(
    winston.format.timestamp(),
    winston.format.printf(({ timestamp, level, message, ...meta }) => {
      const rest = Object.keys(meta).length ? ' ' + JSON.stringify(meta, jsonSafe) : '';
      return `${timestamp} ${level} ${message}${rest}`;
    }),
  ),
  transports: [new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) })],
});

/** Sets the level of the process logger (CLI --log-level). */
export function setLogLevel(level: string): void {
  log.level = level;
}

function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? '0x' + value.toString(16) : value;
}

/** Characters a log line shows escaped: controls, format characters (bidi overrides), separators, surrogates, unassigned; and the escape itself. */
const UNSAFE = /[\p{C}\p{Zl}\p{Zp}\\]/gu;

/**
 * A string from outside (a guest's comm, path, cgroup, container id, an
 * error message quoting them) made fit for one log line: what does not
 * print is escaped (\xNN, \u{N}), so nothing forges a line or hides in one,
 * and a long value is cut to `max` characters with the full length said.
 */
export function logSafe(value: string, max = 256): string {
  const chars = Array.from(value);
  const cut = chars.length > max ? chars.slice(0, max).join('') : value;
  const safe = cut.replace(UNSAFE, (c) => {
    if (c === '\\') return '\\\\';
    const n = c.codePointAt(0)!;
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
  return chars.length > max ? `${safe}...(${chars.length} chars)` : safe;
}
