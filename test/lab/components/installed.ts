import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError } from '../../../common/errors.js';
import { cacheRoot } from '../paths.js';
import { ComponentPin, PINS_FILE, readPins } from './pins.js';

/**
 * How a component is built, beyond its pin: a change here (flags, layout)
 * must rebuild every cached component, so it is part of the stamp.
 */
export const RECIPE = 'go build|test -c, CGO_ENABLED=0, -trimpath, -ldflags -s -w -X, v1';

/** The cache of built components: OVMIGRATE_CACHE/components/<id>-<version>/bin/<program>. */
export function componentsRoot(): string {
  return path.join(cacheRoot(), 'components');
}

export function componentDir(pin: ComponentPin): string {
  return path.join(componentsRoot(), `${pin.id}-${pin.version}`);
}

/** The build log of a component (kept after a failure). */
export function componentLog(pin: ComponentPin): string {
  return path.join(componentsRoot(), 'logs', `${pin.id}-${pin.version}.log`);
}

/** What build.json records: the stamp says which pin and recipe built the directory. */
export interface BuildRecord {
  id: string;
  module: string;
  version: string;
  stamp: string;
  goVersion: string;
  seconds: number;
  builtAt: string;
}

/** The hash of everything that decides a build except the Go toolchain (recorded apart, so lookups need no go). */
export function stampOf(pin: ComponentPin): string {
  return crypto.createHash('sha256').update(RECIPE).update(JSON.stringify(pin)).digest('hex').slice(0, 16);
}

export interface InstalledComponent {
  pin: ComponentPin;
  dir: string;
  record: BuildRecord;
  /** Program name -> absolute path. */
  binaries: Record<string, string>;
}

/**
 * The cached build of `pin`, if it was built from this pin and recipe (and, when given, this Go) and has
 * `programs` (default: all of the pin's; a build may hold only some, as a test run builds no test binary).
 * `binaries` has every program of the pin that is there.
 */
export function installed(pin: ComponentPin, goVersion?: string, programs = pin.binaries.map((b) => b.name)): InstalledComponent | undefined {
  const dir = componentDir(pin);
  let record: BuildRecord;
  try {
    record = JSON.parse(fs.readFileSync(path.join(dir, 'build.json'), 'utf8')) as BuildRecord;
  } catch {
    return undefined;
  }
  if (record.stamp !== stampOf(pin) || (goVersion !== undefined && record.goVersion !== goVersion)) return undefined;
  const binaries: Record<string, string> = {};
  for (const b of pin.binaries) {
    const file = path.join(dir, 'bin', b.name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      binaries[b.name] = file;
    } catch {
      // Not built (yet): only a wanted program's absence matters.
    }
  }
  if (!programs.every((n) => binaries[n])) return undefined;
  return { pin, dir, record, binaries };
}

/**
 * Every pinned program's path in the cache, without building: for tests and
 * guests. A missing or stale one is a NotFoundError naming `lab components`.
 */
export function componentBinaries(pins = readPins()): Record<string, string> {
  const all: Record<string, string> = {};
  const missing: string[] = [];
  for (const pin of pins) {
    const have = installed(pin);
    if (have) Object.assign(all, have.binaries);
    else missing.push(`${pin.id} ${pin.version}`);
  }
  if (missing.length) {
    throw new NotFoundError(`components not built in ${componentsRoot()}: ${missing.join(', ')} (run \`lab components\`)`);
  }
  return all;
}

/**
 * A PATH prefix holding every built component. The lab guests see the host's
 * root (and so this cache) at the same path, read-only: a guest runs the
 * binaries from there, nothing is copied. A cache under /tmp, /run, /var/lib
 * or /mnt is hidden in the guest by its tmpfs mounts.
 */
export function componentsPath(pins = readPins()): string {
  componentBinaries(pins);
  return pins.map((p) => path.join(componentDir(p), 'bin')).join(':');
}

/**
 * One pinned program's path in the cache, without building: for a test that
 * needs only it (crictl, checkpointctl), not every component built. Missing
 * or stale: a NotFoundError naming `lab components`.
 */
export function componentBinary(name: string, pins = readPins()): string {
  const pin = pins.find((p) => p.binaries.some((b) => b.name === name));
  if (!pin) throw new NotFoundError(`no pinned component builds ${name} (${PINS_FILE})`);
  const have = installed(pin, undefined, [name]);
  if (!have) throw new NotFoundError(`component ${pin.id} ${pin.version} (${name}) not built in ${componentsRoot()} (run \`lab components ${pin.id}:${name}\`)`);
  return have.binaries[name];
}
