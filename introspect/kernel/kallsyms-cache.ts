import fs from 'node:fs';
import path from 'node:path';
import { log } from '../../common/log.js';
import { cachePath } from '../cache.js';

/**
 * Decoded kallsyms names on the host's disk, keyed by a hash of the names
 * stream and token table. Only a verified attach writes here (see
 * Program.attach): what a guest's RAM says is untrusted until the kernel it
 * describes has been found whole. The directory is bounded; the least
 * recently used files go first.
 */
export const KALLSYMS_CACHE_LIMITS = {
  /** Files kept: one per kernel build seen. */
  files: 16,
  /** Bytes kept in all; a real kernel's names take about 4 MiB. */
  bytes: 128 << 20,
};

/** Largest file read back: the decoder's own bound on decoded names. */
const MAX_FILE = 64 << 20;

function cacheDir(): string {
  return cachePath('kallsyms');
}

function fileOf(key: string): string {
  if (!/^[0-9a-f]{32}$/.test(key)) throw new Error(`kallsyms cache key ${key}`);
  return path.join(cacheDir(), `${key}.txt`);
}

/** The names cached under `key`, if there are exactly `count` of them. */
export function readCachedNames(key: string, count: number): string[] | undefined {
  let fd: number;
  try {
    fd = fs.openSync(fileOf(key), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > MAX_FILE) return undefined;
    const names = fs.readFileSync(fd, 'latin1').split('\n');
    return names.length === count ? names : undefined;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Stores names under `key` (or marks an existing entry used), then trims the directory to its limits. */
export function writeCachedNames(key: string, names: readonly string[] | undefined): void {
  const file = fileOf(key);
  try {
    fs.mkdirSync(cacheDir(), { recursive: true, mode: 0o755 });
    if (names) {
      const tmp = `${file}.${process.pid}.tmp`;
      fs.rmSync(tmp, { force: true });
      const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
      try {
        fs.writeFileSync(fd, names.join('\n'), 'latin1');
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
    } else {
      const now = new Date();
      fs.utimesSync(file, now, now);
    }
    pruneCache();
  } catch (err) {
    log.debug('cannot cache kallsyms names', { error: String(err) });
  }
}

/** Removes the least recently used files (and stale temporaries) beyond the limits. */
export function pruneCache(limits = KALLSYMS_CACHE_LIMITS): void {
  const dir = cacheDir();
  const entries: { file: string; size: number; mtime: number }[] = [];
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) continue;
    if (name.endsWith('.tmp') && Date.now() - st.mtimeMs > 60_000) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (/^[0-9a-f]{32}\.txt$/.test(name)) entries.push({ file, size: st.size, mtime: st.mtimeMs });
  }
  entries.sort((a, b) => b.mtime - a.mtime);
  let bytes = 0;
  entries.forEach((e, i) => {
    bytes += e.size;
    if (i >= limits.files || bytes > limits.bytes) fs.rmSync(e.file, { force: true });
  });
}
