import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** Deterministic tar: same bytes for the same input, whatever the clock or umask. */
const TAR_FLAGS = ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--format=posix',
  '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime'];

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

function blob(dir: string, mediaType: string, data: Buffer): Descriptor {
  const hex = crypto.createHash('sha256').update(data).digest('hex');
  fs.writeFileSync(path.join(dir, 'blobs', 'sha256', hex), data);
  return { mediaType, digest: `sha256:${hex}`, size: data.length };
}

/** The image config's `config` part (OCI image-spec config.json). */
export interface OciRunConfig {
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
}

/**
 * Writes an OCI image layout archive of one layer, the directory `root`,
 * named so that `ctr image import` registers it as `name` (containerd reads
 * the io.containerd.image.name annotation of the index entry). Returns the
 * manifest's digest.
 */
export async function packOciImage(root: string, outFile: string, name: string, config: OciRunConfig): Promise<string> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-oci-'));
  try {
    const layout = path.join(work, 'layout');
    fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
    const layerTar = path.join(work, 'layer.tar');
    await run('tar', [...TAR_FLAGS, '-C', root, '-cf', layerTar, '.']);
    const layer = blob(layout, 'application/vnd.oci.image.layer.v1.tar', fs.readFileSync(layerTar));
    const imageConfig = blob(layout, 'application/vnd.oci.image.config.v1+json', Buffer.from(JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config,
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    })));
    const manifest = blob(layout, 'application/vnd.oci.image.manifest.v1+json', Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: imageConfig,
      layers: [layer],
    })));
    manifest.annotations = { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name.split(':').pop()! };
    fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [manifest] }));
    fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await run('tar', [...TAR_FLAGS, '-C', layout, '-cf', outFile, 'oci-layout', 'index.json', 'blobs']);
    return manifest.digest;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
