import { BadDataError } from '../errors.js';
import { FrameSplitter } from '../frames.js';
import { StatusCode, TtrpcError } from './status.js';

/**
 * ttrpc framing (containerd/ttrpc channel.go, PROTOCOL.md):
 *
 *   u32 BE payload length | u32 BE stream id | u8 message type | u8 flags | payload
 */
export enum MessageType {
  Request = 1,
  Response = 2,
  Data = 3,
}

/** Flag bits as upstream defines them; only data and streaming requests use them. */
export const Flags = {
  RemoteClosed: 0x1,
  RemoteOpen: 0x2,
  NoData: 0x4,
} as const;

export interface Frame {
  streamId: number;
  type: MessageType;
  flags: number;
  payload: Buffer;
}

export const HEADER_SIZE = 10;
/** Upstream's messageLengthMax: larger payloads are refused both ways. */
export const MAX_MESSAGE_SIZE = 4 << 20;
const MAX_UINT32 = 0xffff_ffff;

/** A frame header no peer of ours would send; the connection cannot be trusted after it. */
export class FrameError extends BadDataError {
  constructor(
    readonly kind: 'oversize' | 'type',
    readonly streamId: number,
    message: string,
  ) {
    super(message);
  }
}

/** One frame, header and payload, ready to write. */
export function encodeFrame(streamId: number, type: MessageType, payload: Uint8Array = Buffer.alloc(0), flags = 0): Buffer {
  if (payload.length > MAX_MESSAGE_SIZE) {
    // Upstream's OversizedMessageError carries the same status.
    throw new TtrpcError(StatusCode.RESOURCE_EXHAUSTED, `message length ${payload.length} exceeds maximum message size of ${MAX_MESSAGE_SIZE}`);
  }
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > MAX_UINT32) throw new RangeError(`ttrpc stream id ${streamId} is not a uint32`);
  const frame = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(streamId, 4);
  frame.writeUInt8(type, 8);
  frame.writeUInt8(flags & 0xff, 9);
  frame.set(payload, HEADER_SIZE);
  return frame;
}

/**
 * Pure, synchronous decoder: feed it chunks as they arrive, get whole frames.
 * A bad header throws FrameError as soon as the header is complete, before
 * any of the announced payload is buffered; the decoder then stays failed,
 * since where the next frame starts is unknown.
 */
export class FrameDecoder {
  private readonly splitter: FrameSplitter;

  constructor(maxMessageSize = MAX_MESSAGE_SIZE) {
    this.splitter = new FrameSplitter(HEADER_SIZE, (header) => checkHeader(header, maxMessageSize));
  }

  push(chunk: Buffer): Frame[] {
    return this.splitter.push(chunk).map(({ header, payload }) => ({
      streamId: header.readUInt32BE(4),
      type: header.readUInt8(8),
      flags: header.readUInt8(9),
      payload,
    }));
  }

  /** Bytes buffered towards the next frame. */
  get buffered(): number {
    return this.splitter.buffered;
  }
}

/** The header's payload length, once its length and type are acceptable. */
function checkHeader(header: Buffer, maxMessageSize: number): number {
  const length = header.readUInt32BE(0);
  const streamId = header.readUInt32BE(4);
  const type = header.readUInt8(8);
  if (length > maxMessageSize) {
    throw new FrameError('oversize', streamId, `ttrpc frame on stream ${streamId} announces ${length} bytes, more than ${maxMessageSize}`);
  }
  if (!(type in MessageType)) throw new FrameError('type', streamId, `ttrpc frame on stream ${streamId} has unknown message type ${type}`);
  return length;
}
