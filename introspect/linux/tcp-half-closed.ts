import { KObject } from '../kernel/object.js';
import { TCP_CLOSE_WAIT, TCP_CLOSING, TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_LAST_ACK, TCP_SYN_SENT } from './inet-sockets.js';
import { sockFlag } from './socket-options.js';

/** soccr/soccr.c: the states whose send queue ends with our FIN (SNDQ_FIRST_FIN | SNDQ_SECOND_FIN without CLOSE). */
const FIN_SENT = new Set([TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_CLOSING, TCP_LAST_ACK]);

/**
 * The connected states CRIU 3.17 repairs with --tcp-established
 * (soccr/soccr.c refresh_sk, without a reset CLOSE): ESTABLISHED, the
 * half-closed ones, whose FINs libsoccr_restore puts back (shutdown() for
 * ours, a forged FIN for the peer's), and SYN_SENT, which restore connects
 * again out of repair mode (its SYN sent anew from the same sequence number).
 */
export const REPAIRED_STATES = new Set([TCP_ESTABLISHED, TCP_SYN_SENT, TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_CLOSE_WAIT, TCP_LAST_ACK, TCP_CLOSING]);

/** Queue lengths as CRIU reads them through SIOCINQ, SIOCOUTQ and SIOCOUTQNSD, with its FIN accounting. */
export interface FinAccounted {
  inqLen: number;
  outqLen: number;
  unsqLen: number;
}

/**
 * What CRIU writes for the queue lengths, from the raw sequence differences:
 * SIOCINQ is tcp_inq (include/net/tcp.h), one less once a FIN arrived
 * (SOCK_DONE) and bytes are left, so the peer's FIN is not a byte;
 * soccr's refresh_sk takes our FIN off SIOCOUTQ and SIOCOUTQNSD ("it
 * doesn't contain real data"). The sequence numbers (rcv_nxt, write_seq)
 * keep their FINs: restore takes them off again (libsoccr_set_sk_data_noq).
 */
export function finAccounted(sk: KObject, state: number, rcvDiff: number, sndDiff: number, unsentDiff: number): FinAccounted {
  // net/ipv4/tcp.c tcp_ioctl, tcp_inq: all three are 0 before the handshake ends (the SYN is in write_seq, not a byte).
  if (state === TCP_SYN_SENT) return { inqLen: 0, outqLen: 0, unsqLen: 0 };
  const inqLen = rcvDiff && sockFlag(sk, 'SOCK_DONE') ? rcvDiff - 1 : rcvDiff;
  if (!FIN_SENT.has(state)) return { inqLen, outqLen: sndDiff, unsqLen: unsentDiff };
  return { inqLen, outqLen: sndDiff ? sndDiff - 1 : 0, unsqLen: unsentDiff ? unsentDiff - 1 : 0 };
}
