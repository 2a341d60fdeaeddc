import { BadDataError } from '../../common/errors.js';
import { KObject, containerOf } from '../kernel/object.js';
import { pathIdentity } from './file-identity.js';
import { inodeLinks } from './inode-times.js';
import { PageInfo } from './pages.js';
import { SOCK_STREAM, SocketOptions, TCP_LISTEN, socketOptions } from './socket-options.js';

export { SOCK_STREAM, SocketOptions, TCP_LISTEN } from './socket-options.js';

/** A socket's receive queue walked at most this deep, and holding at most this much (net.core limits are far lower). */
const MAX_SKBS = 1 << 16;
const MAX_QUEUED = 64 << 20;
const MAX_FRAGS = 17;

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
  /** sun_path bytes as unix_diag gives them (an abstract name starts with a NUL; a path ends with one); empty when unbound. */
  name: Buffer;
  /** A socket bound to a path: its file (unix_sk->path), what CRIU stats through the name. */
  file?: { mntId: number; mode: number; uid: number; gid: number; deleted: boolean };
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
    // UNIX_DIAG_NAME's bytes: unix_bind_bsd counts a path's terminating NUL in len (unix_mkname_bsd), whatever bind() was given.
    name = prog.read(ua.member('name').address + 2n, len - 2, `${ua.path}.name`);
  }
  let bound: UnixSocket['file'];
  if (name.length > 0 && name[0] !== 0 && usk.member('path.dentry').value() !== 0n) {
    const id = pathIdentity(usk.member('path'));
    bound = { mntId: id.mntId, mode: id.mode, uid: id.inode.member('i_uid.val').num(), gid: id.inode.member('i_gid.val').num(), deleted: inodeLinks(id.inode) === 0 };
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
    ...(bound ? { file: bound } : {}),
    net: sk.member('__sk_common.skc_net.net').value(),
    opts,
    queue: listening ? [] : queue.packets,
    passesFds: queue.passesFds,
    pendingConnections: listening ? queue.count : 0,
  };
}
