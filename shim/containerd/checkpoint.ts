import fs from 'node:fs';
import path from 'node:path';
import { BadDataError, FailedPreconditionError, InvalidArgumentError, UnsupportedError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { BACKEND_PORT, IMAGE_NAME, MAX_CONFIG_BYTES } from '../../common/backend-api.js';
import type { BackendClient } from '../channel/client.js';
import { findVirtioPort } from '../channel/virtio-port.js';
import { ArchiveOptions, Placement, placeArchive, readArchiveEntries } from './archive-checkpoint.js';
import { Freezer } from './freezer.js';
import type { Runc } from './runc.js';

/** Where the shim's settings live in the guest (OVMIGRATE_SHIM_CONFIG overrides). */
export const CONFIG_FILE = '/etc/ovmigrate/shim.json';

export interface ShimConfig {
  /** Where the host's image share is mounted in this guest (the backend's --images DIR). */
  images?: string;
  /** With no backend answering: checkpoint with CRIU in the guest (runc checkpoint), or refuse. */
  fallback: 'criu' | 'refuse';
  /** How long the backend gets to say hello before it counts as absent. */
  helloTimeoutMs: number;
  /** How long a checkpoint may take on the host. */
  checkpointTimeoutMs: number;
}

export function loadConfig(file = process.env.OVMIGRATE_SHIM_CONFIG ?? CONFIG_FILE): ShimConfig {
  const config: ShimConfig = { fallback: 'criu', helloTimeoutMs: 2000, checkpointTimeoutMs: 600_000 };
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return config;
  }
  let parsed: Partial<ShimConfig>;
  try {
    parsed = JSON.parse(text) as Partial<ShimConfig>;
  } catch (err) {
    throw new BadDataError(`${file} is not JSON: ${errorMessage(err)}`);
  }
  if (parsed.fallback !== undefined && parsed.fallback !== 'criu' && parsed.fallback !== 'refuse') {
    throw new InvalidArgumentError(`${file}: fallback must be "criu" or "refuse", not ${JSON.stringify(parsed.fallback)}`);
  }
  return { ...config, ...parsed };
}

/** containerd's runc CheckpointOptions, as decoded (snake_case). */
export interface CheckpointOptions {
  exit?: boolean;
  open_tcp?: boolean;
  external_unix_sockets?: boolean;
  terminal?: boolean;
  file_locks?: boolean;
  empty_namespaces?: string[];
  cgroups_mode?: string;
  work_path?: string;
  /** Ours, from the guest's CRI layer: the result is one archive the host writes (archive-checkpoint.ts). */
  archive?: ArchiveOptions;
}

export interface CheckpointJob {
  id: string;
  bundle: string;
  runc: Runc;
  cgroup: string;
  /** The directory containerd named for the images (containerd's own is empty; a user's image_path may not be). */
  target: string;
  options: CheckpointOptions;
  /** The container's freeze state and turn-taking (a new one when not given). */
  freezer?: Freezer;
}

function freezerOf(job: CheckpointJob): Freezer {
  return job.freezer ?? new Freezer(job.runc, job.id, job.bundle);
}

/** What one checkpoint cost, for logs and the benchmark. */
export interface CheckpointReport {
  via: 'backend' | 'criu';
  frozenMs: number;
  totalMs: number;
  backendMs?: number;
  copyMs?: number;
  /** How an archive the host wrote came into the target. */
  archive?: Placement;
}

/** Whether the VM has the channel to a host backend at all (a virtio-serial port of that name). */
export function backendPortPresent(): boolean {
  try {
    findVirtioPort(BACKEND_PORT);
    return true;
  } catch {
    return false;
  }
}

/**
 * Connects to the guest's relay to the backend, starting it when it is not
 * running. Loaded on first use: most shims never checkpoint, and each starts
 * a node. A relay just started may take seconds to listen in a busy guest.
 */
export async function connectBackend(): Promise<BackendClient> {
  const { BackendClient: Client } = await import('../channel/client.js');
  return Client.connect({ startTimeoutMs: 30_000 });
}

/** How a Checkpointer reaches the backend (tests give their own). */
export interface BackendAccess {
  portPresent(): boolean;
  connect(): Promise<BackendClient>;
}

/**
 * Checkpoint out of the VM: freeze the container (runc pause), have the
 * host's backend dump it from guest RAM onto the shared image directory,
 * copy the images to where containerd wants them, thaw (or kill, with
 * exit). Whatever fails, the container is thawed (a thaw that keeps failing is
 * the error) and what the shim wrote into the target is removed, nothing else.
 * With no backend: in-guest CRIU through runc, or a refusal, per config.
 */
export class Checkpointer {
  /** The config is read at each checkpoint: a change applies to running shims too. */
  constructor(
    private readonly configFile?: string,
    private readonly access: BackendAccess = { portPresent: backendPortPresent, connect: connectBackend },
  ) {}

  /** One at a time with the container's Pause, Resume, Kill and Delete (its freezer). */
  checkpoint(job: CheckpointJob): Promise<CheckpointReport> {
    const freezer = freezerOf(job);
    return freezer.exclusive(() => this.checkpointNow({ ...job, freezer }));
  }

  private async checkpointNow(job: CheckpointJob): Promise<CheckpointReport> {
    const started = Date.now();
    const config = loadConfig(this.configFile);
    const reached = await this.reachBackend(config);
    if (typeof reached === 'string') {
      // Said through containerd and the CRI to whoever asked: the backend, why it is out of reach, and the config's choice.
      if (config.fallback === 'refuse') {
        throw new FailedPreconditionError(`no ovmigrate backend answers on this VM's channel: the backend is unreachable (${reached}), and the shim's config says fallback "refuse" (no CRIU in the guest)`);
      }
      log.warn(`${job.id}: no ovmigrate backend answers; checkpointing with CRIU in the guest (runc checkpoint): the backend is unreachable (${reached})`);
      return this.inGuest(job, started);
    }
    const backend = reached;
    try {
      return await this.viaBackend(job, backend, started, config);
    } finally {
      backend.close();
    }
  }

  /** A client of a backend that said hello, or why there is none. */
  private async reachBackend(config: ShimConfig): Promise<BackendClient | string> {
    if (!this.access.portPresent()) {
      log.info(`this VM has no ${BACKEND_PORT} channel to a backend`);
      return `this VM has no ${BACKEND_PORT} channel to a backend`;
    }
    let client: BackendClient | undefined;
    try {
      client = await this.access.connect();
      await client.hello({ timeoutMs: config.helloTimeoutMs });
      return client;
    } catch (err) {
      log.info(`backend not reachable: ${errorMessage(err)}`);
      client?.close();
      return `no answer on the ${BACKEND_PORT} channel: ${errorMessage(err)}`;
    }
  }

  private async viaBackend(job: CheckpointJob, backend: BackendClient, started: number, shim: ShimConfig): Promise<CheckpointReport> {
    const images = shim.images;
    if (!images) throw new FailedPreconditionError(`the shim's config (${CONFIG_FILE}) names no "images" directory: where the host's image share is mounted`);
    // open_tcp, external_unix_sockets and file_locks only permit what CRIU would otherwise refuse (containerd sets
    // file_locks for every ctr containers checkpoint); the backend refuses such state itself, naming it.
    // open_tcp reaches the backend only with exit: CRIU keeps dumped connections in repair mode, silent until it
    // kills the tree; from outside the guest they stay live, so only a container killed at once may have them
    // dumped for repair. Without exit the backend refuses connected TCP as before, naming each socket.
    const tcpEstablished = !!(job.options.open_tcp && job.options.exit);
    const config = fs.readFileSync(path.join(job.bundle, 'config.json'));
    // Said here, before the freeze: the channel would only drop a request this large.
    if (config.length > MAX_CONFIG_BYTES) {
      throw new UnsupportedError(`config.json of container ${job.id}: ${config.length} bytes, more than the ${MAX_CONFIG_BYTES} the host's backend takes`);
    }
    const archive = job.options.archive;
    const archiveReq = archive ? await readArchiveEntries(job.target, archive, config.length) : undefined;
    // Without an archive from the host, the images go where the CRI layer tars them itself.
    const imagesTarget = archive ? path.join(job.target, archive.images) : job.target;
    let placement: Placement | undefined;
    const freezer = freezerOf(job);
    let frozen = await freezer.freeze();
    const frozenAt = Date.now();
    let name: string | undefined;
    let backendMs = 0;
    let copyMs = 0;
    let frozenMs = 0;
    const written: string[] = [];
    const thaw = async () => {
      await freezer.thaw();
      frozen = false;
      frozenMs = Date.now() - frozenAt;
    };
    let failure: unknown;
    try {
      const t = Date.now();
      const reply = await backend.checkpoint({ id: job.id, cgroup: job.cgroup, config, archive: archiveReq, ...(tcpEstablished ? { tcp_established: true } : {}) },
        { timeoutMs: shim.checkpointTimeoutMs });
      backendMs = Date.now() - t;
      name = reply.name;
      if (!IMAGE_NAME.test(name)) throw new BadDataError(`the backend named its image directory ${JSON.stringify(name)}`);
      // The images are whole on the share once the backend answers: a container that goes on need not wait for
      // the copy. One that is to exit dies only once its images are where containerd wants them.
      if (frozen && !job.options.exit) await thaw();
      const c = Date.now();
      if (archive && reply.archive_bytes > 0n) {
        placement = await placeArchive(path.join(images, name), path.join(job.target, archive.file), reply.archive_bytes);
        written.push(archive.file);
      } else {
        await copyImages(path.join(images, name), imagesTarget, written);
      }
      copyMs = Date.now() - c;
      if (job.options.exit) await job.runc.kill(job.id, 9, true);
    } catch (err) {
      failure = err;
    }
    // A failed thaw is the checkpoint's error (and the marker stays, so delete thaws).
    if (frozen) {
      await thaw().catch((err: unknown) => {
        log.error(`${job.id}: thawing after the checkpoint: ${errorMessage(err)}`);
        failure ??= err;
      });
    }
    if (name) await backend.release(name).catch((e: unknown) => log.warn(`releasing image directory ${name}: ${errorMessage(e)}`));
    if (failure !== undefined) {
      await removeWritten(placement ? job.target : imagesTarget, written);
      throw failure;
    }
    const report: CheckpointReport = { via: 'backend', frozenMs, totalMs: Date.now() - started, backendMs, copyMs, ...(placement ? { archive: placement } : {}) };
    log.info(`${job.id}: checkpointed out of the VM into ${job.target}`, report);
    return report;
  }

  private async inGuest(job: CheckpointJob, started: number): Promise<CheckpointReport> {
    const o = job.options;
    const extra = [
      ...(o.open_tcp ? ['--tcp-established'] : []),
      ...(o.external_unix_sockets ? ['--ext-unix-sk'] : []),
      ...(o.terminal ? ['--shell-job'] : []),
      ...(o.file_locks ? ['--file-locks'] : []),
      ...(o.empty_namespaces ?? []).flatMap((ns) => ['--empty-ns', ns]),
      ...(o.cgroups_mode ? ['--manage-cgroups-mode', o.cgroups_mode] : []),
    ];
    const workPath = o.work_path || path.join(job.bundle, 'criu-work');
    // No archive without the host: the images go where the CRI layer tars them itself.
    if (o.archive) job = { ...job, target: path.join(job.target, o.archive.images) };
    fs.mkdirSync(workPath, { recursive: true });
    // runc writes into the target itself: what was there before is the user's, and stays.
    const before = new Set(await fs.promises.readdir(job.target).catch(() => [] as string[]));
    try {
      await job.runc.checkpoint(job.id, job.bundle, { imagePath: job.target, workPath, leaveRunning: !o.exit, extra });
    } catch (err) {
      const made = (await fs.promises.readdir(job.target).catch(() => [] as string[])).filter((n) => !before.has(n));
      await removeWritten(job.target, made);
      throw err;
    }
    const totalMs = Date.now() - started;
    const report: CheckpointReport = { via: 'criu', frozenMs: totalMs, totalMs };
    log.info(`${job.id}: checkpointed with CRIU in the guest into ${job.target}`, report);
    return report;
  }
}

/**
 * Copies the images (regular files only) from the share into containerd's
 * directory, each under a temporary name first, so that a failed copy never
 * replaced a file of the user's; `written` lists what this put there.
 */
async function copyImages(from: string, to: string, written: string[]): Promise<void> {
  fs.mkdirSync(to, { recursive: true });
  const entries = await fs.promises.readdir(from, { withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile()) throw new BadDataError(`image directory ${from} holds ${entry.name}, which is not a regular file`);
  }
  const names = entries.map((e) => e.name);
  for (const name of names) {
    const temp = `.ovmigrate-${name}.partial`;
    await fs.promises.copyFile(path.join(from, name), path.join(to, temp), fs.constants.COPYFILE_EXCL);
    written.push(temp);
  }
  for (const name of names) {
    await fs.promises.rename(path.join(to, `.ovmigrate-${name}.partial`), path.join(to, name));
    written.splice(written.indexOf(`.ovmigrate-${name}.partial`), 1, name);
  }
}

/** Removes from containerd's directory what the checkpoint put there, and nothing else. */
async function removeWritten(dir: string, names: string[]): Promise<void> {
  for (const name of names) {
    await fs.promises.rm(path.join(dir, name), { recursive: true, force: true })
      .catch((e: unknown) => log.warn(`removing ${path.join(dir, name)}: ${errorMessage(e)}`));
  }
}
