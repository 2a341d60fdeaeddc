import fs from 'node:fs';
import path from 'node:path';
import { ExternalError, NotFoundError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { DEFAULT_KERNEL, KernelChoice, choiceOfVersion, downloadAndUnpack, kernelChoiceName, newestVersion } from './kernel-packages.js';
import { cacheRoot } from './paths.js';
import { run } from './run.js';

/** An unpacked Debian guest kernel: never installed on the host, only booted by QEMU. */
export interface GuestKernel {
  version: string;
  root: string;
  vmlinuz: string;
  modules: string;
}

/** How long the choice of "current" kernel is trusted before apt is asked again. */
const CHOICE_TTL_MS = 12 * 3600_000;

function kernelDir(): string {
  return path.join(cacheRoot(), 'kernel');
}

function unpacked(version: string): GuestKernel | undefined {
  const root = path.join(kernelDir(), version);
  const kernel: GuestKernel = {
    version,
    root,
    vmlinuz: path.join(root, 'boot', `vmlinuz-${version}`),
    modules: path.join(root, 'lib', 'modules', version),
  };
  return fs.existsSync(kernel.vmlinuz) && fs.existsSync(path.join(kernel.modules, 'modules.dep')) ? kernel : undefined;
}

/** The default kernel's marker keeps its old name, so a prepared cache stays valid. */
function markerFile(choice: KernelChoice): string {
  const name = choice.series === DEFAULT_KERNEL.series && choice.flavour === DEFAULT_KERNEL.flavour
    ? 'current' : `current-${kernelChoiceName(choice)}`;
  return path.join(kernelDir(), name);
}

/**
 * The kernel version to boot for the choice: OVMIGRATE_GUEST_KERNEL when it
 * names a kernel of that series and flavour, else Debian's newest.
 */
async function chooseVersion(choice: KernelChoice): Promise<string> {
  const pinned = process.env.OVMIGRATE_GUEST_KERNEL;
  const pinnedChoice = pinned ? choiceOfVersion(pinned) : undefined;
  if (pinned && (!pinnedChoice || kernelChoiceName(pinnedChoice) === kernelChoiceName(choice))) return pinned;
  const marker = markerFile(choice);
  try {
    if (Date.now() - fs.statSync(marker).mtimeMs < CHOICE_TTL_MS) return fs.readFileSync(marker, 'utf8').trim();
  } catch {
    // No choice made yet.
  }
  const version = await newestVersion(choice);
  fs.mkdirSync(kernelDir(), { recursive: true });
  fs.writeFileSync(marker, version + '\n');
  return version;
}

/** Returns the guest kernel, downloading and unpacking it (apt-get download, dpkg -x, depmod) once. */
export async function ensureKernel(choice: KernelChoice = DEFAULT_KERNEL): Promise<GuestKernel> {
  const version = await chooseVersion(choice);
  const have = unpacked(version);
  if (have) return have;
  log.info(`fetching guest kernel linux-image-${version}`);
  fs.mkdirSync(kernelDir(), { recursive: true });
  const work = fs.mkdtempSync(path.join(kernelDir(), `.${version}-`));
  try {
    await downloadAndUnpack(version, work);
    await run('depmod', ['-b', work, version]);
    fs.renameSync(work, path.join(kernelDir(), version));
  } catch (err) {
    fs.rmSync(work, { recursive: true, force: true });
    // Another process may have unpacked the same version meanwhile.
    const raced = unpacked(version);
    if (raced) return raced;
    throw err;
  }
  const kernel = unpacked(version);
  if (!kernel) throw new ExternalError(`unpacked linux-image-${version} has no vmlinuz or modules.dep`);
  return kernel;
}

/** Whether the kernel has a module of that name, loadable or built in. */
export function hasModule(kernel: GuestKernel, name: string): boolean {
  try {
    moduleLoadOrder(kernel, [name]);
    return true;
  } catch (err) {
    if (err instanceof NotFoundError) return false;
    throw err;
  }
}

/**
 * Module files to insmod, dependencies first, for the named modules, from the
 * kernel's modules.dep (so the list follows the kernel, not a fixed order).
 */
export function moduleLoadOrder(kernel: GuestKernel, names: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of fs.readFileSync(path.join(kernel.modules, 'modules.dep'), 'utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    deps.set(line.slice(0, colon), line.slice(colon + 1).trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map<string, string>();
  for (const file of deps.keys()) byName.set(path.basename(file).replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_'), file);
  const order: string[] = [];
  const visit = (file: string, depth: number): void => {
    if (order.includes(file)) return;
    if (depth > 32) throw new ExternalError(`module dependencies of ${file} nest too deep`);
    // modules.dep lists the deepest dependency last.
    for (const dep of [...(deps.get(file) ?? [])].reverse()) visit(dep, depth + 1);
    order.push(file);
  };
  const builtin = new Set(
    fs.readFileSync(path.join(kernel.modules, 'modules.builtin'), 'utf8').split('\n')
      .map((f) => path.basename(f).replace(/\.ko$/, '').replace(/-/g, '_')),
  );
  for (const name of names) {
    const file = byName.get(name);
    if (file) visit(file, 0);
    else if (!builtin.has(name)) throw new NotFoundError(`kernel ${kernel.version} has no module ${name}`);
  }
  return order;
}
