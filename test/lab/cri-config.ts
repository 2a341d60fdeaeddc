/**
 * containerd's CRI plugin configuration for the lab, written once for the
 * host's test containerd (test/helpers/host-containerd.ts) and the lab
 * guests' (containerd.ts): pods in the node's network (no CNI), our pause
 * image, streaming on loopback, the OOM clamp this machine needs.
 */

/** The containerd release line whose config format is written. */
export type ContainerdLine = '1.6';

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
  /** Where containerd looks for CNI plugins and configs (none are put there: pods use the node's network). */
  cniDir?: string;
}

const quoted = (values: string[]): string => `[${values.map((v) => JSON.stringify(v)).join(', ')}]`;

/** The CRI plugin's tables, as lines of a containerd 1.6 config (version = 2). */
export function criConfigLines(o: CriConfigOptions): string[] {
  if ((o.line ?? '1.6') !== '1.6') throw new Error(`no CRI config for containerd ${o.line} yet`);
  if (o.runtimes.length === 0) throw new Error('the CRI config needs a runtime');
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
  if (o.cniDir) lines.push(`[${cri}.cni]`, `  bin_dir = ${JSON.stringify(`${o.cniDir}/bin`)}`, `  conf_dir = ${JSON.stringify(`${o.cniDir}/conf`)}`);
  return lines;
}
