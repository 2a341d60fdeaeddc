import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { rbInOrder } from '../kernel/rbtree.js';
import { GuestClocks } from './clocks.js';
import { PageInfo } from './pages.js';
import { QueuedSkb, SkbLayout, skbBytes, skbQueue } from './skb-data.js';
import { REPAIRED_STATES, finAccounted } from './tcp-half-closed.js';

/** include/uapi/linux/tcp.h: tcpi_options bits. */
export const TCPI_OPT_TIMESTAMPS = 1;
export const TCPI_OPT_SACK = 2;
export const TCPI_OPT_WSCALE = 4;
export const TCPI_OPT_ECN = 8;
export const TCPI_OPT_ECN_SEEN = 16;
export const TCPI_OPT_SYN_DATA = 32;
export const TCPI_OPT_USEC_TS = 64;
/** include/net/tcp.h: nonagle bits, tcp_sock.ecn_flags bits, urg_data's valid bit. */
const TCP_NAGLE_OFF = 1;
const TCP_NAGLE_CORK = 2;
const TCP_ECN_OK = 1;
const TCP_ECN_SEEN = 8;
const TCP_URG_VALID = 0x100;
/** Far above any tcp_rmem/tcp_wmem a kernel allows a socket (sysctl maxima are INT_MAX, real buffers a few MiB). */
const MAX_QUEUE_BYTES = 64 << 20;
const MAX_QUEUE_SKBS = 1 << 16;

/**
 * What CRIU 3.17 reads of an established TCP socket in repair mode
 * (soccr/soccr.c libsoccr_save): sequence numbers and queue lengths
 * (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD, TCP_QUEUE_SEQ), TCP_INFO's options,
 * TCP_MAXSEG (mss_clamp under repair), TCP_TIMESTAMP, TCP_REPAIR_WINDOW,
 * TCP_NODELAY and TCP_CORK, and the queued bytes it peeks.
 */
export interface TcpRepairState {
  /** Unread bytes (rcv_nxt - copied_seq) and TCP_QUEUE_SEQ of the receive queue (rcv_nxt). */
  inqLen: number;
  inqSeq: number;
  /** Unacknowledged and unsent bytes (write_seq - snd_una), TCP_QUEUE_SEQ of the send queue (write_seq). */
  outqLen: number;
  outqSeq: number;
  /** Unsent bytes (write_seq - snd_nxt). */
  unsqLen: number;
  optMask: number;
  sndWscale: number;
  rcvWscale: number;
  mssClamp: number;
  /** TCP_TIMESTAMP at the guest's last clock update, when timestamps were negotiated. */
  timestamp?: number;
  nodelay: boolean;
  cork: boolean;
  sndWl1: number;
  sndWnd: number;
  maxWindow: number;
  rcvWnd: number;
  rcvWup: number;
  /** The bytes a reader would get next, then those the peer has not acknowledged, oldest first. */
  inq: Buffer;
  outq: Buffer;
}

const diff = (a: number, b: number) => (a - b) >>> 0;

/** A queue length from two sequence numbers; one past MAX_QUEUE_BYTES (or "negative") is corrupt. */
function queueLen(tp: KObject, a: string, b: string): number {
  const d = diff(tp.member(a).num(), tp.member(b).num());
  if (d > MAX_QUEUE_BYTES) throw new BadDataError(`${tp.path}: ${a} - ${b} is ${d} bytes`);
  return d;
}

/** TCP_TIMESTAMP (net/ipv4/tcp.c do_tcp_getsockopt): the TS clock plus tsoffset; in ms, or in µs with its low bit set once tcp_usec_ts exists (6.7). */
function tcpTimestamp(tp: KObject, clocks: GuestClocks): number {
  const usec = tp.has('tcp_usec_ts') && tp.bitfield('tcp_usec_ts') !== 0;
  const clock = clocks.monotonic / (usec ? 1000n : 1_000_000n);
  const val = Number(BigInt.asUintN(32, clock + BigInt(tp.member('tsoffset').num())));
  if (!tp.has('tcp_usec_ts')) return val;
  return usec ? (val | 1) >>> 0 : (val & ~1) >>> 0;
}

/** tcp_get_info's tcpi_options. */
function optionMask(tp: KObject, rx: KObject): number {
  let mask = 0;
  if (rx.bitfield('tstamp_ok')) mask |= TCPI_OPT_TIMESTAMPS;
  if (rx.bitfield('sack_ok')) mask |= TCPI_OPT_SACK;
  if (rx.bitfield('wscale_ok')) mask |= TCPI_OPT_WSCALE;
  const ecn = tp.member('ecn_flags').num();
  if (ecn & TCP_ECN_OK) mask |= TCPI_OPT_ECN;
  if (ecn & TCP_ECN_SEEN) mask |= TCPI_OPT_ECN_SEEN;
  if (tp.bitfield('syn_data_acked')) mask |= TCPI_OPT_SYN_DATA;
  if (tp.has('tcp_usec_ts') && tp.bitfield('tcp_usec_ts')) mask |= TCPI_OPT_USEC_TS;
  return mask;
}

/** Bytes [start, start + want) of the byte stream a run of queued skbs holds (tcp_recvmsg's offset, tcp_peek_sndq's order). */
function streamBytes(tp: KObject, pages: PageInfo, skbs: Iterable<QueuedSkb>, start: number, want: number, what: string): Buffer {
  const out: Buffer[] = [];
  let got = 0;
  for (const s of skbs) {
    if (got === want) break;
    const pos = (start + got) >>> 0;
    let offset = diff(pos, s.seq);
    // A SYN takes a sequence number and no byte of the payload.
    if (s.syn) offset = (offset - 1) >>> 0;
    if (offset > MAX_QUEUE_BYTES) throw new BadDataError(`${tp.path} ${what}: sk_buff(0x${s.skb.toString(16)}) starts at seq ${s.seq}, after ${pos}: a gap`);
    if (offset >= s.len) continue;
    const take = Math.min(s.len - offset, want - got);
    out.push(skbBytes(tp.prog, pages, s.skb, offset, take));
    got += take;
  }
  if (got !== want) throw new BadDataError(`${tp.path} ${what}: its skbs hold ${got} bytes from seq ${start}, the sequence numbers say ${want}`);
  return Buffer.concat(out);
}

/**
 * A connected TCP socket's repair state from guest RAM (struct tcp_sock,
 * its receive queue, retransmit rb-tree and write queue), as CRIU reads it
 * through TCP_REPAIR: ESTABLISHED, SYN_SENT or half-closed, a FIN in either queue
 * accounted as CRIU accounts it (tcp-half-closed.ts).
 */
export function tcpRepairState(sk: KObject, pages: PageInfo, clocks: GuestClocks): TcpRepairState {
  const prog = sk.prog;
  const state = sk.member('__sk_common.skc_state').num();
  if (!REPAIRED_STATES.has(state)) throw new UnsupportedError(`${sk.path}: only ESTABLISHED, SYN_SENT and half-closed connections are repaired, not state ${state}`);
  const tp = KObject.struct(prog, 'tcp_sock', sk.address);
  const rx = tp.member('rx_opt');
  if (tp.member('urg_data').num() & TCP_URG_VALID) throw new UnsupportedError(`${tp.path} has urgent data not yet read (MSG_OOB)`);
  if (sk.member('sk_backlog.tail').value() !== 0n) throw new UnsupportedError(`${sk.path} has packets in its backlog (the socket is in use)`);
  const { inqLen, outqLen, unsqLen } = finAccounted(sk, state, queueLen(tp, 'rcv_nxt', 'copied_seq'), queueLen(tp, 'write_seq', 'snd_una'), queueLen(tp, 'write_seq', 'snd_nxt'));
  if (unsqLen > outqLen) throw new BadDataError(`${tp.path}: snd_nxt is before snd_una`);
  const optMask = optionMask(tp, rx);
  const nonagle = tp.bitfield('nonagle');
  const layout = new SkbLayout(prog);
  const receive = skbQueue(layout, sk.member('sk_receive_queue'), MAX_QUEUE_SKBS);
  const inq = streamBytes(tp, pages, receive, tp.member('copied_seq').num(), inqLen, 'receive queue');
  const sendQueue = function* (): Generator<QueuedSkb> {
    for (const skb of rbInOrder(prog, sk.member('tcp_rtx_queue').address, 'sk_buff', 'rbnode', MAX_QUEUE_SKBS)) yield layout.describe(skb.address);
    yield* skbQueue(layout, sk.member('sk_write_queue'), MAX_QUEUE_SKBS);
  };
  const outq = streamBytes(tp, pages, sendQueue(), tp.member('snd_una').num(), outqLen, 'send queue');
  return {
    inqLen,
    inqSeq: tp.member('rcv_nxt').num(),
    outqLen,
    outqSeq: tp.member('write_seq').num(),
    unsqLen,
    optMask,
    sndWscale: optMask & TCPI_OPT_WSCALE ? rx.bitfield('snd_wscale') : 0,
    rcvWscale: optMask & TCPI_OPT_WSCALE ? rx.bitfield('rcv_wscale') : 0,
    mssClamp: rx.member('mss_clamp').num(),
    ...(optMask & TCPI_OPT_TIMESTAMPS ? { timestamp: tcpTimestamp(tp, clocks) } : {}),
    nodelay: (nonagle & TCP_NAGLE_OFF) !== 0,
    cork: (nonagle & TCP_NAGLE_CORK) !== 0,
    sndWl1: tp.member('snd_wl1').num(),
    sndWnd: tp.member('snd_wnd').num(),
    maxWindow: tp.member('max_window').num(),
    rcvWnd: tp.member('rcv_wnd').num(),
    rcvWup: tp.member('rcv_wup').num(),
    inq,
    outq,
  };
}
