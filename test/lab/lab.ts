import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AlreadyExistsError, ExternalError, InvalidArgumentError, NotFoundError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { removeVmDescription } from '../../introspect/vm/index.js';
import { GuestSpec, GuestState, isAlive, readState } from './guest.js';
import { ensureInitramfs, rootShare } from './initramfs.js';
import { ensureKernel } from './kernel.js';
import { DEFAULT_KERNEL, kernelChoiceName, parseKernelChoice } from './kernel-packages.js';
import { KeeperOptions, KeeperReport, consoleTail } from './keeper.js';
import { checkName, guestPaths, labRoot } from './paths.js';
import { checkPath, qemuArgs } from './qemu-args.js';
import { NodeContainerd, NodeDirs, nodeLogs, prepareNode, startNode } from './kubernetes/index.js';

const QEMU = 'qemu-system-x86_64';

export interface UpOptions {
  memoryMiB?: number;
  cpus?: number;
  paging?: 4 | 5;
  shares?: string[];
  virtiofs?: string[];
  bootTimeoutMs?: number;
  /** Bring the guest up as a Kubernetes node on this containerd (kubernetes/node.ts), with `ovmigrate serve` for it. */
  kubernetes?: NodeContainerd;
  /** `6.1` (default), `6.12`, with an optional flavour: `6.12-cloud`, `6.1-rt` (see kernel-packages.ts). */
  kernel?: string;
}

/**
 * A node's RAM: measured 346-371 MiB in use with one pod (kubelet ~80 MiB RSS, ovmigrate-cri and each node shim
 * ~60 MiB) besides its tmpfs root and state, where checkpoint archives land too; 1024 would do for one pod.
 */
const NODE_MEMORY_MIB = 1536;

/** Boots a lab guest and returns once a command can run in it. */
export async function up(name: string, opts: UpOptions = {}): Promise<GuestState> {
  const spec = checkSpec(name, opts);
  const paths = guestPaths(name);
  const old = readState(name);
  if (old && isAlive(old.keeperPid)) throw new AlreadyExistsError(`lab guest ${name} is already running (qemu pid ${old.qemuPid})`);
  removeLeftovers(name);

  const kernel = await ensureKernel(parseKernelChoice(spec.kernelChoice));
  const initramfs = await ensureInitramfs(kernel);
  spec.rootShare = rootShare(kernel);
  if (spec.rootShare !== '9p' && spec.shares.length) {
    throw new InvalidArgumentError(`kernel ${kernel.version} has no 9p (Debian's cloud flavour): give --virtiofs instead of --share`);
  }
  fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  let node: NodeDirs | undefined;
  if (spec.kubernetes) {
    node = await prepareNode(name, spec.kubernetes);
    spec.shares.push(node.images, node.files);
  }
  const options: KeeperOptions = {
    spec, qemu: QEMU, args: qemuArgs(spec, paths, kernel, initramfs), kernel: kernel.version,
    ...(node ? { backend: { images: node.images, staging: node.staging, log: node.backendLog } } : {}),
  };
  log.debug('starting lab guest', { name, args: options.args.join(' ') });

  log.info(`booting lab guest ${name} (${kernel.version}, ${spec.memoryMiB} MiB, ${spec.cpus} vCPUs, ${spec.paging}-level paging)`);
  const started = Date.now();
  const keeperLog = fs.openSync(paths.keeperLog, 'a');
  const keeper = spawn(process.execPath, [path.join(__dirname, 'keeper-main.js'), JSON.stringify(options)], {
    detached: true,
    stdio: ['ignore', 'pipe', keeperLog],
  });
  fs.closeSync(keeperLog);
  const report = await readReport(keeper.stdout!, paths.keeperLog);
  keeper.unref();
  if (!report.ok) throw new ExternalError(`lab guest ${name} failed to start: ${report.error}`);
  log.info(`lab guest ${name} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (node && spec.kubernetes) await upNode(name, node, spec.kubernetes);
  return report.state;
}

/** The node's parts in the booted guest; a node that does not come up is stopped, its logs in the error. */
async function upNode(name: string, node: NodeDirs, containerd: NodeContainerd): Promise<void> {
  const started = Date.now();
  try {
    const t = await startNode(name, node, containerd);
    log.info(`lab node ${name}: kubelet healthy in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
      `(containerd, images and ovmigrate-cri ${t.cri.toFixed(1)} s, kubelet ${t.kubelet.toFixed(1)} s)`);
  } catch (err) {
    const logs = await nodeLogs(name).catch(() => '(no logs)');
    await down(name).catch(() => undefined);
    throw new ExternalError(`lab guest ${name} did not come up as a Kubernetes node: ${errorMessage(err)}\n${logs}`, { cause: err });
  }
}

function readReport(stream: NodeJS.ReadableStream, keeperLog: string): Promise<KeeperReport> {
  return new Promise((resolve) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => { text += chunk; });
    stream.on('end', () => {
      try {
        resolve(JSON.parse(text) as KeeperReport);
      } catch {
        resolve({ ok: false, error: `the keeper ended without a report:\n${consoleTail(keeperLog)}` });
      }
    });
  });
}

function checkSpec(name: string, opts: UpOptions): GuestSpec {
  const spec: GuestSpec = {
    name: checkName(name),
    memoryMiB: opts.memoryMiB ?? 1024,
    cpus: opts.cpus ?? 2,
    paging: opts.paging ?? 5,
    shares: (opts.shares ?? []).map((s) => path.resolve(s)),
    virtiofs: (opts.virtiofs ?? []).map((s) => path.resolve(s)),
    bootTimeoutMs: opts.bootTimeoutMs ?? 120_000,
    ...(opts.kubernetes ? { kubernetes: opts.kubernetes } : {}),
    kernelChoice: kernelChoiceName(parseKernelChoice(opts.kernel ?? kernelChoiceName(DEFAULT_KERNEL))),
  };
  if (opts.kubernetes && opts.memoryMiB === undefined) spec.memoryMiB = NODE_MEMORY_MIB;
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 256 || spec.memoryMiB > 16384) {
    throw new InvalidArgumentError(`--memory ${spec.memoryMiB}: give MiB between 256 and 16384`);
  }
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1 || spec.cpus > 8) throw new InvalidArgumentError(`--cpus ${spec.cpus}: give 1 to 8`);
  if (spec.paging !== 4 && spec.paging !== 5) throw new InvalidArgumentError(`--paging ${String(spec.paging)}: give 4 or 5`);
  for (const [what, dirs] of [['--share', spec.shares], ['--virtiofs', spec.virtiofs]] as const) {
    for (const dir of dirs) {
      checkPath(what, dir);
      if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new NotFoundError(`${what} ${dir}: no such directory`);
    }
  }
  return spec;
}

/** Files of an earlier guest of that name whose keeper is gone. */
function removeLeftovers(name: string): void {
  const paths = guestPaths(name);
  const state = readState(name);
  if (state && isAlive(state.qemuPid)) process.kill(state.qemuPid, 'SIGKILL');
  removeVmDescription(name);
  fs.rmSync(paths.dir, { recursive: true, force: true });
  fs.rmSync(paths.memory, { force: true });
}

/** Stops a lab guest and waits until its QEMU is gone and its files are removed. */
export async function down(name: string, timeoutMs = 15_000): Promise<void> {
  const paths = guestPaths(name);
  const state = readState(name);
  if (!state && !fs.existsSync(paths.dir) && !fs.existsSync(paths.memory)) throw new NotFoundError(`no lab guest named ${name}`);
  if (state && isAlive(state.keeperPid)) {
    process.kill(state.keeperPid, 'SIGTERM');
    const deadline = Date.now() + timeoutMs;
    while ((isAlive(state.keeperPid) || isAlive(state.qemuPid)) && Date.now() < deadline) await sleep(50);
  }
  if (state && isAlive(state.qemuPid)) {
    log.warn(`lab guest ${name}: QEMU ${state.qemuPid} still running; killing it`);
    process.kill(state.qemuPid, 'SIGKILL');
  }
  if (state && isAlive(state.keeperPid)) process.kill(state.keeperPid, 'SIGKILL');
  removeLeftovers(name);
}

/** Every lab guest with a state directory or a memory file. */
export function list(): { name: string; running: boolean; state?: GuestState }[] {
  const names = new Set<string>();
  if (fs.existsSync(labRoot())) for (const entry of fs.readdirSync(labRoot())) names.add(entry);
  for (const entry of fs.readdirSync('/dev/shm')) {
    const m = /^ovmigrate-lab-(.+)\.mem$/.exec(entry);
    if (m) names.add(m[1]);
  }
  return [...names].sort().flatMap((name) => {
    try {
      checkName(name);
    } catch {
      return [];
    }
    const state = readState(name);
    return [{ name, running: !!state && isAlive(state.qemuPid), state }];
  });
}

export function requireGuest(name: string): GuestState {
  const state = readState(name);
  if (!state || !isAlive(state.qemuPid)) throw new NotFoundError(`no running lab guest named ${name} (see: lab ls)`);
  return state;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
