import fs from 'node:fs';
import { ResourceExhaustedError } from '../../common/errors.js';
import { CriuRequest, answer, answerMalformed, decodeRequest, encodeResponse } from './rpc.js';

/**
 * One message per record, both ways, as `criu swrk` and go-criu frame them:
 * the socket is SOCK_SEQPACKET, each write() is one message, each read()
 * one whole message (no length prefix). `read` gives undefined at the end.
 */
export interface RecordChannel {
  read(): Buffer | undefined;
  write(record: Buffer): void;
}

/** Larger than any criu_req (go-criu reads answers into 8 KiB); a record filling it may have been cut. */
export const MAX_RECORD = 1 << 20;

/** Sleeping without a timer: this program is synchronous, on a socket that may have been made non-blocking. */
const nap = new Int32Array(new SharedArrayBuffer(4));

/** An inherited SOCK_SEQPACKET fd (`criu swrk <fd>`), read and written record by record. */
export class FdRecords implements RecordChannel {
  private readonly buf = Buffer.alloc(MAX_RECORD);

  constructor(private readonly fd: number) {}

  read(): Buffer | undefined {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          Atomics.wait(nap, 0, 0, 10);
          continue;
        }
        throw err;
      }
      // A zero-length read is the peer's close (go-criu never sends an empty record).
      if (n === 0) return undefined;
      if (n === this.buf.length) throw new ResourceExhaustedError('bytes in one request', MAX_RECORD, `criu swrk fd ${this.fd}`);
      return Buffer.from(this.buf.subarray(0, n));
    }
  }

  write(record: Buffer): void {
    for (;;) {
      try {
        fs.writeSync(this.fd, record);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        Atomics.wait(nap, 0, 0, 10);
      }
    }
  }
}

export interface ServeResult {
  answered: number;
  refused: number;
}

/**
 * Answers requests until the client closes its end (go-criu closes after
 * one answer, then waits for the exit status: it must be 0 after a version
 * query). A record that is no criu_req is answered with a failure and ends
 * the session, as CRIU ends it.
 */
export function serve(channel: RecordChannel, onRequest: (r: CriuRequest) => void = () => undefined): ServeResult {
  const result: ServeResult = { answered: 0, refused: 0 };
  for (let record = channel.read(); record !== undefined; record = channel.read()) {
    let req: CriuRequest;
    try {
      req = decodeRequest(record);
    } catch (err) {
      channel.write(encodeResponse(answerMalformed(err)));
      result.refused++;
      return result;
    }
    onRequest(req);
    const resp = answer(req);
    channel.write(encodeResponse(resp));
    result.answered++;
    if (!resp.success) result.refused++;
  }
  return result;
}
