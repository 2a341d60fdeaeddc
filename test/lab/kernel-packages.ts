import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExternalError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { cacheRoot } from './paths.js';
import { run } from './run.js';

/**
 * Which Debian kernel a lab guest boots: the series (bookworm's own 6.1, or
 * 6.12 from bookworm-backports) and Debian's flavour (generic, cloud: a
 * smaller config for VMs, rt: PREEMPT_RT). Written `6.12`, `6.1-rt`,
 * `6.12-cloud` on the lab's command line.
 */
export interface KernelChoice {
  series: KernelSeries;
  flavour: KernelFlavour;
}

export const KERNEL_SERIES = ['6.1', '6.12'] as const;
export const KERNEL_FLAVOURS = ['generic', 'cloud', 'rt'] as const;
export type KernelSeries = typeof KERNEL_SERIES[number];
export type KernelFlavour = typeof KERNEL_FLAVOURS[number];

export const DEFAULT_KERNEL: KernelChoice = { series: '6.1', flavour: 'generic' };

export function parseKernelChoice(text: string): KernelChoice {
  const m = /^(6\.1|6\.12)(?:-(generic|cloud|rt))?$/.exec(text);
  if (!m) throw new InvalidArgumentError(`--kernel ${text}: give 6.1 or 6.12, optionally with -cloud or -rt (6.12-rt)`);
  return { series: m[1] as KernelSeries, flavour: (m[2] ?? 'generic') as KernelFlavour };
}

export function kernelChoiceName(choice: KernelChoice): string {
  return choice.flavour === 'generic' ? choice.series : `${choice.series}-${choice.flavour}`;
}

/** The suffix of Debian's kernel ABI names for a flavour (6.1.0-57-rt-amd64, 6.12.95+deb12-cloud-amd64). */
function flavourSuffix(flavour: KernelFlavour): string {
  return flavour === 'generic' ? 'amd64' : `${flavour}-amd64`;
}

/** The kernel ABI name (`uname -r`) of a linux-image package of that choice, or undefined. */
function versionPattern(choice: KernelChoice): RegExp {
  const suffix = flavourSuffix(choice.flavour);
  // Backports may carry a version only as -unsigned (the signed package follows later): the same kernel.
  return choice.series === '6.1'
    ? new RegExp(`^linux-image-(6\\.1\\.0-(\\d+)-${suffix})(?:-unsigned)?$`)
    : new RegExp(`^linux-image-(6\\.12\\.(\\d+)\\+deb12-${suffix})(?:-unsigned)?$`);
}

/** The series an ABI name belongs to (for OVMIGRATE_GUEST_KERNEL and cached choices). */
export function choiceOfVersion(version: string): KernelChoice | undefined {
  for (const series of KERNEL_SERIES) {
    for (const flavour of KERNEL_FLAVOURS) {
      if (versionPattern({ series, flavour }).test(`linux-image-${version}`)) return { series, flavour };
    }
  }
  return undefined;
}

/**
 * apt options for the series' archive. 6.1 is in the host's own sources;
 * 6.12 is in bookworm-backports, which gets a sources list, lists and
 * package cache of its own under the lab's cache, so the host's apt (and
 * what it would install or upgrade) never sees that suite.
 */
function aptOptions(series: KernelSeries): string[] {
  if (series === '6.1') return [];
  const dir = path.join(cacheRoot(), 'apt', 'bookworm-backports');
  return [
    '-o', `Dir::Etc::sourcelist=${path.join(dir, 'sources.list')}`,
    '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${path.join(dir, 'lists')}`,
    '-o', `Dir::Cache=${path.join(dir, 'cache')}`,
    '-o', 'APT::Get::List-Cleanup=0',
  ];
}

const BACKPORTS_SOURCE =
  'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main\n';

async function updateIndex(series: KernelSeries): Promise<void> {
  if (series === '6.12') {
    const dir = path.join(cacheRoot(), 'apt', 'bookworm-backports');
    for (const d of ['lists/partial', 'cache/archives/partial']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    fs.writeFileSync(path.join(dir, 'sources.list'), BACKPORTS_SOURCE);
    // apt drops privileges to _apt for downloads into lists/.
    for (const d of ['lists', 'lists/partial']) fs.chmodSync(path.join(dir, d), 0o755);
    log.info('reading the bookworm-backports index (a private apt lists directory; the host apt is untouched)');
  } else {
    log.info('no matching linux-image package known to apt; running apt-get update');
  }
  await run('apt-get', ['-qq', ...aptOptions(series), 'update']);
}

async function newestInApt(choice: KernelChoice): Promise<string | undefined> {
  const pattern = versionPattern(choice);
  const prefix = choice.series === '6.1' ? '^linux-image-6\\.1\\.0-' : '^linux-image-6\\.12\\.';
  let out: string;
  try {
    out = await run('apt-cache', [...aptOptions(choice.series), 'search', '--names-only', prefix]);
  } catch {
    return undefined; // No index yet.
  }
  const found = out.split('\n').map((l) => pattern.exec(l.split(' ')[0])).filter((m): m is RegExpExecArray => !!m);
  return found.sort((a, b) => Number(b[2]) - Number(a[2]))[0]?.[1];
}

/** The newest ABI name apt offers for the choice, updating the (private, for backports) index once if it knows none. */
export async function newestVersion(choice: KernelChoice): Promise<string> {
  let version = await newestInApt(choice);
  if (!version) {
    await updateIndex(choice.series);
    version = await newestInApt(choice);
  }
  if (!version) throw new NotFoundError(`apt knows no linux-image package for kernel ${kernelChoiceName(choice)}`);
  return version;
}

/** Downloads the image package of an ABI name (signed, else -unsigned) and unpacks it into `into` (dpkg -x). */
export async function downloadAndUnpack(version: string, into: string): Promise<void> {
  const choice = choiceOfVersion(version);
  if (!choice) throw new InvalidArgumentError(`kernel ${version}: not a Debian 6.1 or 6.12 amd64 kernel ABI name`);
  // apt-get download drops privileges to _apt, which cannot write into our directory.
  const download = fs.mkdtempSync(path.join(os.tmpdir(), 'ovmigrate-deb-'));
  fs.chmodSync(download, 0o777);
  try {
    if (!await tryDownload(choice.series, version, download)) {
      await updateIndex(choice.series);
      if (!await tryDownload(choice.series, version, download)) {
        throw new NotFoundError(`apt-get download linux-image-${version} (or -unsigned) failed (see --log-level debug)`);
      }
    }
    const deb = fs.readdirSync(download).find((f) => f.endsWith('.deb'));
    if (!deb) throw new ExternalError(`apt-get download linux-image-${version} wrote no .deb`);
    await run('dpkg', ['-x', path.join(download, deb), into]);
  } finally {
    fs.rmSync(download, { recursive: true, force: true });
  }
}

async function tryDownload(series: KernelSeries, version: string, cwd: string): Promise<boolean> {
  for (const pkg of [`linux-image-${version}`, `linux-image-${version}-unsigned`]) {
    try {
      await run('apt-get', ['-q', ...aptOptions(series), 'download', pkg], { cwd });
      return true;
    } catch (err) {
      log.debug(`apt-get download ${pkg} failed`, { err: String(err) });
    }
  }
  return false;
}
