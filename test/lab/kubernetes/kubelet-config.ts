/**
 * The kubelet of a lab node, standalone (no API server, no kubeconfig): pods
 * come only from static manifests, and its API on 10250 takes anyone
 * (anonymous, AlwaysAllow) so that `curl -k -X POST .../checkpoint/...` works
 * inside the node. See reference/cri-kubernetes.md §4.
 */

export const KUBELET_CONFIG_FILE = '/etc/kubernetes/kubelet.json';
export const STATIC_POD_DIR = '/etc/kubernetes/manifests';
/** The kubelet's --root-dir (its default); checkpoints land in <root>/checkpoints. */
export const KUBELET_ROOT = '/var/lib/kubelet';
export const KUBELET_CHECKPOINT_DIR = `${KUBELET_ROOT}/checkpoints`;
export const KUBELET_PORT = 10250;
/** Plain-HTTP health endpoint on loopback: up once the kubelet serves. */
export const KUBELET_HEALTHZ = 'http://127.0.0.1:10248/healthz';
export const KUBELET_LOG = '/run/kubelet.log';

export interface KubeletConfigOptions {
  /** The CRI endpoint (a unix socket path): ovmigrate-cri's. */
  runtimeSocket: string;
}

/**
 * A KubeletConfiguration (kubelet.config.k8s.io/v1beta1) as JSON, which the
 * kubelet's --config reads as it reads YAML.
 */
export function kubeletConfig(opts: KubeletConfigOptions): string {
  return JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    containerRuntimeEndpoint: `unix://${opts.runtimeSocket}`,
    staticPodPath: STATIC_POD_DIR,
    // Without a client the webhook authenticator cannot start, and the kubelet with it.
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: 'AlwaysAllow' },
    // The guest has no network but loopback; 10250 serves TLS with a self-signed certificate the kubelet makes.
    address: '127.0.0.1',
    port: KUBELET_PORT,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    // No systemd in the guest: containerd's runc options keep SystemdCgroup false, so cgroupfs on both sides.
    cgroupDriver: 'cgroupfs',
    failSwapOn: false,
    failCgroupV1: false,
    // A checkpoint out of the VM under TCG takes longer than the 2 min default.
    runtimeRequestTimeout: '10m',
    // The lab guest's root is a tmpfs overlay of the host; its free space says nothing about the node.
    evictionHard: {},
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // ContainerCheckpoint (POST /checkpoint/...) is on by default since 1.30: no feature gate to set.
  }, null, 2) + '\n';
}
