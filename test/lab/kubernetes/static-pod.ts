import { KUBELET_PORT, STATIC_POD_DIR } from './kubelet-config.js';

/**
 * Static pods of a lab node: manifests the kubelet reads from its
 * staticPodPath. Images are the lab's local ones (imported into containerd's
 * k8s.io namespace), so pulls are never tried.
 */

export interface StaticContainer {
  name: string;
  image: string;
  command: string[];
}

export interface StaticPod {
  name: string;
  /** Empty: the kubelet puts a static pod in `default`. */
  namespace?: string;
  containers: StaticContainer[];
}

/** A Pod manifest as JSON (the kubelet's file source decodes JSON as YAML). */
export function staticPodManifest(pod: StaticPod): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: pod.name, ...(pod.namespace ? { namespace: pod.namespace } : {}) },
    spec: {
      // A checkpointed container must not be restarted behind the test's back.
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: pod.containers.map((c) => ({ name: c.name, image: c.image, imagePullPolicy: 'Never', command: c.command })),
    },
  }, null, 2) + '\n';
}

export function staticPodFile(name: string): string {
  return `${STATIC_POD_DIR}/${name}.json`;
}

/** The kubelet names a static pod `<name>-<node name, lowercased>`. */
export function staticPodName(name: string, node: string): string {
  return `${name}-${node.toLowerCase()}`;
}

/** The kubelet checkpoint API's URL for a static pod's container (from inside the node). */
export function checkpointUrl(pod: StaticPod, node: string, container: string): string {
  return `https://127.0.0.1:${KUBELET_PORT}/checkpoint/${pod.namespace ?? 'default'}/${staticPodName(pod.name, node)}/${container}`;
}
