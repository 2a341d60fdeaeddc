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
