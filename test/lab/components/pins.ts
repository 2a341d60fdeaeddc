import fs from 'node:fs';
import path from 'node:path';
import { BadDataError, InvalidArgumentError } from '../../../common/errors.js';
import { projectRoot } from '../paths.js';

/** test/lab/components.json: the one place the components' versions are written (read from the checkout, not dist/). */
export const PINS_FILE = path.join(projectRoot, 'test', 'lab', 'components.json');

/** One program of a component: `go build PACKAGE`, or `go test -c PACKAGE` when `test`. */
export interface BinaryPin {
  name: string;
  package: string;
  test: boolean;
}

/** A released Go module and the programs built from it. */
export interface ComponentPin {
  /** The key in components.json (containerd, cri-tools, ...). */
  id: string;
  module: string;
  version: string;
  /**
   * Only for k8s.io/kubernetes: the release of its staging modules (k8s.io/api, ...).
   * Its go.mod points them at ./staging, which a module download lacks, so a wrapper
   * module replaces each with this version.
   */
  staging?: string;
  tags: string[];
  /** -ldflags -X values, with {version}, {major}, {minor} from `version`. */
  set: Record<string, string>;
  binaries: BinaryPin[];
}

const VERSION = /^v(\d+)\.(\d+)\.\d+$/;
const MODULE = /^[a-z0-9][a-z0-9.-]*(\/[A-Za-z0-9._~-]+)+$/;
const NAME = /^[a-z0-9][a-z0-9.-]*$/;
const PACKAGE = /^(\.|\.\/[A-Za-z0-9._/-]+|[a-z0-9][a-z0-9.-]*(\/[A-Za-z0-9._~-]+)+)$/;
const TAG = /^[A-Za-z0-9_.]+$/;
const X_NAME = /^[A-Za-z0-9._/-]+$/;

/** The pinned components, checked: a typo in the file fails here, before any build starts. */
export function readPins(file = PINS_FILE): ComponentPin[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BadDataError(`${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!isObject(raw)) throw new BadDataError(`${file}: not a JSON object`);
  const pins: ComponentPin[] = [];
  const names = new Set<string>();
  for (const [id, entry] of Object.entries(raw)) {
    if (id.startsWith('//')) continue;
    const where = `${file}: ${id}`;
    const bad = (what: string) => new BadDataError(`${where}: ${what}`);
    if (!NAME.test(id) || !isObject(entry)) throw bad('not a component');
    const { module, version, staging, tags = [], set = {}, binaries } = entry;
    if (typeof module !== 'string' || !MODULE.test(module)) throw bad('module must be a Go module path');
    if (typeof version !== 'string' || !VERSION.test(version)) throw bad('version must be a release vX.Y.Z');
    if (staging !== undefined && (typeof staging !== 'string' || !VERSION.test(staging))) throw bad('staging must be a release v0.Y.Z');
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string' && TAG.test(t))) throw bad('tags must be build tags');
    if (!isObject(set) || !Object.entries(set).every(([k, v]) => X_NAME.test(k) && typeof v === 'string' && !/\s/.test(v))) {
      throw bad('set must map Go variables to values without spaces');
    }
    if (!Array.isArray(binaries) || binaries.length === 0) throw bad('binaries must be a non-empty list');
    const bins = binaries.map((b: unknown): BinaryPin => {
      if (!isObject(b) || typeof b.name !== 'string' || !NAME.test(b.name)) throw bad('a binary needs a name');
      if (typeof b.package !== 'string' || !PACKAGE.test(b.package) || b.package.split('/').includes('..')) throw bad(`${b.name}: package must be a Go package path`);
      if (names.has(b.name)) throw bad(`${b.name}: named twice`);
      names.add(b.name);
      return { name: b.name, package: b.package, test: b.test === true };
    });
    pins.push({
      id, module, version, staging: staging as string | undefined, tags: tags as string[],
      set: set as Record<string, string>, binaries: bins,
    });
  }
  return pins;
}

/** The -X value with the pin's version spliced in. */
export function expand(pin: ComponentPin, value: string): string {
  const [, major, minor] = VERSION.exec(pin.version)!;
  return value.replace(/\{version\}/g, pin.version).replace(/\{major\}/g, major).replace(/\{minor\}/g, minor);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A component and which of its programs are wanted. */
export interface PinSelection {
  pin: ComponentPin;
  programs: string[];
}

/**
 * A component's programs when only its id is named: all but its test binaries
 * (`go test -c`: critest is a conformance suite, which only `make conformance`
 * runs and names as `cri-tools:critest`). A large test binary stays out of
 * every build that does not ask for it by name.
 */
export function defaultPrograms(pin: ComponentPin): string[] {
  const plain = pin.binaries.filter((b) => !b.test).map((b) => b.name);
  return plain.length ? plain : pin.binaries.map((b) => b.name);
}

/**
 * What `selectors` ask for, in the order of the pins file, each component
 * once: `ID` is defaultPrograms(ID), `ID:P1,P2` those programs of it. No
 * selector at all is every program of every component.
 */
export function selectPins(pins: ComponentPin[], selectors?: string[]): PinSelection[] {
  if (!selectors?.length) return pins.map((pin) => ({ pin, programs: pin.binaries.map((b) => b.name) }));
  const wanted = new Map<string, Set<string>>();
  for (const s of selectors) {
    const [id, list, ...rest] = s.split(':');
    const pin = pins.find((p) => p.id === id);
    if (!pin || rest.length) throw new InvalidArgumentError(`no pinned component ${s} (have ${pins.map((p) => p.id).join(', ')})`);
    const programs = list === undefined ? defaultPrograms(pin) : list.split(',');
    const unknown = programs.filter((n) => !pin.binaries.some((b) => b.name === n));
    if (unknown.length) throw new InvalidArgumentError(`component ${id} has no program ${unknown.join(', ')} (it has ${pin.binaries.map((b) => b.name).join(', ')})`);
    const set = wanted.get(id) ?? new Set<string>();
    for (const n of programs) set.add(n);
    wanted.set(id, set);
  }
  return pins.filter((p) => wanted.has(p.id)).map((pin) => ({ pin, programs: pin.binaries.map((b) => b.name).filter((n) => wanted.get(pin.id)!.has(n)) }));
}
