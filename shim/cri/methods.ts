/**
 * Every method of CRI runtime.v1 (k8s.io/cri-api pkg/apis/runtime/v1/api.proto,
 * as of cri-api v0.37.2), with its streaming kind. The proxy forwards only
 * these paths and answers UNIMPLEMENTED to any other (as the grpc-js server it
 * replaced did), so a method added to the API later is forwarded only once it
 * has a row here.
 */

/** The two kinds the CRI uses: no method streams requests. */
export type CriStreaming = 'unary' | 'server';

export interface CriMethod {
  service: 'RuntimeService' | 'ImageService';
  name: string;
  streaming: CriStreaming;
}

export const CRI_PACKAGE = 'runtime.v1';

const runtime = (name: string, streaming: CriStreaming = 'unary'): CriMethod => ({ service: 'RuntimeService', name, streaming });
const image = (name: string, streaming: CriStreaming = 'unary'): CriMethod => ({ service: 'ImageService', name, streaming });

export const CRI_METHODS: readonly CriMethod[] = [
  runtime('Version'),
  runtime('RunPodSandbox'),
  runtime('StopPodSandbox'),
  runtime('RemovePodSandbox'),
  runtime('PodSandboxStatus'),
  runtime('ListPodSandbox'),
  runtime('StreamPodSandboxes', 'server'),
  runtime('CreateContainer'),
  runtime('StartContainer'),
  runtime('StopContainer'),
  runtime('RemoveContainer'),
  runtime('ListContainers'),
  runtime('StreamContainers', 'server'),
  runtime('ContainerStatus'),
  runtime('UpdateContainerResources'),
  runtime('ReopenContainerLog'),
  runtime('ExecSync'),
  runtime('Exec'),
  runtime('Attach'),
  runtime('PortForward'),
  runtime('ContainerStats'),
  runtime('ListContainerStats'),
  runtime('StreamContainerStats', 'server'),
  runtime('PodSandboxStats'),
  runtime('ListPodSandboxStats'),
  runtime('StreamPodSandboxStats', 'server'),
  runtime('UpdateRuntimeConfig'),
  runtime('Status'),
  runtime('CheckpointContainer'),
  runtime('CheckpointPod'),
  runtime('RestorePod'),
  runtime('GetContainerEvents', 'server'),
  runtime('ListMetricDescriptors'),
  runtime('ListPodSandboxMetrics'),
  runtime('StreamPodSandboxMetrics', 'server'),
  runtime('RuntimeConfig'),
  runtime('UpdatePodSandboxResources'),
  image('ListImages'),
  image('StreamImages', 'server'),
  image('ImageStatus'),
  image('PullImage'),
  image('RemoveImage'),
  image('ImageFsInfo'),
];

/** The gRPC path of a method, as on the wire: /runtime.v1.RuntimeService/Version. */
export function methodPath(m: CriMethod): string {
  return `/${CRI_PACKAGE}.${m.service}/${m.name}`;
}

/** The table by path. */
export const CRI_METHODS_BY_PATH: ReadonlyMap<string, CriMethod> = new Map(CRI_METHODS.map((m) => [methodPath(m), m]));
