import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { SOCK_STREAM, SocketExtras, SocketOptions, TCP_LISTEN, kernelHz, socketExtras, socketOptions } from './socket-options.js';
import { sockIno } from './unix-sockets.js';

export { SOCK_STREAM, TCP_LISTEN } from './socket-options.js';
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_DGRAM = 2;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_UDPLITE = 136;
/** include/net/tcp_states.h */
export const TCP_ESTABLISHED = 1;
export const TCP_SYN_SENT = 2;
export const TCP_FIN_WAIT1 = 4;
export const TCP_FIN_WAIT2 = 5;
export const TCP_CLOSE = 7;
export const TCP_CLOSE_WAIT = 8;
export const TCP_LAST_ACK = 9;
export const TCP_CLOSING = 11;
const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];
/** include/net/sock.h: sk_shutdown bits, as CRIU's sk_shutdown enum numbers them. */
const SHUTDOWN_MASK = 3;
const RCV_SHUTDOWN = 1;

/** An AF_INET/AF_INET6 socket as CRIU sees it through sock_diag (criu/sk-inet.c inet_collect_one) and getsockopt. */
export interface InetSocket {
  sock: bigint;
  ino: bigint;
  family: number;
  type: number;
  protocol: number;
  /** 'TCP', 'UDP', or the protocol's number, for messages. */
  proto: string;
  state: number;
  /** TCP_* state name, or its number when unknown. */
  stateName: string;
  /** Ports in host order; addresses as the u32s of inet_sk_entry (1 for v4, 4 for v6), bytes as memory holds them. */
  srcPort: number;
  dstPort: number;
  srcAddr: number[];
  dstAddr: number[];
  /** In the kernel's lookup tables, so sock_diag lists it (CRIU then knows its namespace); else CRIU reads it with getsockname. */
  hashed: boolean;
  /** What CRIU writes as backlog: sock_diag's idiag_wqueue (max backlog when listening, unacknowledged bytes of TCP, sk_wmem_alloc of UDP). */
  backlog: number;
  /** sock_diag's idiag_rqueue: connections not yet accepted when listening, unread bytes of TCP. */
  receiveQueued: number;
  shutdown: number;
  v6only?: boolean;
  freebind: boolean;
  /** UDP_CORK is set (CRIU refuses a corked datagram socket). */
  corked: boolean;
  /** struct net of its network namespace. */
  net: bigint;
  opts: SocketOptions;
  extras: SocketExtras;
}

/** An IPv4 or IPv6 address member (be32 or struct in6_addr) as the u32s CRIU copies from it. */
function addressWords(obj: KObject, words: number): number[] {
  const raw = obj.prog.read(obj.address, words * 4, obj.path);
  return Array.from({ length: words }, (_, i) => raw.readUInt32LE(i * 4));
}

/**
 * A bit of inet_sock's flags: a bitfield member in older kernels (6.1's
 * `freebind:1`), a bit of inet_flags once those became atomic bits (6.6,
 * "inet: move inet->freebind to inet->inet_flags").
 */
function inetFlag(inet: KObject, member: string, enumerator: string): boolean {
  if (inet.has(member)) return inet.bitfield(member) !== 0;
  const bit = inet.prog.btf.enumerator(enumerator);
  if (bit === undefined || !inet.has('inet_flags')) throw new BadDataError(`${inet.path}: this kernel has neither ${member} nor inet_flags bit ${enumerator}`);
  return ((inet.member('inet_flags').value() >> bit) & 1n) === 1n;
}

/** UDP_CORK as getsockopt reports it: `corkflag` before udp_flags (6.6, "udp: move udp->corkflag to udp->udp_flags"), then a bit of it. */
function udpCorked(sk: KObject): boolean {
  const udp = KObject.struct(sk.prog, 'udp_sock', sk.address);
  if (udp.has('corkflag')) return udp.member('corkflag').value() !== 0n;
  const bit = sk.prog.btf.enumerator('UDP_FLAGS_CORK');
  if (bit === undefined || !udp.has('udp_flags')) throw new BadDataError(`${udp.path}: this kernel has neither corkflag nor udp_flags bit UDP_FLAGS_CORK`);
  return ((udp.member('udp_flags').value() >> bit) & 1n) === 1n;
}

/** TCP_KEEPCNT/IDLE/INTVL as getsockopt reports them: the socket's own value, else its namespace's sysctl (tcp.h keepalive_*_when). */
function tcpKeepalive(sk: KObject, net: KObject): Pick<SocketOptions, 'tcp_keepcnt' | 'tcp_keepidle' | 'tcp_keepintvl'> {
  const tp = KObject.struct(sk.prog, 'tcp_sock', sk.address);
  const hz = kernelHz(sk);
  const or = (own: bigint, sysctl: string) => (own !== 0n ? own : net.member(`ipv4.${sysctl}`).value());
  return {
    tcp_keepcnt: Number(or(tp.member('keepalive_probes').value(), 'sysctl_tcp_keepalive_probes')),
    tcp_keepidle: Number(or(tp.member('keepalive_time').value(), 'sysctl_tcp_keepalive_time') / hz),
    tcp_keepintvl: Number(or(tp.member('keepalive_intvl').value(), 'sysctl_tcp_keepalive_intvl') / hz),
  };
}

/** The u32 difference of two TCP sequence numbers, bounded as a queue length can be. */
function seqDiff(tp: KObject, a: string, b: string): number {
  const d = (tp.member(a).num() - tp.member(b).num()) >>> 0;
  // A negative difference (rcv_nxt behind copied_seq) is what tcp_diag reports as 0.
  return d > 0x7fff_ffff ? 0 : d;
}

/** The inet socket of a struct sock (net/ipv4/inet_diag.c, tcp_diag.c, udp_diag.c: what sock_diag would report of it). */
export function inetSock(sk: KObject, socket: KObject): InetSocket {
  const prog = sk.prog;
  const family = sk.member('__sk_common.skc_family').num();
  if (family !== AF_INET && family !== AF_INET6) throw new BadDataError(`${sk.path}: family ${family} is not AF_INET or AF_INET6`);
  const type = sk.member('sk_type').num();
  const protocol = sk.member('sk_protocol').num();
  const state = sk.member('__sk_common.skc_state').num();
  const common = KObject.struct(prog, 'sock_common', sk.address);
  const inet = KObject.struct(prog, 'inet_sock', sk.address);
  const v6 = family === AF_INET6;
  const words = v6 ? 4 : 1;
  const tcp = type === SOCK_STREAM && protocol === IPPROTO_TCP;
  const udp = type === SOCK_DGRAM && (protocol === IPPROTO_UDP || protocol === IPPROTO_UDPLITE);
  const netAddr = sk.member('__sk_common.skc_net.net').value();
  if (netAddr === 0n) throw new BadDataError(`${sk.path}.__sk_common.skc_net is NULL`);
  const net = KObject.struct(prog, 'net', netAddr);
  const ntohs = (v: number) => ((v & 0xff) << 8) | (v >> 8);
  // tcp: listening and ehash sockets (a bound TCP socket in CLOSE is only in bhash); udp: bound or connected (sk_node hashed).
  const hashed = tcp ? state !== TCP_CLOSE : sk.member('__sk_common.skc_node.pprev').value() !== 0n;
  const wmem = BigInt.asIntN(32, BigInt(sk.member('sk_wmem_alloc.refs.counter').num()));
  let backlog = 0;
  let receiveQueued = 0;
  let shutdown = sk.member('sk_shutdown').num() & SHUTDOWN_MASK;
  if (tcp && state === TCP_LISTEN) {
    backlog = sk.member('sk_max_ack_backlog').num();
    receiveQueued = sk.member('sk_ack_backlog').num();
  } else if (tcp && hashed) {
    const tp = KObject.struct(prog, 'tcp_sock', sk.address);
    backlog = seqDiff(tp, 'write_seq', 'snd_una');
    receiveQueued = seqDiff(tp, 'rcv_nxt', 'copied_seq');
  } else if (tcp) {
    // Not in sock_diag: CRIU takes tcpi_backoff as backlog, and the shutdown poll() shows (criu/sk-inet.c gen_uncon_sk).
    backlog = KObject.struct(prog, 'inet_connection_sock', sk.address).member('icsk_backoff').num();
    shutdown &= RCV_SHUTDOWN;
  } else if (hashed) {
    backlog = Number(wmem > 0n ? wmem - 1n : 0n);
    receiveQueued = sk.member('sk_backlog.rmem_alloc.counter').num();
  } else {
    shutdown = 0;
  }
  const opts = socketOptions(sk, socket);
  if (tcp) Object.assign(opts, tcpKeepalive(sk, net));
  return {
    sock: sk.address,
    ino: sockIno(sk),
    family,
    type,
    protocol,
    proto: tcp ? 'TCP' : udp ? 'UDP' : `protocol ${protocol} type ${type}`,
    state,
    stateName: TCP_STATES[state] ?? String(state),
    srcPort: ntohs(inet.member('inet_sport').num()),
    dstPort: ntohs(sk.member('__sk_common.skc_dport').num()),
    srcAddr: addressWords(v6 ? sk.member('__sk_common.skc_v6_rcv_saddr') : sk.member('__sk_common.skc_rcv_saddr'), words),
    dstAddr: addressWords(v6 ? sk.member('__sk_common.skc_v6_daddr') : sk.member('__sk_common.skc_daddr'), words),
    hashed,
    backlog,
    receiveQueued,
    shutdown,
    ...(v6 ? { v6only: common.bitfield('skc_ipv6only') !== 0 } : {}),
    freebind: inetFlag(inet, 'freebind', 'INET_FLAGS_FREEBIND'),
    corked: udp && udpCorked(sk),
    net: net.address,
    opts,
    extras: socketExtras(sk),
  };
}

/** The inet socket behind a struct file of a socket. */
export function inetSocket(file: KObject): InetSocket {
  const socket = KObject.struct(file.prog, 'socket', file.member('private_data').value());
  return inetSock(socket.member('sk').deref(), socket);
}
