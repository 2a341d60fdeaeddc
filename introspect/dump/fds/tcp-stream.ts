import { UnsupportedError } from '../../../common/errors.js';
import { guestClocks } from '../../linux/clocks.js';
import { InetSocket } from '../../linux/inet-sockets.js';
import { TCPI_OPT_TIMESTAMPS, TCPI_OPT_WSCALE, tcpRepairState } from '../../linux/tcp-repair.js';
import { KObject } from '../../kernel/object.js';
import type { FileTable } from '../files.js';
import { DumpProblem } from '../problem.js';
import { FdToDump, fdProblem } from './fd-dumper.js';

/**
 * tcp-stream-INO.img of a connected TCP socket, as `criu dump
 * --tcp-established` writes it (criu/sk-tcp.c dump_tcp_conn_state): the
 * tcp_stream_entry, then the unread bytes, then the unacknowledged and
 * unsent ones. Optional fields are set as CRIU sets them: wscales with
 * TCPI_OPT_WSCALE, the timestamp with TCPI_OPT_TIMESTAMPS, the window
 * always (TCP_REPAIR_WINDOW exists since 4.8), nodelay and cork only when on.
 */
export function tcpStream(files: FileTable, fd: FdToDump, sk: InetSocket, name: string): DumpProblem | undefined {
  let r;
  try {
    r = tcpRepairState(KObject.struct(fd.file.prog, 'sock', sk.sock), files.pages, guestClocks(fd.file.prog));
  } catch (err) {
    if (err instanceof UnsupportedError) return fdProblem(fd, `${name}: cannot be repaired: ${err.message}`);
    throw err;
  }
  const entry: Record<string, unknown> = {
    inq_len: r.inqLen,
    inq_seq: r.inqSeq,
    outq_len: r.outqLen,
    outq_seq: r.outqSeq,
    opt_mask: r.optMask,
    snd_wscale: r.sndWscale,
    mss_clamp: r.mssClamp,
    ...(r.optMask & TCPI_OPT_WSCALE ? { rcv_wscale: r.rcvWscale } : {}),
    ...(r.optMask & TCPI_OPT_TIMESTAMPS ? { timestamp: r.timestamp } : {}),
    ...(r.cork ? { cork: true } : {}),
    ...(r.nodelay ? { nodelay: true } : {}),
    unsq_len: r.unsqLen,
    snd_wl1: r.sndWl1,
    snd_wnd: r.sndWnd,
    max_window: r.maxWindow,
    rcv_wnd: r.rcvWnd,
    rcv_wup: r.rcvWup,
  };
  files.tcpStreams.push({ ino: sk.ino, entry, data: Buffer.concat([r.inq, r.outq]) });
  return undefined;
}
