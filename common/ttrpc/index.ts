/** ttrpc, containerd's lightweight RPC protocol: framing, unary client and server. */
export { TtrpcClient, connectUnix, type CallOptions } from './client.js';
export { Flags, FrameDecoder, FrameError, HEADER_SIZE, MAX_MESSAGE_SIZE, MessageType, encodeFrame, type Frame } from './frame.js';
export {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  toMetadata,
  type Metadata,
  type RequestMessage,
  type ResponseMessage,
} from './messages.js';
export { type CallContext, type Handler } from './server-connection.js';
export { DEFAULT_MAX_CONCURRENT_REQUESTS, TtrpcServer, type TtrpcServerOptions } from './server.js';
export { StatusCode, TtrpcError, abortedError, statusMessageOf, statusName, statusOf } from './status.js';
export { TypedMethod } from './typed-method.js';
