import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExternalError, NotFoundError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { cacheRoot } from './paths.js';
import { run } from './run.js';

/** An unpacked Debian guest kernel: never installed on the host, only booted by QEMU. */
export interface GuestKernel {
  version: string;
  root: string;
  vmlinuz: string;
  modules: string;
}

const PACKAGE = /^linux-image-(6\.1\.0-\d+-amd64)$/;
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

async function newestInApt(): Promise<string | undefined> {
  const out = await run('apt-cache', ['search', '--names-only', '^linux-image-6\\.1\\.0-[0-9]+-amd64$']);
  const versions = out.split('\n').map((l) => PACKAGE.exec(l.split(' ')[0])?.[1]).filter((v): v is string => !!v);
  return versions.sort((a, b) => abi(b) - abi(a))[0];
}

function abi(version: string): number {
  return Number(version.split('-')[1]);
}

/** The kernel version to boot: OVMIGRATE_GUEST_KERNEL, else Debian's newest 6.1 image. */
async function chooseVersion(): Promise<string> {
  if (process.env.OVMIGRATE_GUEST_KERNEL) return process.env.OVMIGRATE_GUEST_KERNEL;
  const marker = path.join(kernelDir(), 'current');
  try {
    if (Date.now() - fs.statSync(marker).mtimeMs < CHOICE_TTL_MS) return fs.readFileSync(marker, 'utf8').trim();
  } catch {
    // No choice made yet.
  }
  let version = await newestInApt();
  if (!version) {
    log.info('no linux-image-6.1.0 package known to apt; running apt-get update');
    await run('apt-get', ['update', '-qq']);
    version = await newestInApt();
  }
  if (!version) throw new NotFoundError('apt knows no linux-image-6.1.0-*-amd64 package');
  fs.mkdirSync(kernelDir(), { recursive: true });
  fs.writeFileSync(marker, version + '\n');
  return version;
}

/** Returns the guest kernel, downloading and unpacking it (apt-get download, dpkg -x, depmod) once. */
export async function ensureKernel(): Promise<GuestKernel> {
  const version = await chooseVersion();
  const have = unpacked(version);
  if (have) return have;
  log.info(`fetching guest kernel linux-image-${version}`);
  fs.mkdirSync(kernelDir(), { recursive: true });
  const work = fs.mkdtempSync(path.join(kernelDir(), `.${version}-`));
  try {
    // apt-get download drops privileges to _apt, which cannot write into our directory.
    const download = fs.mkdtempSync(path.join(os.tmpdir(), 'ovmigrate-deb-'));
    fs.chmodSync(download, 0o777);
    try {
      await run('apt-get', ['download', `linux-image-${version}`], { cwd: download });
      const deb = fs.readdirSync(download).find((f) => f.endsWith('.deb'));
      if (!deb) throw new ExternalError(`apt-get download linux-image-${version} wrote no .deb`);
      await run('dpkg', ['-x', path.join(download, deb), work]);
    } finally {
      fs.rmSync(download, { recursive: true, force: true });
    }
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
