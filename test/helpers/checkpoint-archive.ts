import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import protobuf from 'protobufjs';

const run = promisify(execFile);

/** containerd 1.6 images/mediatypes.go and container_checkpoint_opts.go. */
const MEDIA = {
  criu: 'application/vnd.containerd.container.criu.checkpoint.criu.tar',
  config: 'application/vnd.containerd.container.checkpoint.config.v1+proto',
  rw: 'application/vnd.oci.image.layer.v1.tar+gzip',
  index: 'application/vnd.oci.image.index.v1+json',
};
const SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

function blob(layout: string, mediaType: string, data: Buffer): Descriptor {
  const hex = crypto.createHash('sha256').update(data).digest('hex');
  fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), data);
  return { mediaType, digest: `sha256:${hex}`, size: data.length, platform: { architecture: 'amd64', os: 'linux' } };
}

/** The container's OCI spec as containerd keeps it: a google.protobuf.Any of its JSON. */
function specAny(specJson: Buffer): Buffer {
  const root = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/any.proto') as protobuf.INamespace);
  const Any = root.lookupType('google.protobuf.Any');
  return Buffer.from(Any.encode(Any.create({ type_url: SPEC_TYPE_URL, value: specJson })).finish());
}

/**
 * An OCI archive holding a containerd checkpoint image, as `ctr containers
 * checkpoint --task --rw` would make it (containerd 1.6 container.go
 * Checkpoint), but with the CRIU part taken from a directory of images:
 * `ctr image import` puts it in a content store, `ctr containers restore
 * --live --rw` restores from it.
 */
export async function buildCheckpointArchive(out: string, o: {
  name: string; image: string; imagesDir: string; spec: Buffer; rwLayer?: Buffer; runtime?: string; snapshotter?: string;
}): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-ckpt-'));
  try {
    const layout = path.join(work, 'layout');
    fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
    const criuTar = path.join(work, 'criu.tar');
    await run('tar', ['--sort=name', '--numeric-owner', '-C', o.imagesDir, '-cf', criuTar, '.']);
    const manifests = [
      ...(o.rwLayer ? [blob(layout, MEDIA.rw, o.rwLayer)] : []),
      blob(layout, MEDIA.criu, fs.readFileSync(criuTar)),
      blob(layout, MEDIA.config, specAny(o.spec)),
    ];
    const index = blob(layout, MEDIA.index, Buffer.from(JSON.stringify({
      schemaVersion: 2,
      manifests,
      annotations: {
        'io.containerd.checkpoint.runtime': o.runtime ?? 'io.containerd.runc.v2',
        'io.containerd.checkpoint.snapshotter': o.snapshotter ?? 'overlayfs',
        'org.opencontainers.image.ref.name': o.image,
      },
    })));
    delete index.platform;
    index.annotations = { 'io.containerd.image.name': o.name };
    fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [index] }));
    fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await run('tar', ['--sort=name', '-C', layout, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

