/** The guest's CRI layer: a runtime.v1 proxy in front of containerd's CRI, with a place for intercepts. */
export { CRI_METHODS, CRI_METHODS_BY_PATH, CRI_PACKAGE, methodPath, type CriMethod, type CriStreaming } from './methods.js';
export { CriProxy, type InterceptContext, type Intercepts, type UnaryIntercept } from './proxy.js';
export { MAX_CRI_MESSAGE, Upstream, UpstreamStatusError, type CallOptions, type UnaryReply, type UpstreamOptions, type UpstreamStream } from './upstream.js';
export {
  GrpcWireError, MessageReader, decodeStatusMessage, encodeStatusMessage, formatTimeout, frameMessage, parseTimeout, statusOfTrailers, trailersOf,
} from './grpc-wire.js';
export { CHECKPOINT_ANNOTATION, ContainerdCheckpointImages, CRI_NAMESPACE } from './checkpoint-image.js';
export { CriRestore, type CheckpointImageSource, type RestoreOptions } from './restore.js';
export {
  appendField, dropFields, editField, getField, getNestedString, getRepeated, getString, mapEntry, scanFields, setField, setString, type WireField,
} from './wire-fields.js';
export { checkpointContainer, OVMIGRATE_RUNTIME, type CheckpointOptions } from './checkpoint-container.js';
export { configDump, criContainerName, goTime, linkExclusive, writeArchive, writeExclusive, type ArchiveParts, type ConfigDumpInput } from './checkpoint-archive.js';
export { CHECKPOINT_NOTES, PauseGuard, type CheckpointNote, type ConnectShim } from './pause-guard.js';
