import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError } from '../../../common/errors.js';
import { componentDir } from './installed.js';
import { readPins } from './pins.js';

/**
 * One pinned program's path in the cache, found by its pin's id and version,
 * for a guest that only runs it. Unlike componentBinaries it asks neither for
 * every pin nor for the build stamp: a pin split or a recipe change elsewhere
 * (critest apart from crictl, say) does not stop a node whose programs are
 * there; `make components` is what checks stamps.
 */
export function componentProgram(name: string, pins = readPins()): string {
  const pin = pins.find((p) => p.binaries.some((b) => b.name === name));
  if (!pin) throw new NotFoundError(`no pinned component builds ${name} (test/lab/components.json)`);
  const file = path.join(componentDir(pin), 'bin', name);
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw new NotFoundError(`${name} is not built in ${componentDir(pin)} (run \`lab components\`)`);
  }
  return file;
}
