/** A frame as the splitter cuts it: its header (a view, valid until the next push) and a copy of its payload. */
export interface RawFrame {
  header: Buffer;
  payload: Buffer;
}

/**
 * Cuts a byte stream into frames of a fixed-size header that announces its
 * payload's length, followed by that payload. Feed it chunks as they arrive.
 * `payloadLength` reads and checks a whole header, before any of the
 * payload is buffered; when it throws, the splitter drops what it holds and
 * stays failed, since where the next frame starts is unknown.
 */
export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the frame at the head of `pending` needs in all, once its header is known. */
  private needed: number;
  private failure?: { err: unknown };

  constructor(private readonly headerSize: number, private readonly payloadLength: (header: Buffer) => number) {
    this.needed = headerSize;
  }

  push(chunk: Buffer): RawFrame[] {
    if (this.failure) throw this.failure.err;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: RawFrame[] = [];
    // Concatenate only once a whole header or frame is there, so big frames cost O(n).
    while (this.pendingBytes >= this.needed) {
      const buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
      this.pending = [buf];
      if (this.needed === this.headerSize) this.needed = this.headerSize + this.checked(buf);
      if (buf.length < this.needed) break;
      frames.push({ header: buf.subarray(0, this.headerSize), payload: Buffer.from(buf.subarray(this.headerSize, this.needed)) });
      const rest = buf.subarray(this.needed);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
      this.needed = this.headerSize;
    }
    return frames;
  }

  /** Bytes buffered towards the next frame. */
  get buffered(): number {
    return this.pendingBytes;
  }

  private checked(buf: Buffer): number {
    try {
      return this.payloadLength(buf);
    } catch (err) {
      this.failure = { err };
      this.pending = [];
      this.pendingBytes = 0;
      throw err;
    }
  }
}
