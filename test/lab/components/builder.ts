import fs from 'node:fs';
import path from 'node:path';
import { ExternalError } from '../../../common/errors.js';
import { downloadModule, go, goEnv, goVersion } from './go.js';
import { BuildRecord, InstalledComponent, componentDir, componentLog, componentsRoot, installed, stampOf } from './installed.js';
import { writeKubernetesWrapper } from './kubernetes-wrapper.js';
import { ComponentPin, PinSelection, expand, readPins, selectPins } from './pins.js';
import { BuildProgress } from './progress.js';

/** A cold kubelet build on 2 shared cores at nice 19 takes many minutes; this only stops a hung one. */
const BUILD_TIMEOUT_MS = 90 * 60_000;
const DOWNLOAD_TIMEOUT_MS = 20 * 60_000;

export interface EnsureOptions {
  /** Only these components, `ID` or `ID:PROGRAM,...` (pins.ts selectPins; default: every program of every pin). */
  only?: string[];
  /** Builds at once (OVMIGRATE_COMPONENT_JOBS, default all): go already uses every core, so more at once mostly overlaps downloads and links. */
  jobs?: number;
  signal?: AbortSignal;
}

/**
 * Every pinned component, built once from its Go module into the cache and
 * reused while its pin, the recipe and the Go toolchain stay the same. Builds
 * run side by side; all are awaited, and any failure fails the whole (there is
 * no optional component: a test that needs one must not find it missing).
 */
export async function ensureComponents(opts: EnsureOptions = {}): Promise<InstalledComponent[]> {
  const selected = selectPins(readPins(), opts.only);
  const pins = selected.map((s) => s.pin);
  fs.mkdirSync(path.join(componentsRoot(), 'logs'), { recursive: true });
  const goVer = await goVersion(path.join(componentsRoot(), 'logs', 'go-version.log'));
  const progress = new BuildProgress();
  for (const pin of pins) progress.add(pin.id, `${pin.id} ${pin.version}`);
  progress.start();
  const jobs = opts.jobs ?? (Number(process.env.OVMIGRATE_COMPONENT_JOBS) || pins.length);
  const results: PromiseSettledResult<InstalledComponent>[] = new Array(pins.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pins.length) {
      const i = next++;
      results[i] = await ensureOne(selected[i], goVer, progress, opts.signal).then(
        (value) => ({ status: 'fulfilled' as const, value }),
        (reason: unknown) => ({ status: 'rejected' as const, reason }),
      );
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, pins.length)) }, worker));
  } finally {
    progress.stop();
  }
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ pin: pins[i], reason: r.reason as Error }] : []));
  if (failed.length) {
    throw new ExternalError(
      `building ${failed.map((f) => f.pin.id).join(', ')} failed:\n${failed.map((f) => f.reason.message).join('\n')}`,
      { cause: failed[0].reason },
    );
  }
  return results.map((r) => (r as PromiseFulfilledResult<InstalledComponent>).value);
}

/**
 * The selected programs of a component, built unless cached. A build of this
 * pin and Go that lacks some of them gets only those, moved in beside the
 * others one by one (a rename: a guest running a program from there never
 * sees it half-written); any other build is replaced whole.
 */
async function ensureOne(sel: PinSelection, goVer: string, progress: BuildProgress, signal?: AbortSignal): Promise<InstalledComponent> {
  const { pin, programs } = sel;
  const have = installed(pin, goVer, programs);
  if (have) {
    progress.set(pin.id, 'cached');
    return have;
  }
  const base = installed(pin, goVer, []);
  const missing = pin.binaries.filter((b) => programs.includes(b.name) && !base?.binaries[b.name]);
  const started = Date.now();
  const logFile = componentLog(pin);
  fs.writeFileSync(logFile, `${pin.module}@${pin.version} with ${goVer}\n`);
  const stage = fs.mkdtempSync(path.join(componentsRoot(), `.${pin.id}-${pin.version}-`));
  // mkdtemp makes it 0700; the installed directory is for everyone (and any user in a guest).
  fs.chmodSync(stage, 0o755);
  try {
    progress.set(pin.id, 'downloading');
    const moduleDir = await downloadModule(pin.module, pin.version, { logFile, timeoutMs: DOWNLOAD_TIMEOUT_MS, signal });
    // A module is built in its own directory, with its own go.mod and go.sum, as `go install m@v` would;
    // k8s.io/kubernetes through a wrapper module (kubernetes-wrapper.ts), which resolves and records its sums.
    const wrapped = pin.staging !== undefined;
    const cwd = wrapped
      ? writeKubernetesWrapper(path.join(componentsRoot(), 'src', `${pin.id}-${pin.version}`), pin,
        fs.readFileSync(path.join(moduleDir, 'go.mod'), 'utf8'))
      : moduleDir;
    const env = goEnv(wrapped ? ['-mod=mod'] : []);
    fs.mkdirSync(path.join(stage, 'bin'));
    progress.set(pin.id, 'building', missing.map((b) => b.name).join(', '));
    for (const b of missing) {
      const out = path.join(stage, 'bin', b.name);
      await go([...(b.test ? ['test', '-c'] : ['build']), ...buildFlags(pin), '-o', out, b.package],
        { cwd, env, logFile, timeoutMs: BUILD_TIMEOUT_MS, signal });
      assertStatic(out);
    }
    const record: BuildRecord = {
      id: pin.id, module: pin.module, version: pin.version, stamp: stampOf(pin), goVersion: goVer,
      seconds: Math.round((Date.now() - started) / 1000), builtAt: new Date().toISOString(),
    };
    if (base) {
      for (const b of missing) fs.renameSync(path.join(stage, 'bin', b.name), path.join(base.dir, 'bin', b.name));
    } else {
      fs.writeFileSync(path.join(stage, 'build.json'), JSON.stringify(record, null, 2) + '\n');
      install(stage, componentDir(pin));
    }
    progress.set(pin.id, 'done', `${record.seconds} s`);
  } catch (err) {
    progress.set(pin.id, 'failed');
    throw err;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  const built = installed(pin, goVer, programs);
  if (!built) throw new ExternalError(`${pin.id} ${pin.version}: built, but ${componentDir(pin)} is not complete`);
  return built;
}

/** -trimpath (no build paths in the binary), stripped, the release's version stamped where its own Makefile puts it. */
export function buildFlags(pin: ComponentPin): string[] {
  const ldflags = ['-s', '-w', ...Object.entries(pin.set).map(([name, value]) => `-X ${name}=${expand(pin, value)}`)];
  return ['-trimpath', ...(pin.tags.length ? ['-tags', pin.tags.join(',')] : []), '-ldflags', ldflags.join(' ')];
}

/** Puts a finished stage in place of an older build (a stale stamp or Go); a concurrent run's equal build may win. */
function install(stage: string, dir: string): void {
  const old = `${dir}.old-${process.pid}`;
  if (fs.existsSync(dir)) fs.renameSync(dir, old);
  try {
    fs.renameSync(stage, dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(old, { recursive: true, force: true });
  }
}

/**
 * The binaries go into Debian guests and initramfs images: none may need a
 * dynamic loader. An ELF64 program header of type PT_INTERP means it does.
 */
function assertStatic(file: string): void {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) throw new ExternalError(`${file} is not an ELF64 program`);
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (b.readUInt32LE(phoff + i * phentsize) === 3) throw new ExternalError(`${file} is dynamically linked (has PT_INTERP)`);
  }
}
