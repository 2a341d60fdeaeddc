import { BadDataError } from '../errors.js';
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
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the frame at the head of `pending` needs in all, once its header is known. */
  private needed = HEADER_SIZE;
  private failed: FrameError | undefined;

  constructor(private readonly maxMessageSize = MAX_MESSAGE_SIZE) {}

  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Frame[] = [];
    // Concatenate only once a whole header or frame is there, so big frames cost O(n).
    while (this.pendingBytes >= this.needed) {
      const buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
      this.pending = [buf];
      if (this.needed === HEADER_SIZE) this.needed = HEADER_SIZE + this.checkHeader(buf);
      if (buf.length < this.needed) break;
      frames.push({
        streamId: buf.readUInt32BE(4),
        type: buf.readUInt8(8),
        flags: buf.readUInt8(9),
        payload: Buffer.from(buf.subarray(HEADER_SIZE, this.needed)),
      });
      const rest = buf.subarray(this.needed);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
      this.needed = HEADER_SIZE;
    }
    return frames;
  }

  /** Bytes buffered towards the next frame. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** The header's payload length, once its length and type are acceptable. */
  private checkHeader(buf: Buffer): number {
    const length = buf.readUInt32BE(0);
    const streamId = buf.readUInt32BE(4);
    const type = buf.readUInt8(8);
    if (length > this.maxMessageSize) {
      const message = `ttrpc frame on stream ${streamId} announces ${length} bytes, more than ${this.maxMessageSize}`;
      this.failed = new FrameError('oversize', streamId, message);
    } else if (!(type in MessageType)) {
      this.failed = new FrameError('type', streamId, `ttrpc frame on stream ${streamId} has unknown message type ${type}`);
    }
    if (this.failed) {
      this.pending = [];
      this.pendingBytes = 0;
      throw this.failed;
    }
    return length;
  }
}
