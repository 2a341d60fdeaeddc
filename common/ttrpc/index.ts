/** ttrpc, containerd's lightweight RPC protocol: framing, unary client and server. */
export { TtrpcClient, connectUnix, type CallOptions } from './client.js';
export { Flags, FrameDecoder, FrameError, HEADER_SIZE, MAX_MESSAGE_SIZE, MessageType, encodeFrame, type Frame } from './frame.js';
export {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  metadataSize,
  toMetadata,
  type Metadata,
  type RequestMessage,
  type ResponseMessage,
} from './messages.js';
export { type CallContext, type Handler } from './server-connection.js';
export {
  DEFAULT_MAX_CONCURRENT_REQUESTS,
  DEFAULT_MAX_METADATA_BYTES,
  DEFAULT_MAX_METADATA_ENTRIES,
  DEFAULT_PARTIAL_FRAME_TIMEOUT_MS,
  TtrpcServer,
  type TtrpcServerOptions,
} from './server.js';
export { StatusCode, TtrpcError, abortedError, statusMessageOf, statusName, statusOf } from './status.js';
export { TypedMethod } from './typed-method.js';
