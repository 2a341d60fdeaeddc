import { BadDataError } from '../../common/errors.js';
import { KObject, containerOf } from '../kernel/object.js';
import { PageInfo } from './pages.js';

/** A socket's receive queue walked at most this deep, and holding at most this much (net.core limits are far lower). */
const MAX_SKBS = 1 << 16;
const MAX_QUEUED = 64 << 20;
const MAX_FRAGS = 17;
/** include/linux/sched.h: a timeout of MAX_SCHEDULE_TIMEOUT (LONG_MAX) means none; getsockopt reports 0. */
const MAX_SCHEDULE_TIMEOUT = (1n << 63n) - 1n;
/** include/linux/net.h (6.1): bits of socket->flags. */
const SOCK_PASSCRED = 3n;
const SOCK_PASSSEC = 4n;
/** include/net/sock.h: sk_userlocks bits. */
const SOCK_SNDBUF_LOCK = 1;
const SOCK_RCVBUF_LOCK = 2;
export const SOCK_STREAM = 1;
export const TCP_LISTEN = 10;

/** The socket options CRIU keeps (sk_opts_entry), read from struct sock as getsockopt() reports them. */
export interface SocketOptions {
  so_sndbuf: number;
  so_rcvbuf: number;
  so_snd_tmo_sec: bigint;
  so_snd_tmo_usec: bigint;
  so_rcv_tmo_sec: bigint;
  so_rcv_tmo_usec: bigint;
  reuseaddr: boolean;
  so_priority: number;
  so_rcvlowat: number;
  so_mark: number;
  so_passcred: boolean;
  so_passsec: boolean;
  so_dontroute: boolean;
  so_no_check: boolean;
  so_reuseport: boolean;
  so_broadcast: boolean;
  so_keepalive: boolean;
  so_oobinline: number;
  so_linger?: number;
  so_buf_lock: number;
}

export interface UnixSocket {
  sock: bigint;
  ino: bigint;
  type: number;
  state: number;
  /** The peer's inode number, 0 without a peer. */
  peer: bigint;
  /** The peer's struct sock, 0 without one. */
  peerSock: bigint;
  /** What CRIU calls backlog: max_ack_backlog when listening, else bytes sent and not yet freed (unix_outq_len). */
  backlog: number;
  shutdown: number;
  /** sun_path bytes (an abstract name starts with a NUL); empty when unbound. */
  name: Buffer;
  /** The struct net of the socket's network namespace. */
  net: bigint;
  opts: SocketOptions;
  /** Data waiting in the receive queue, as recvmsg(MSG_PEEK) would return it packet by packet. */
  queue: Buffer[];
  /** File descriptors in flight (SCM_RIGHTS) in the queue. */
  passesFds: boolean;
  /** Connections waiting to be accepted on a listening socket. */
  pendingConnections: number;
}

function jiffiesToTimeval(jiffies: bigint, hz: bigint): { sec: bigint; usec: bigint } {
  if (jiffies >= MAX_SCHEDULE_TIMEOUT || jiffies <= 0n) return { sec: 0n, usec: 0n };
  return { sec: jiffies / hz, usec: ((jiffies % hz) * 1_000_000n) / hz };
}

/** CONFIG_HZ, from tick_nsec (TICK_NSEC = NSEC_PER_SEC / HZ, rounded). */
function kernelHz(sk: KObject): bigint {
  const sym = sk.prog.symbols.lookup('tick_nsec');
  if (!sym) throw new BadDataError('kernel has no tick_nsec symbol: cannot convert socket timeouts');
  const tick = sk.prog.u64(sym.address, 'tick_nsec');
  if (tick === 0n) throw new BadDataError('tick_nsec is 0');
  return (1_000_000_000n + tick / 2n) / tick;
}

function socketOptions(sk: KObject, socket: KObject): SocketOptions {
  const flags = sk.member('__sk_common.skc_flags').value();
  const flag = (name: string): boolean => {
    const e = sk.prog.btf.byName('sock_flags', 'enum');
    const v = e && e.kind === 'enum' ? e.values.find((x) => x.name === name)?.value : undefined;
    if (v === undefined) throw new BadDataError(`this kernel has no ${name} in enum sock_flags`);
    return ((flags >> v) & 1n) === 1n;
  };
  const hz = kernelHz(sk);
  const snd = jiffiesToTimeval(sk.member('sk_sndtimeo').value(), hz);
  const rcv = jiffiesToTimeval(sk.member('sk_rcvtimeo').value(), hz);
  const sockFlags = socket.member('flags').value();
  const locks = sk.bitfield('sk_userlocks');
  const opts: SocketOptions = {
    so_sndbuf: sk.member('sk_sndbuf').num(),
    so_rcvbuf: sk.member('sk_rcvbuf').num(),
    so_snd_tmo_sec: snd.sec,
    so_snd_tmo_usec: snd.usec,
    so_rcv_tmo_sec: rcv.sec,
    so_rcv_tmo_usec: rcv.usec,
    reuseaddr: KObject.struct(sk.prog, 'sock_common', sk.address).bitfield('skc_reuse') !== 0,
    so_priority: sk.member('sk_priority').num(),
    so_rcvlowat: sk.member('sk_rcvlowat').num(),
    so_mark: sk.member('sk_mark').num(),
    so_passcred: ((sockFlags >> SOCK_PASSCRED) & 1n) === 1n,
    so_passsec: ((sockFlags >> SOCK_PASSSEC) & 1n) === 1n,
    so_dontroute: flag('SOCK_LOCALROUTE'),
    so_no_check: sk.bitfield('sk_no_check_tx') !== 0,
    so_reuseport: KObject.struct(sk.prog, 'sock_common', sk.address).bitfield('skc_reuseport') !== 0,
    so_broadcast: flag('SOCK_BROADCAST'),
    so_keepalive: flag('SOCK_KEEPOPEN'),
    so_oobinline: flag('SOCK_URGINLINE') ? 1 : 0,
    so_buf_lock: locks & (SOCK_SNDBUF_LOCK | SOCK_RCVBUF_LOCK),
  };
  if (flag('SOCK_LINGER')) opts.so_linger = Number(sk.member('sk_lingertime').value() / hz);
  return opts;
}

/** The inode number of the socket a struct sock belongs to (sock_i_ino), 0 if it has none. */
export function sockIno(sk: KObject): bigint {
  const socket = sk.member('sk_socket').value();
  if (socket === 0n) return 0n;
  return containerOf(sk.prog, socket, 'socket_alloc', 'socket').member('vfs_inode.i_ino').value();
}

/**
 * The bytes of one skb (linear part, then page fragments), from `skip`
 * on: what recvmsg copies out of it.
 */
function skbData(skb: KObject, skip: number, pages: PageInfo): Buffer {
  const len = skb.member('len').num();
  const dataLen = skb.member('data_len').num();
  if (dataLen > len || len > MAX_QUEUED) throw new BadDataError(`${skb.path}: len ${len}, data_len ${dataLen}`);
  const parts: Buffer[] = [];
  const linear = len - dataLen;
  if (linear > 0) parts.push(skb.prog.read(skb.member('data').value(), linear, `${skb.path}.data`));
  if (dataLen > 0) {
    // NET_SKBUFF_DATA_USES_OFFSET on 64-bit: skb->end is an offset from head; skb_shared_info sits there.
    const shinfo = KObject.struct(skb.prog, 'skb_shared_info', skb.member('head').value() + skb.member('end').value());
    if (shinfo.member('frag_list').value() !== 0n) throw new BadDataError(`${skb.path} has a frag_list`);
    const nr = shinfo.member('nr_frags').num();
    if (nr > MAX_FRAGS) throw new BadDataError(`${shinfo.path}.nr_frags is ${nr}`);
    const frags = shinfo.member('frags');
    for (let i = 0; i < nr; i++) {
      const f = frags.index(i);
      parts.push(pages.readPageData(f.member('bv_page').value(), f.member('bv_offset').num(), f.member('bv_len').num(), `${f.path}`));
    }
  }
  const data = Buffer.concat(parts);
  if (data.length !== len) throw new BadDataError(`${skb.path}: ${data.length} bytes found for len ${len}`);
  return data.subarray(Math.min(skip, data.length));
}

/**
 * The receive queue as packets: each skb of a datagram socket; for a stream
 * socket, runs of skbs from the same sender merged as one MSG_PEEK read
 * returns them (unix_stream_read_generic stops where the credentials
 * change), skipping what a reader already consumed of the first.
 */
function receiveQueue(sk: KObject, pages: PageInfo, stream: boolean, readLimit: number): { packets: Buffer[]; passesFds: boolean; count: number } {
  const prog = sk.prog;
  const head = sk.member('sk_receive_queue').address;
  const qlen = sk.member('sk_receive_queue.qlen').num();
  if (qlen > MAX_SKBS) throw new BadDataError(`${sk.path} has ${qlen} queued packets`);
  const cbOff = BigInt(prog.btf.memberOffset('sk_buff', 'cb'));
  const parms = (skb: bigint) => KObject.struct(prog, 'unix_skb_parms', skb + cbOff);
  const packets: Buffer[] = [];
  let passesFds = false;
  let total = 0;
  let run: { key: string; parts: Buffer[]; size: number } | undefined;
  const flush = () => {
    if (run) packets.push(Buffer.concat(run.parts));
    run = undefined;
  };
  const seen = new Set<bigint>();
  let count = 0;
  for (let node = prog.u64(head, `${sk.path}.sk_receive_queue`); node !== head; node = prog.u64(node, 'sk_buff.next')) {
    if (node === 0n || seen.has(node) || ++count > qlen) throw new BadDataError(`receive queue of ${sk.path} is corrupt at 0x${node.toString(16)}`);
    seen.add(node);
    const skb = KObject.struct(prog, 'sk_buff', node);
    const cb = parms(node);
    if (cb.member('fp').value() !== 0n) passesFds = true;
    const data = skbData(skb, stream ? cb.member('consumed').num() : 0, pages);
    total += data.length;
    if (total > MAX_QUEUED) throw new BadDataError(`${sk.path} queues more than ${MAX_QUEUED} bytes`);
    if (!stream) {
      packets.push(data);
      continue;
    }
    const key = `${cb.member('pid').value()}:${cb.member('uid.val').num()}:${cb.member('gid.val').num()}`;
    if (run && (run.key !== key || run.size + data.length > readLimit)) flush();
    run ??= { key, parts: [], size: 0 };
    run.parts.push(data);
    run.size += data.length;
  }
  flush();
  return { packets: packets.filter((p) => p.length > 0 || !stream), passesFds, count };
}

/** A unix socket (net/unix/af_unix.c) from the struct socket of an open file. */
export function unixSocket(file: KObject, pages: PageInfo): UnixSocket {
  const prog = file.prog;
  const socket = KObject.struct(prog, 'socket', file.member('private_data').value());
  const sk = socket.member('sk').deref();
  const usk = KObject.struct(prog, 'unix_sock', sk.address);
  const type = sk.member('sk_type').num();
  const state = sk.member('__sk_common.skc_state').num();
  const peerSock = usk.member('peer').value();
  const peer = peerSock === 0n ? 0n : sockIno(KObject.struct(prog, 'sock', peerSock));
  let name: Buffer = Buffer.alloc(0);
  const addr = usk.member('addr').value();
  if (addr !== 0n) {
    const ua = KObject.struct(prog, 'unix_address', addr);
    const len = ua.member('len').num();
    // len counts sun_family (2 bytes) and the path; sizeof(struct sockaddr_un) is 110.
    if (len < 2 || len > 110) throw new BadDataError(`${ua.path}.len is ${len}`);
    name = prog.read(ua.member('name').address + 2n, len - 2, `${ua.path}.name`);
    // A path name is NUL-terminated inside len for bind() callers that count the NUL.
    if (name[0] !== 0 && name.indexOf(0) >= 0) name = name.subarray(0, name.indexOf(0));
  }
  const opts = socketOptions(sk, socket);
  const wmem = BigInt.asIntN(32, BigInt(sk.member('sk_wmem_alloc.refs.counter').num()));
  const listening = state === TCP_LISTEN;
  const queue = receiveQueue(sk, pages, type === SOCK_STREAM, Math.max(0, opts.so_sndbuf - 32));
  return {
    sock: sk.address,
    ino: file.member('f_inode').deref().member('i_ino').value(),
    type,
    state,
    peer,
    peerSock,
    backlog: listening ? sk.member('sk_max_ack_backlog').num() : Number(wmem > 0n ? wmem - 1n : 0n),
    shutdown: sk.member('sk_shutdown').num(),
    name,
    net: sk.member('__sk_common.skc_net.net').value(),
    opts,
    queue: listening ? [] : queue.packets,
    passesFds: queue.passesFds,
    pendingConnections: listening ? queue.count : 0,
  };
}
