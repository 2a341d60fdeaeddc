import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { NotFoundError, errorMessage } from '../../common/errors.js';
import { log, logSafe } from '../../common/log.js';
import { loadProtos } from '../../common/proto.js';
import {
  CRI_OWN_MOUNTS, DEFAULT_ARCHIVE_LIMITS, RESTORE_ANNOTATION, RESTORE_ROOT, readMetadata, requireBindMounts, unpackArchive,
  type ArchiveLimits, type CheckpointMetadata,
} from '../archive/index.js';
import type { InterceptContext, Intercepts, UnaryIntercept } from './proxy.js';
import { UpstreamStatusError, type UnaryReply, type Upstream } from './upstream.js';
import {
  appendField, dropFields, editField, getField, getNestedString, getRepeated, getString, mapEntry,
} from './wire-fields.js';

/**
 * Restore through CRI CreateContainer, on every containerd version (1.6 has
 * no CRI restore; 2.4 removed it): when config.image.image is a checkpoint
 * archive in the guest (or a checkpoint image, checkpoint-image.ts), the
 * archive is unpacked (hostile input: shim/archive) into RESTORE_ROOT/<id>,
 * and containerd gets a CreateContainer for the checkpoint's own image,
 * with the checkpointed command when the request names none, and an
 * annotation that has our shim restore from that directory instead of
 * starting fresh (StartContainer goes to containerd unchanged). The
 * directory goes with RemoveContainer.
 */

const CREATE = '/runtime.v1.RuntimeService/CreateContainer';
const REMOVE = '/runtime.v1.RuntimeService/RemoveContainer';
const IMAGE_STATUS = '/runtime.v1.ImageService/ImageStatus';

/** CreateContainerRequest.config, and in ContainerConfig: image (ImageSpec: image 1, user_specified_image 18), command, args, mounts (Mount: container_path 1), annotations. */
const F = { config: 2, image: 2, imageName: 1, userImage: 18, command: 3, args: 4, mounts: 7, mountPath: 1, annotations: 10 } as const;
/** The file in a restore directory naming the container it became, for RemoveContainer after a proxy restart. */
const CONTAINER_ID_FILE = 'container-id';

export interface RestoreOptions {
  root?: string;
  limits?: ArchiveLimits;
  /** Tells whether an image reference is a checkpoint image, and unpacks it (checkpoint-image.ts); absent: archives only. */
  checkpointImage?: CheckpointImageSource;
}

/** Where a checkpoint image's files come from. */
export interface CheckpointImageSource {
  /** Whether `ref` is a local checkpoint image (its index/manifest annotation), undefined if not. */
  find(ref: string, ctx: InterceptContext): Promise<string | undefined>;
  /** Unpacks it into `target` (which must not exist) as unpackArchive does. */
  unpack(ref: string, target: string, ctx: InterceptContext): Promise<void>;
}

function annotationKey(entry: Buffer): string {
  return getString(entry, 1) ?? '';
}

/** The request without any client-set restore annotation: only this proxy sets it. */
function stripRestoreAnnotation(request: Buffer): Buffer {
  const config = getField(request, F.config, 'message');
  if (!config || !getRepeated(config, F.annotations).some((e) => annotationKey(e) === RESTORE_ANNOTATION)) return request;
  log.warn(`cri: CreateContainer carried ${RESTORE_ANNOTATION}: dropped (only ovmigrate-cri sets it)`);
  return editField(request, [F.config], (c) => dropFields(c ?? Buffer.alloc(0), F.annotations, (e) => annotationKey(e) === RESTORE_ANNOTATION));
}

export class CriRestore {
  readonly root: string;
  private readonly limits: ArchiveLimits;
  private readonly ImageStatusRequest = loadProtos('cri').lookupType('runtime.v1.ImageStatusRequest');
  private readonly ImageStatusResponse = loadProtos('cri').lookupType('runtime.v1.ImageStatusResponse');

  constructor(private readonly upstream: Upstream, private readonly opts: RestoreOptions = {}) {
    this.root = opts.root ?? RESTORE_ROOT;
    this.limits = opts.limits ?? DEFAULT_ARCHIVE_LIMITS;
  }

  intercepts(): Intercepts {
    return new Map<string, UnaryIntercept>([[CREATE, (r, ctx) => this.create(r, ctx)], [REMOVE, (r, ctx) => this.remove(r, ctx)]]);
  }

  /** The archive a CreateContainer names: an absolute path to a regular file in the guest. */
  private static archivePath(image: string): string | undefined {
    if (!path.isAbsolute(image)) return undefined;
    return fs.statSync(image, { throwIfNoEntry: false })?.isFile() ? image : undefined;
  }

  async create(request: Buffer, ctx: InterceptContext): Promise<UnaryReply> {
    const clean = stripRestoreAnnotation(request);
    const image = getNestedString(clean, [F.config, F.image, F.imageName]) ?? '';
    const archive = CriRestore.archivePath(image);
    const checkpointImage = archive ? undefined : await this.opts.checkpointImage?.find(image, ctx);
    if (!archive && !checkpointImage) return ctx.forward(clean);

    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const dir = path.join(this.root, crypto.randomBytes(12).toString('hex'));
    try {
      if (archive) await unpackArchive(fs.createReadStream(archive), dir, archive, this.limits);
      else await this.opts.checkpointImage!.unpack(image, dir, ctx);
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const meta = readMetadata(dir, this.limits.maxMetadataBytes);
      const config = getField(clean, F.config, 'message') ?? Buffer.alloc(0);
      const mounts = getRepeated(config, F.mounts).map((m) => getString(m, F.mountPath) ?? '');
      requireBindMounts(meta.spec, [...mounts, ...CRI_OWN_MOUNTS], 'the CreateContainer request');
      const ref = await this.localImage(meta, ctx);
      log.info(`cri: CreateContainer restores ${logSafe(meta.config.name || meta.config.id)} from ${logSafe(image)} (image ${logSafe(ref)}) via ${dir}`);
      const reply = await ctx.forward(editField(clean, [F.config], (c) => rewriteConfig(c ?? Buffer.alloc(0), meta, ref, dir)));
      const id = getString(reply.response, 1) ?? '';
      fs.writeFileSync(path.join(dir, CONTAINER_ID_FILE), id, { mode: 0o600, flag: 'wx' });
      return reply;
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The first of the checkpoint's image names present in the guest; NotFound when none is (nothing is pulled). */
  private async localImage(meta: CheckpointMetadata, ctx: InterceptContext): Promise<string> {
    const { config } = meta;
    const refs = [...new Set([config.rootfsImageRef, config.rootfsImageName, meta.statusImage, config.rootfsImage].filter((r) => r))];
    for (const ref of refs) {
      const req = Buffer.from(this.ImageStatusRequest.encode(this.ImageStatusRequest.fromObject({ image: { image: ref } })).finish());
      const reply = await this.upstream.unary(IMAGE_STATUS, req, ctx);
      const status = this.ImageStatusResponse.decode(reply.response) as unknown as { image?: { id?: string } };
      if (status.image?.id) return ref;
    }
    throw new NotFoundError(`the checkpoint's image is not in this guest (${refs.map((r) => JSON.stringify(r)).join(', ')}): `
      + 'import or pull it before restoring');
  }

  /** RemoveContainer, then the restore directory of that container if it has one. */
  async remove(request: Buffer, ctx: InterceptContext): Promise<UnaryReply> {
    const id = getString(request, 1) ?? '';
    try {
      const reply = await ctx.forward(request);
      if (id) this.forget(id);
      return reply;
    } catch (err) {
      // A container containerd no longer knows leaves its directory behind otherwise.
      if (id && err instanceof UpstreamStatusError && err.status.code === grpc.status.NOT_FOUND) this.forget(id);
      throw err;
    }
  }

  /** Removes the restore directories of container `id` (found by their container-id file; the root is ours, 0700). */
  forget(id: string): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.root);
    } catch {
      return;
    }
    for (const name of names.slice(0, 10_000)) {
      const dir = path.join(this.root, name);
      let owner = '';
      try {
        const fd = fs.openSync(path.join(dir, CONTAINER_ID_FILE), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
        try {
          const buf = Buffer.alloc(256);
          owner = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        continue;
      }
      if (owner !== id) continue;
      try {
        fs.rmSync(dir, { recursive: true, force: true });
        log.info(`cri: removed ${dir}, the restore directory of ${logSafe(id)}`);
      } catch (err) {
        log.warn(`cri: removing ${dir}: ${errorMessage(err)}`);
      }
    }
  }
}

/** ContainerConfig for containerd: the checkpoint's image, its command when none is asked for, and our annotation. */
function rewriteConfig(config: Buffer, meta: CheckpointMetadata, ref: string, dir: string): Buffer {
  let out = editField(config, [F.image, F.imageName], () => Buffer.from(ref));
  if (getNestedString(out, [F.image, F.userImage]) !== undefined) out = editField(out, [F.image, F.userImage], () => Buffer.from(ref));
  if (getRepeated(out, F.command).length === 0 && getRepeated(out, F.args).length === 0) {
    for (const arg of meta.spec.args) out = appendField(out, F.command, Buffer.from(arg));
  }
  return appendField(out, F.annotations, mapEntry(RESTORE_ANNOTATION, dir));
}

