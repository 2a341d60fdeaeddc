import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { PageInfo } from './pages.js';

/** A pipe's ring holds at most this many buffers (pipe-max-size is 1 MiB by default; 64 Ki slots is far beyond it). */
const MAX_RING = 1 << 16;
const PAGE = 4096;

export interface PipeContents {
  /** The pipe's inode number: what `pipe:[N]` names. */
  ino: bigint;
  /** Capacity in bytes, as F_GETPIPE_SZ reports it (max_usage pages). */
  size: number;
  /** Bytes queued in the pipe, oldest first. */
  data: Buffer;
}

/**
 * What a pipe holds right now (fs/pipe.c): the buffers from tail to head of
 * inode->i_pipe's ring, each a slice of a page.
 */
export function pipeContents(inode: KObject, pages: PageInfo): PipeContents {
  const pipe = inode.member('i_pipe').deref();
  const head = pipe.member('head').num();
  const tail = pipe.member('tail').num();
  const ringSize = pipe.member('ring_size').num();
  const maxUsage = pipe.member('max_usage').num();
  if (ringSize <= 0 || ringSize > MAX_RING || (ringSize & (ringSize - 1)) !== 0) throw new BadDataError(`${pipe.path}.ring_size is ${ringSize}`);
  const used = (head - tail) >>> 0;
  if (used > ringSize || maxUsage > ringSize) throw new BadDataError(`${pipe.path} holds ${used} buffers in a ring of ${ringSize}`);
  const bufs = pipe.member('bufs').value();
  const bufSize = pipe.prog.btf.struct('pipe_buffer').size;
  const chunks: Buffer[] = [];
  for (let i = 0; i < used; i++) {
    const slot = ((tail + i) >>> 0) & (ringSize - 1);
    const buf = KObject.struct(pipe.prog, 'pipe_buffer', bufs + BigInt(slot * bufSize));
    const offset = buf.member('offset').num();
    const len = buf.member('len').num();
    if (offset + len > PAGE) throw new BadDataError(`${buf.path}: ${len} bytes at offset ${offset} overrun its page`);
    if (len > 0) chunks.push(pages.readPageData(buf.member('page').value(), offset, len, `${buf.path}.page`));
  }
  return { ino: inode.member('i_ino').value(), size: maxUsage * PAGE, data: Buffer.concat(chunks) };
}
