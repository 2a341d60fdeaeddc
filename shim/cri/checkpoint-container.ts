import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { BadDataError, FailedPreconditionError, errorMessage } from '../../common/errors.js';
import { log, logSafe } from '../../common/log.js';
import { abortedError } from '../../common/ttrpc/index.js';
import { ArchiveParts, checkLocation, configDump, criContainerName, linkExclusive, writeArchive, writeExclusive } from './checkpoint-archive.js';
import { ContainerState, criType, decodeCri, encodeCri, goJson } from './cri-messages.js';
import { prepareCodecs } from '../../common/proto.js';
import { envelopeTypes } from '../../common/ttrpc/messages.js';
import { methodPath } from './methods.js';
import type { InterceptContext, UnaryIntercept } from './proxy.js';
import { STAGED_IMAGES, stageMetadata } from './host-archive.js';
import { type CheckpointNote, PauseGuard } from './pause-guard.js';
import { getField } from './wire-fields.js';
import { overlayUpperDir, writeRootfsDiff } from './rootfs-diff.js';
import { CONTAINERD_STATE, SHIM_TASK_TYPES, ShimTask, taskBundle } from './shim-task.js';
import { TarWriter } from '../../common/tar/index.js';
import type { Upstream } from './upstream.js';

/** The runtime whose containers are checkpointed here; others go to containerd as they came. */
export const OVMIGRATE_RUNTIME = 'io.containerd.ovmigrate.v1';

const CONTAINER_STATUS = methodPath({ service: 'RuntimeService', name: 'ContainerStatus', streaming: 'unary' });
const POD_SANDBOX_STATUS = methodPath({ service: 'RuntimeService', name: 'PodSandboxStatus', streaming: 'unary' });
/** How long the shim's checkpoint may take; the shim bounds its backend call by its own config (10 min by default). */
const SHIM_CHECKPOINT_TIMEOUT_MS = 15 * 60_000;

export interface CheckpointOptions {
  /** containerd's state root (its bundles); /run/containerd. */
  containerdState?: string;
  /** The durable note of each pause (pause-guard.ts); its directory under /run/ovmigrate by default. */
  guard?: PauseGuard;
  /** The rootfs's rw layer (overlayUpperDir; tests give a directory of their own). */
  upperDir?: (rootfs: string) => string;
}

interface Status {
  id: string;
  metadata: { name: string; attempt: number } | null;
  state: number;
  created_at: bigint;
  image: { image: string } | null;
  image_ref: string;
  log_path: string;
}

/** containerd's verbose ContainerStatus info (CRI plugin, "info" key): the fields used here. */
interface VerboseInfo {
  sandboxID?: string;
  runtimeType?: string;
  pid?: number;
}

/** A container as the upstream CRI reports it. */
interface Found {
  raw: Buffer;
  status: Status;
  info: VerboseInfo;
}

async function containerStatus(upstream: Upstream, id: string, ctx: InterceptContext): Promise<Found> {
  const reply = await upstream.unary(CONTAINER_STATUS, encodeCri('ContainerStatusRequest', { container_id: id, verbose: true }), ctx);
  const decoded = decodeCri<{ status: Status | null; info: Record<string, string> }>('ContainerStatusResponse', reply.response);
  if (!decoded.status) throw new BadDataError(`containerd's ContainerStatus of ${id} has no status`);
  let info: VerboseInfo = {};
  try {
    info = JSON.parse(decoded.info.info ?? '{}') as VerboseInfo;
  } catch (err) {
    throw new BadDataError(`containerd's verbose ContainerStatus info of ${id} is not JSON: ${errorMessage(err)}`);
  }
  // status.dump is the status message alone (ContainerStatusResponse.status, field 1), from containerd's bytes.
  return { raw: getField(reply.response, 1, 'message') ?? Buffer.alloc(0), status: decoded.status, info };
}

async function podMetadata(upstream: Upstream, sandboxId: string, ctx: InterceptContext): Promise<{ name: string; namespace: string; uid: string }> {
  const reply = await upstream.unary(POD_SANDBOX_STATUS, encodeCri('PodSandboxStatusRequest', { pod_sandbox_id: sandboxId }), ctx);
  const meta = decodeCri<{ status: { metadata: { name: string; namespace: string; uid: string } | null } | null }>('PodSandboxStatusResponse', reply.response).status?.metadata;
  if (!meta) throw new BadDataError(`containerd's PodSandboxStatus of ${sandboxId} has no metadata`);
  return meta;
}

/**
 * Loads the CRI protos and has protobufjs generate the codecs of every
 * message the checkpoint path reads or writes, nested ones included, and
 * those of its calls to the shim, ahead of the first checkpoint: under TCG,
 * loading and generating them cost a container's first checkpoint seconds
 * of guest CPU in ovmigrate-cri, and most containers are checkpointed once.
 */
export function warmCheckpointCodecs(): void {
  for (const name of ['CheckpointContainerRequest', 'CheckpointContainerResponse', 'ContainerStatusRequest', 'ContainerStatusResponse',
    'PodSandboxStatusRequest', 'PodSandboxStatusResponse']) prepareCodecs(criType(name));
  for (const t of [...SHIM_TASK_TYPES, ...envelopeTypes()]) prepareCodecs(t);
}

/**
 * CheckpointContainer for containers of our runtime: the shim checkpoints
 * through the host's backend (CRIU never runs in the guest) into a staging
 * directory beside `location`, and the archive is written there as
 * containerd 2.x writes it (checkpoint-archive.ts). The container keeps
 * running. As containerd 2.x does, the container stays paused from the
 * images through its rw layer, so that both show one moment; the archive is
 * written after the resume. Any failure resumes it and leaves nothing at
 * `location` nor in staging. A client that gives up (deadline, cancel) gets
 * its status at once; the work underway ends, resumes the container and is
 * removed, as the shim cannot be interrupted mid-checkpoint.
 */
export function checkpointContainer(upstream: Upstream, opts: CheckpointOptions = {}): UnaryIntercept {
  const state = opts.containerdState ?? CONTAINERD_STATE;
  const guard = opts.guard ?? new PauseGuard();
  const upperDir = opts.upperDir ?? overlayUpperDir;
  return async (request, ctx) => {
    const req = decodeCri<{ container_id: string; location: string }>('CheckpointContainerRequest', request);
    const found = await containerStatus(upstream, req.container_id, ctx);
    if (found.info.runtimeType !== OVMIGRATE_RUNTIME) {
      log.debug(`cri: checkpoint of ${logSafe(req.container_id)} (runtime ${logSafe(String(found.info.runtimeType))}) goes to containerd`);
      return ctx.forward(request);
    }
    const id = found.status.id;
    if (found.status.state !== ContainerState.RUNNING) {
      throw new FailedPreconditionError(`container ${id} is ${ContainerState[found.status.state] ?? found.status.state}: only running containers can be checkpointed`);
    }
    checkLocation(req.location);
    if (!found.info.sandboxID) throw new BadDataError(`containerd's verbose ContainerStatus of ${id} names no sandbox`);
    const pod = await podMetadata(upstream, found.info.sandboxID, ctx);
    const started = Date.now();
    let failed: unknown;
    let hostWrote = false;
    const bundle = taskBundle(id, state);
    const note = await guard.begin(id, bundle, req.location);
    const stage = note.stage;
    try {
      await fs.promises.mkdir(stage, { mode: 0o700 });
      const parts = await checkpointInto(id, bundle, stage, found, pod, { guard, note, upperDir });
      if (ctx.signal.aborted) throw abortedError(ctx.signal.reason);
      hostWrote = parts.hostArchive !== undefined;
      if (parts.hostArchive) await linkExclusive(parts.hostArchive, req.location);
      else await writeExclusive(req.location, async (fh) => writeArchive(new TarWriter(fh), parts));
    } catch (err) {
      failed = err;
      throw err;
    } finally {
      await fs.promises.rm(stage, { recursive: true, force: true })
        .catch((err: unknown) => log.warn(`cri: removing staging ${stage}: ${errorMessage(err)}`));
      guard.end(note);
      // Said once everything is removed: a client that gave up learns here what became of its checkpoint.
      if (failed !== undefined) log.warn(`cri: checkpoint of container ${id} into ${logSafe(req.location)} failed, nothing written: ${logSafe(errorMessage(failed))}`);
    }
    log.info(`cri: checkpointed container ${id} out of the VM into ${logSafe(req.location)} in ${Date.now() - started} ms${hostWrote ? ' (the archive written by the host)' : ''}`);
    return { response: encodeCri('CheckpointContainerResponse', {}), headers: new grpc.Metadata(), trailers: new grpc.Metadata() };
  };
}

/**
 * The container paused; its rw layer and the small files staged, then the
 * shim's checkpoint: the host's whole archive (host-archive.ts), or the images
 * for the archive written here; resumed.
 */
async function checkpointInto(
  id: string, bundle: string, stage: string, found: Found, pod: { name: string; namespace: string; uid: string },
  { guard, note, upperDir }: { guard: PauseGuard; note: CheckpointNote; upperDir: (rootfs: string) => string },
): Promise<ArchiveParts & { hostArchive?: string }> {
  const images = path.join(stage, STAGED_IMAGES);
  const rootfsDiff = path.join(stage, 'rootfs-diff.tar');
  const upper = upperDir(path.join(bundle, 'rootfs'));
  const spec = await fs.promises.readFile(path.join(bundle, 'config.json'));
  const s = found.status;
  const statusDump = Buffer.from(goJson('ContainerStatus', found.raw));
  const task = await ShimTask.connect(id, bundle);
  let failure: unknown;
  let configDumped: Buffer = Buffer.alloc(0);
  let hostArchive: string | undefined;
  try {
    // A container the user paused stays paused: only what this paused is resumed.
    const paused = await guard.pause(note, task);
    try {
      // The rw layer and the images show one paused moment, whichever is taken first.
      const checkpointedAt = BigInt(Date.now()) * 1_000_000n;
      configDumped = configDump({
        id,
        name: criContainerName(s.metadata ?? { name: '', attempt: 0 }, pod),
        image: s.image?.image ?? '',
        imageRef: s.image_ref,
        runtime: OVMIGRATE_RUNTIME,
        createdAt: s.created_at,
        checkpointedAt,
      });
      await writeExclusive(rootfsDiff, async (fh) => {
        const tar = new TarWriter(fh);
        await writeRootfsDiff(tar, upper);
        await tar.end();
      });
      const archive = await stageMetadata(stage, { configDump: configDumped, statusDump, containerLog: s.log_path || undefined, rootfsDiff, specBytes: spec.length });
      await task.checkpoint(archive ? stage : images, SHIM_CHECKPOINT_TIMEOUT_MS, archive);
      // No archive from the host (CRIU in the guest, a backend without archives): the images are in STAGED_IMAGES.
      if (archive && fs.existsSync(path.join(stage, archive.file))) hostArchive = path.join(stage, archive.file);
    } catch (err) {
      failure = err;
    }
    if (paused) await guard.resume(note, task).catch((err: unknown) => {
      log.error(`cri: resuming container ${id} after its checkpoint: ${errorMessage(err)}`);
      failure ??= err;
    });
  } finally {
    task.close();
  }
  if (failure !== undefined) throw failure;
  return { images, rootfsDiff, specDump: spec, statusDump, configDump: configDumped, containerLog: s.log_path || undefined, hostArchive };
}
