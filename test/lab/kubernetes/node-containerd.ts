import { PAUSE_IMAGE } from '../pause-image.js';

export interface NodeContainerdOptions {
  cniBinDir: string;
  cniConfDir: string;
}

/**
 * containerd 1.6's config (version 2) in a node: the CRI plugin on, our shim
 * the default runtime for pods, our pause program the sandbox image, pods on
 * the CNI bridge. Same timeouts as the lab's plain containerd (a node shim's
 * `delete` under TCG outlasts the 5 s default).
 */
export function nodeContainerdConfig(o: NodeContainerdOptions): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
[timeouts]
  "io.containerd.timeout.shim.cleanup" = "60s"
  "io.containerd.timeout.shim.load" = "60s"
[${cri}]
  sandbox_image = "${PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # The CRI gives sandboxes oom_score_adj -998, which the lab's runc cannot set: clamp to containerd's own.
  restrict_oom_score_adj = true
[${cri}.containerd]
  default_runtime_name = "ovmigrate"
[${cri}.containerd.runtimes.ovmigrate]
  runtime_type = "io.containerd.ovmigrate.v1"
  container_annotations = ["io.kubernetes.*"]
  pod_annotations = ["io.kubernetes.*"]
[${cri}.cni]
  bin_dir = "${o.cniBinDir}"
  conf_dir = "${o.cniConfDir}"
  max_conf_num = 1
`;
}
