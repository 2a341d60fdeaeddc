import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { ArchiveRefusedError, BadDataError, UnsupportedError } from '../../common/errors.js';
import { log, logSafe } from '../../common/log.js';
import { loadProtos } from '../../common/proto.js';
import { DEFAULT_ARCHIVE_LIMITS, unpackArchive, type ArchiveLimits } from '../archive/index.js';
import type { InterceptContext } from './proxy.js';
import type { CheckpointImageSource } from './restore.js';
import { type CallOptions, Upstream, UpstreamStatusError } from './upstream.js';

/**
 * Checkpoint images (an OCI image whose one layer holds a checkpoint
 * archive's files, annotated `org.criu.checkpoint.container.name`, as
 * checkpointctl build, buildah and podman make them), read through
 * containerd's native images and content services on the same socket (a
 * small subset in proto/containerd/services). The CRI's ImageStatus cannot
 * tell: its verbose info is the image config, never the index or manifest
 * annotations, which is where containerd 2.x itself looks
 * (checkIfCheckpointOCIImage reads the target blob).
 */

export const CHECKPOINT_ANNOTATION = 'org.criu.checkpoint.container.name';
/** The CRI's containerd namespace. */
export const CRI_NAMESPACE = 'k8s.io';
/** An index or manifest is small; one that is not is refused before it is read. */
const MAX_MANIFEST = 4 * 1024 * 1024;

const IMAGES_GET = '/containerd.services.images.v1.Images/Get';
const CONTENT_READ = '/containerd.services.content.v1.Content/Read';
const IMAGE_STATUS = '/runtime.v1.ImageService/ImageStatus';

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  platform?: { architecture?: string; os?: string };
  annotations?: Record<string, string>;
}

interface Found {
  name: string;
  layer: Descriptor;
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const GZIP_LAYERS = new Set(['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.docker.image.rootfs.diff.tar.gzip']);
const TAR_LAYERS = new Set(['application/vnd.oci.image.layer.v1.tar', 'application/vnd.docker.image.rootfs.diff.tar']);

export class ContainerdCheckpointImages implements CheckpointImageSource {
  private readonly cri = loadProtos('cri');
  private readonly ctrd = loadProtos('containerd');
  /** Image id -> its checkpoint layer (undefined: not a checkpoint image); ids are content digests, so this never goes stale. */
  private readonly known = new Map<string, Found | undefined>();

  constructor(private readonly upstream: Upstream, private readonly limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS, private readonly namespace = CRI_NAMESPACE) {}

  private opts(ctx: CallOptions): CallOptions {
    const metadata = new grpc.Metadata();
    metadata.set('containerd-namespace', this.namespace);
    return { metadata, deadline: ctx.deadline, signal: ctx.signal };
  }

  private encode(type: string, value: object): Buffer {
    const t = this.cri.lookupType(type);
    return Buffer.from(t.encode(t.fromObject(value)).finish());
  }

  async find(ref: string, ctx: InterceptContext): Promise<string | undefined> {
    try {
      return (await this.resolve(ref, ctx))?.name;
    } catch (err) {
      // containerd's own answer (a bad reference, a blob gone) is for CreateContainer to give, as without us.
      if (!(err instanceof UpstreamStatusError)) throw err;
      log.debug(`cri: ${logSafe(ref)}: not looked at as a checkpoint image: ${logSafe(err.message)}`);
      return undefined;
    }
  }

  async unpack(ref: string, target: string, ctx: InterceptContext): Promise<void> {
    const found = await this.resolve(ref, ctx);
    if (!found) throw new BadDataError(`${ref} is no longer a checkpoint image`);
    const mediaType = found.layer.mediaType ?? '';
    let stream: Readable = Readable.from(this.read(found.layer.digest!, ctx));
    if (GZIP_LAYERS.has(mediaType)) stream = stream.pipe(zlib.createGunzip());
    else if (!TAR_LAYERS.has(mediaType)) throw new UnsupportedError(`checkpoint image ${found.name}: layer of media type ${JSON.stringify(mediaType)}`);
    await unpackArchive(stream, target, found.name, this.limits);
  }

  /** The image's checkpoint layer, when `ref` names a local checkpoint image. */
  private async resolve(ref: string, ctx: InterceptContext): Promise<Found | undefined> {
    if (!ref || ref.startsWith('/')) return undefined;
    const reply = await this.upstream.unary(IMAGE_STATUS, this.encode('runtime.v1.ImageStatusRequest', { image: { image: ref } }), ctx);
    const image = (this.cri.lookupType('runtime.v1.ImageStatusResponse').decode(reply.response) as unknown as {
      image?: { id?: string; repo_tags?: string[]; repo_digests?: string[] };
    }).image;
    if (!image?.id) return undefined;
    if (this.known.has(image.id)) return this.known.get(image.id);
    let found: Found | undefined;
    for (const name of [...(image.repo_tags ?? []), ...(image.repo_digests ?? []), image.id]) {
      const target = await this.target(name, ctx);
      if (!target) continue;
      found = await this.checkpointLayer(name, target, ctx);
      break;
    }
    if (this.known.size > 256) this.known.clear();
    this.known.set(image.id, found);
    return found;
  }

  /** The containerd image's target descriptor, or undefined when containerd has no image of that name. */
  private async target(name: string, ctx: CallOptions): Promise<Descriptor | undefined> {
    const t = this.ctrd.lookupType('containerd.services.images.v1.GetImageRequest');
    try {
      const reply = await this.upstream.unary(IMAGES_GET, Buffer.from(t.encode(t.fromObject({ name })).finish()), this.opts(ctx));
      const got = this.ctrd.lookupType('containerd.services.images.v1.GetImageResponse').decode(reply.response) as unknown as {
        image?: { target?: { media_type: string; digest: string; size: number | { toNumber(): number }; annotations: Record<string, string> } };
      };
      const d = got.image?.target;
      if (!d) return undefined;
      return { mediaType: d.media_type, digest: d.digest, size: Number(d.size), annotations: d.annotations };
    } catch (err) {
      if (err instanceof UpstreamStatusError && err.status.code === grpc.status.NOT_FOUND) return undefined;
      throw err;
    }
  }

  /** An index or manifest blob, parsed; bounded. */
  private async json(d: Descriptor, ctx: CallOptions): Promise<{ mediaType?: string; manifests?: Descriptor[]; layers?: Descriptor[]; annotations?: Record<string, string> }> {
    if (!d.digest || !/^sha256:[0-9a-f]{64}$/.test(d.digest)) throw new BadDataError(`bad digest ${JSON.stringify(d.digest)}`);
    if ((d.size ?? 0) > MAX_MANIFEST) throw new ArchiveRefusedError(d.digest, `index or manifest of ${d.size} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of this.read(d.digest, ctx)) {
      size += c.length;
      if (size > MAX_MANIFEST) throw new ArchiveRefusedError(d.digest, 'index or manifest too large');
      chunks.push(c);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as never;
    } catch {
      throw new BadDataError(`${d.digest}: not JSON`);
    }
  }

  /** The checkpoint layer when the image (its target, index or manifest) carries the annotation; undefined otherwise. */
  private async checkpointLayer(name: string, target: Descriptor, ctx: CallOptions): Promise<Found | undefined> {
    let marked = CHECKPOINT_ANNOTATION in (target.annotations ?? {});
    let manifest = await this.json(target, ctx);
    marked ||= CHECKPOINT_ANNOTATION in (manifest.annotations ?? {});
    if (INDEX_TYPES.has(target.mediaType ?? '') || manifest.manifests) {
      const list = manifest.manifests ?? [];
      const pick = list.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === 'amd64') ?? (list.length === 1 ? list[0] : undefined);
      if (!pick) return undefined;
      marked ||= CHECKPOINT_ANNOTATION in (pick.annotations ?? {});
      manifest = await this.json(pick, ctx);
      marked ||= CHECKPOINT_ANNOTATION in (manifest.annotations ?? {});
    }
    if (!marked) return undefined;
    const layers = manifest.layers ?? [];
    if (layers.length !== 1) throw new UnsupportedError(`checkpoint image ${name}: ${layers.length} layers (a checkpoint image has one)`);
    return { name, layer: layers[0] };
  }

  /** A blob from containerd's content store, as it streams. */
  private async *read(digest: string, ctx: CallOptions): AsyncGenerator<Buffer> {
    const req = this.ctrd.lookupType('containerd.services.content.v1.ReadContentRequest');
    const res = this.ctrd.lookupType('containerd.services.content.v1.ReadContentResponse');
    const stream = await this.upstream.serverStream(CONTENT_READ, Buffer.from(req.encode(req.fromObject({ digest })).finish()), this.opts(ctx));
    try {
      for await (const message of stream as AsyncIterable<Buffer>) {
        const m = res.decode(message) as unknown as { data: Uint8Array };
        yield Buffer.from(m.data);
      }
    } finally {
      stream.cancel();
    }
  }
}
