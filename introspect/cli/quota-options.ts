import { Command } from 'commander';
import { InvalidArgumentError } from '../../common/errors.js';
import { DumpQuota } from '../dump/budget.js';

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** A byte size: a whole number with an optional K, M, G or T (powers of 1024). */
export function byteSize(name: string) {
  return (value: string): number => {
    const m = /^(\d+)([kmgt]?)i?b?$/i.exec(value.trim());
    const n = m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : NaN;
    if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} ${value}: not a size (e.g. 4096, 512M, 2G)`);
    return n;
  };
}

function positive(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} ${value}: not a positive whole number`);
    return n;
  };
}

export interface QuotaOptions {
  maxDumpBytes?: number;
  maxDumpPtes?: number;
  maxDumpRuns?: number;
  maxPauseMs?: number;
}

/** The options bounding one dump of a VM; unset ones follow its RAM (dump/budget.ts). */
export function addQuotaOptions(cmd: Command): Command {
  return cmd
    .option('--max-dump-bytes <size>', 'bytes of pages one dump may write (default: the VM\'s RAM size)', byteSize('--max-dump-bytes'))
    .option('--max-dump-ptes <n>', 'page table entries one walk of the tree\'s memory may read (default: 2 per page of RAM)', positive('--max-dump-ptes'))
    .option('--max-dump-runs <n>', 'runs of pages one dump may keep (default: 1 per page of RAM)', positive('--max-dump-runs'))
    .option('--max-pause-ms <ms>', 'longest the VM may stay paused for a dump\'s final check (default: 10000)', positive('--max-pause-ms'));
}

export function quotaOf(o: QuotaOptions): DumpQuota {
  return { bytes: o.maxDumpBytes, ptes: o.maxDumpPtes, runs: o.maxDumpRuns, pauseMs: o.maxPauseMs };
}
