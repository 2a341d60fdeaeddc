/**
 * containerd's CRI plugin configuration for the lab, written once for the
 * host's test containerd (test/helpers/host-containerd.ts) and the lab
 * guests' (containerd.ts): pods in the node's network (no CNI), our pause
 * image, streaming on loopback, the OOM clamp this machine needs.
 */

/** The containerd release line whose config format is written: 1.6 (version = 2), 2.x (version = 3). */
export type ContainerdLine = '1.6' | '2';

export interface CriRuntime {
  /** The CRI's runtime handler name (RunPodSandbox's runtime_handler; the default one is used when empty). */
  name: string;
  /** containerd's runtime type: io.containerd.runc.v2, io.containerd.ovmigrate.v1. */
  type: string;
  /** runc's options table (runc.v2 only): its state root. */
  runcRoot?: string;
  /**
   * Container annotations (CRI ContainerConfig.annotations) passed into the
   * OCI spec, by prefix glob: containerd passes none unless the runtime lists it.
   */
  containerAnnotations?: string[];
}

export interface CriConfigOptions {
  line?: ContainerdLine;
  sandboxImage: string;
  /** The first is the default runtime. */
  runtimes: CriRuntime[];
  /**
   * Where containerd looks for CNI plugins and network configs: empty ones
   * for pods in the node's network, Debian's plugins and a bridge conflist
   * in a Kubernetes node (test/lab/kubernetes/cni.ts).
   */
  cni?: CniDirs;
  /**
   * containerd 2.x: its own CRI checkpoint (enable_criu) and restore through
   * CreateContainer (enable_experimental_restore_via_create, off by default since v2.2.7/v2.3.4).
   */
  checkpointRestore?: boolean;
  /** With checkpointRestore: false leaves out the restore key (containerd 2.4 removed it). Default true. */
  restoreViaCreate?: boolean;
}

export interface CniDirs {
  binDir: string;
  confDir: string;
}

const quoted = (values: string[]): string => `[${values.map((v) => JSON.stringify(v)).join(', ')}]`;

/** The CRI plugin's tables, as lines of a containerd 1.6 config (version = 2) or a 2.x one (version = 3). */
export function criConfigLines(o: CriConfigOptions): string[] {
  if (o.runtimes.length === 0) throw new Error('the CRI config needs a runtime');
  if (o.line === '2') return criV3Lines(o);
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const lines = [
    `[${cri}]`,
    `  sandbox_image = ${JSON.stringify(o.sandboxImage)}`,
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    // The CRI gives sandboxes oom_score_adj -998; a process here may not lower its own, so clamp to containerd's.
    '  restrict_oom_score_adj = true',
    `[${cri}.containerd]`,
    `  default_runtime_name = ${JSON.stringify(o.runtimes[0].name)}`,
  ];
  for (const r of o.runtimes) {
    lines.push(`[${cri}.containerd.runtimes.${JSON.stringify(r.name)}]`, `  runtime_type = ${JSON.stringify(r.type)}`);
    if (r.containerAnnotations?.length) lines.push(`  container_annotations = ${quoted(r.containerAnnotations)}`);
    if (r.runcRoot) lines.push(`[${cri}.containerd.runtimes.${JSON.stringify(r.name)}.options]`, `  Root = ${JSON.stringify(r.runcRoot)}`);
  }
  if (o.cni) lines.push(`[${cri}.cni]`, `  bin_dir = ${JSON.stringify(o.cni.binDir)}`, `  conf_dir = ${JSON.stringify(o.cni.confDir)}`);
  return lines;
}

/**
 * containerd 2.x splits the CRI plugin: the runtime side
 * (io.containerd.cri.v1.runtime: runtimes, OOM clamp, checkpoint/restore,
 * CNI), the images side (io.containerd.cri.v1.images: the sandbox image is a
 * pinned image) and the server (io.containerd.grpc.v1.cri: streaming).
 */
function criV3Lines(o: CriConfigOptions): string[] {
  const rt = "plugins.'io.containerd.cri.v1.runtime'";
  const lines = [
    `[${rt}]`,
    '  restrict_oom_score_adj = true',
    ...(o.checkpointRestore ? ['  enable_criu = true'] : []),
    ...(o.checkpointRestore && o.restoreViaCreate !== false ? ['  enable_experimental_restore_via_create = true'] : []),
    `[${rt}.containerd]`,
    `  default_runtime_name = ${JSON.stringify(o.runtimes[0].name)}`,
  ];
  for (const r of o.runtimes) {
    lines.push(`[${rt}.containerd.runtimes.${JSON.stringify(r.name)}]`, `  runtime_type = ${JSON.stringify(r.type)}`);
    if (r.containerAnnotations?.length) lines.push(`  container_annotations = ${quoted(r.containerAnnotations)}`);
    if (r.runcRoot) lines.push(`[${rt}.containerd.runtimes.${JSON.stringify(r.name)}.options]`, `  Root = ${JSON.stringify(r.runcRoot)}`);
  }
  if (o.cni) lines.push(`[${rt}.cni]`, `  bin_dirs = ${quoted([o.cni.binDir])}`, `  conf_dir = ${JSON.stringify(o.cni.confDir)}`);
  lines.push(
    "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
    `  sandbox = ${JSON.stringify(o.sandboxImage)}`,
    "[plugins.'io.containerd.grpc.v1.cri']",
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
  );
  return lines;
}
