import { BadDataError } from '../../common/errors.js';
import { FrameSplitter } from '../../common/frames.js';

/**
 * Framing of the lab's control channel: the host-side lab keeper talks to
 * the guest agent over a virtio-serial port, and `lab exec` clients talk to
 * the keeper over a unix socket, both with these frames.
 *
 *   u32 BE payload length | u8 type | u32 BE session id | payload
 */
export enum FrameType {
  Ping = 1,
  Pong = 2,
  Exec = 3,
  Stdin = 4,
  StdinEof = 5,
  Stdout = 6,
  Stderr = 7,
  Exit = 8,
  Kill = 9,
}

export interface Frame {
  type: FrameType;
  session: number;
  payload: Buffer;
}

/** What the host asks the guest agent to run. */
export interface ExecRequest {
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Killed (SIGKILL to its process group) after this many milliseconds. */
  timeoutMs?: number;
  /** Forward stdin; otherwise the command's stdin is /dev/null. */
  stdin?: boolean;
}

/** How a command ended. `code` is null when it died by a signal or did not start. */
export interface ExecExit {
  code: number | null;
  signal: string | null;
  timedOut?: boolean;
  error?: string;
}

export const HEADER_SIZE = 9;
/** Largest payload either side accepts; larger frames are a protocol error. */
export const MAX_PAYLOAD = 1 << 20;

export function encodeFrame(type: FrameType, session: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  if (body.length > MAX_PAYLOAD) throw new BadDataError(`lab frame payload of ${body.length} bytes exceeds ${MAX_PAYLOAD}`);
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32BE(body.length, 0);
  header.writeUInt8(type, 4);
  header.writeUInt32BE(session >>> 0, 5);
  return Buffer.concat([header, body]);
}

export function encodeJson(type: FrameType, session: number, value: unknown): Buffer {
  return encodeFrame(type, session, JSON.stringify(value));
}

/** Encodes data of any size as as many frames as needed. */
export function encodeData(type: FrameType, session: number, data: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let off = 0; off < data.length; off += MAX_PAYLOAD) {
    frames.push(encodeFrame(type, session, data.subarray(off, off + MAX_PAYLOAD)));
  }
  return frames;
}

export function decodeJson<T>(frame: Frame): T {
  try {
    return JSON.parse(frame.payload.toString('utf8')) as T;
  } catch (err) {
    throw new BadDataError(`lab frame ${FrameType[frame.type] ?? frame.type} of session ${frame.session} is not JSON`, { cause: err });
  }
}

/** Pure, synchronous decoder: feed it chunks as they arrive, get whole frames. */
export class FrameDecoder {
  private readonly splitter = new FrameSplitter(HEADER_SIZE, (header) => {
    const length = header.readUInt32BE(0);
    const type = header.readUInt8(4);
    if (length > MAX_PAYLOAD) throw new BadDataError(`lab frame announces ${length} bytes, more than ${MAX_PAYLOAD}`);
    if (!(type in FrameType)) throw new BadDataError(`lab frame has unknown type ${type}`);
    return length;
  });

  push(chunk: Buffer): Frame[] {
    return this.splitter.push(chunk).map(({ header, payload }) => ({ type: header.readUInt8(4), session: header.readUInt32BE(5), payload }));
  }
}
