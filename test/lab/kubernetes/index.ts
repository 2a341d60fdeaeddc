export { CNI_BIN_DIR, CNI_BRIDGE, CNI_CONF_FILE, POD_SUBNET, cniConflist, inPodSubnet } from './cni.js';
export { KUBELET_CHECKPOINT_DIR, KUBELET_CONFIG_FILE, KUBELET_LOG, KUBELET_PORT, STATIC_POD_DIR, kubeletConfig } from './kubelet-config.js';
export { NODE_CONTAINERDS, NODE_CRI_SOCKET, NodeContainerd, NodeDirs, NodeTimings, nodeDirs, nodeLogs, prepareNode, startNode } from './node.js';
export { NodeBackendOptions, startNodeBackend } from './node-backend.js';
export { StaticContainer, StaticPod, checkpointUrl, staticPodFile, staticPodManifest, staticPodName } from './static-pod.js';
export { COUNTER, COUNTER_NAME, archivedCount, carryArchive, counterValues, countsInOrder, restoreWithCrictl, stopKubelet } from './restore-pod.js';
