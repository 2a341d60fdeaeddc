import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ExternalError, NotFoundError } from '../../common/errors.js';
import { ContainerdV2Program, startGuestContainerdV2 } from './containerd-v2.js';
import { CniDirs, ContainerdLine, criConfigLines } from './cri-config.js';
import { execCapture } from './exec-client.js';
import { PAUSE_IMAGE } from './pause-image.js';
import { projectRoot } from './paths.js';

const run = promisify(execFile);

/** The directory holding containerd-shim-ovmigrate-v1 (the guest sees the checkout at the same path). */
export const SHIM_BIN = path.join(projectRoot, 'shim', 'bin');

/** The CRI plugin in a lab guest's containerd. */
export interface GuestCriOptions {
  line?: ContainerdLine;
  /** CNI plugins and network configs (a Kubernetes node's bridge); without them pods use the node's network. */
  cni?: CniDirs;
  /** Line 2: which pinned containerd 2.x runs (default `containerd`, v2.3). */
  v2Program?: ContainerdV2Program;
}

/**
 * containerd in a lab guest, state on the guest's tmpfs, our shim on its
 * PATH; the CRI plugin off unless asked (then: pods in the node's network
 * unless CNI dirs are given, our pause image, our runtime the default, CRI annotations io.ovmigrate.*
 * reaching the OCI spec). Other clients keep to their own namespaces; the
 * CRI's is k8s.io.
 * A shim is a node program: under TCG its `delete` after a dead shim can outlast containerd's 5 s cleanup
 * timeout, and containerd then leaves the container's bundle, runc state and (paused) processes behind.
 */
export function guestContainerdConfig(cri?: GuestCriOptions): string {
  return [
    'version = 2',
    ...(cri ? [] : ['disabled_plugins = ["io.containerd.grpc.v1.cri"]']),
    '[timeouts]',
    '  "io.containerd.timeout.shim.cleanup" = "60s"',
    '  "io.containerd.timeout.shim.load" = "60s"',
    // With the CRI, every list and status asks each task's State, which containerd 1.6 gives 2 s (services/tasks):
    // a node shim under TCG on a loaded host can take longer, and a sandbox whose State timed out has pid 0, so a
    // container created in it fails on /proc/0/ns (seen in a lab Kubernetes node).
    ...(cri ? ['  "io.containerd.timeout.task.state" = "60s"'] : []),
    ...(cri ? criConfigLines({
      line: cri.line,
      cni: cri.cni,
      sandboxImage: PAUSE_IMAGE,
      runtimes: [{ name: 'ovmigrate', type: 'io.containerd.ovmigrate.v1', containerAnnotations: ['io.ovmigrate.*'] }],
    }) : []),
    '',
  ].join('\n');
}

/** Runs a shell script in a lab guest; a non-zero exit throws with its output. */
export async function guestScript(guest: string, script: string, timeoutMs = 300_000): Promise<string> {
  const r = await execCapture(guest, ['sh', '-c', script], { timeoutMs });
  if (r.exitCode !== 0) throw new ExternalError(`in ${guest}: exit ${r.exitCode}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/**
 * Starts containerd in the guest (once, with the CRI plugin if asked; log in /run/containerd.log) and waits until ctr
 * reaches it. CRI line 2 is containerd 2.x from the components cache, always with its CRI (containerd-v2.ts).
 */
export async function startGuestContainerd(guest: string, opts: { cri?: GuestCriOptions } = {}): Promise<void> {
  if (opts.cri?.line === '2') return startGuestContainerdV2(guest, { cni: opts.cri.cni, program: opts.cri.v2Program });
  await guestScript(guest, `
    ctr version >/dev/null 2>&1 && exit 0
    mkdir -p /etc/containerd && printf '%s' '${guestContainerdConfig(opts.cri)}' > /etc/containerd/config.toml
    PATH=${SHIM_BIN}:$PATH setsid containerd </dev/null >/run/containerd.log 2>&1 &
    for i in $(seq 150); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done
    tail -20 /run/containerd.log; exit 1`, 60_000);
}

/**
 * An OCI archive of an image in a lab guest's containerd, from its content
 * store blob by blob (`ctr content get`): ctr 1.6's `image export` refuses
 * checkpoint images. `work` is a directory the guest and the host share;
 * `ctr image import --no-unpack --all-platforms` takes the archive.
 */
export async function exportGuestImage(guest: string, ref: string, work: string, out: string): Promise<void> {
  const line = (await guestScript(guest, 'ctr image ls')).split('\n').find((l) => l.split(/\s+/)[0] === ref);
  const digest = line?.split(/\s+/)[2];
  if (!digest?.startsWith('sha256:')) throw new NotFoundError(`no image ${ref} in guest ${guest}`);
  const layout = path.join(work, 'layout');
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const hex = (d: string) => d.slice('sha256:'.length);
  await guestScript(guest, `ctr content get ${digest} > ${blobs}/${hex(digest)}`);
  const index = JSON.parse(fs.readFileSync(path.join(blobs, hex(digest)), 'utf8')) as { mediaType?: string; manifests: { digest: string }[] };
  await guestScript(guest, index.manifests.map((m) => `ctr content get ${m.digest} > ${blobs}/${hex(m.digest)}`).join(' && '));
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: index.mediaType ?? 'application/vnd.oci.image.index.v1+json', digest,
      size: fs.statSync(path.join(blobs, hex(digest))).size, annotations: { 'io.containerd.image.name': ref },
    }],
  }));
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await run('tar', ['--sort=name', '-C', layout, '-cf', out, 'oci-layout', 'index.json', 'blobs']);
}
