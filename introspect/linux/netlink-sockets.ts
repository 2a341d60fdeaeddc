import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { SocketExtras, SocketOptions, socketExtras, socketOptions } from './socket-options.js';
import { sockIno } from './unix-sockets.js';

export const AF_NETLINK = 16;
/** Largest group bitmap read: NLGRPSZ of 32 groups is what CRIU can restore; 1024 groups is far above any family's. */
const MAX_GROUP_WORDS = 1024 / 32;

/** A netlink socket as sock_diag shows it (net/netlink/diag.c sk_diag_fill) and CRIU dumps it (criu/sk-netlink.c). */
export interface NetlinkSocket {
  sock: bigint;
  ino: bigint;
  protocol: number;
  state: number;
  portid: number;
  /** The group bitmap (nlk->groups), as u32 words, NLGRPSZ(ngroups) bytes of it; empty when it has none. */
  groups: number[];
  dstPortid: number;
  dstGroup: number;
  /** Bound (in the protocol's hash) or subscribed to groups: sock_diag lists it. */
  listed: boolean;
  /** Messages waiting to be read. */
  queued: number;
  net: bigint;
  opts: SocketOptions;
  extras: SocketExtras;
}

/** The netlink socket of a struct sock and its struct socket. */
export function netlinkSock(sk: KObject, socket: KObject): NetlinkSocket {
  const prog = sk.prog;
  const family = sk.member('__sk_common.skc_family').num();
  if (family !== AF_NETLINK) throw new BadDataError(`${sk.path}: family ${family} is not AF_NETLINK`);
  const nlk = KObject.struct(prog, 'netlink_sock', sk.address);
  const ngroups = nlk.member('ngroups').num();
  const bitmap = nlk.member('groups').value();
  let groups: number[] = [];
  if (bitmap !== 0n) {
    // NLGRPSZ(x): ALIGN(x, BITS_PER_LONG) / 8 bytes.
    const words = Math.ceil(ngroups / 64) * 2;
    if (words > MAX_GROUP_WORDS) throw new BadDataError(`${nlk.path}.ngroups is ${ngroups}`);
    const raw = prog.read(bitmap, words * 4, `${nlk.path}.groups`);
    groups = Array.from({ length: words }, (_, i) => raw.readUInt32LE(i * 4));
  }
  const subscribed = nlk.member('subscriptions').num() !== 0;
  const bound = nlk.has('bound') ? nlk.member('bound').value() !== 0n : nlk.member('portid').num() !== 0;
  return {
    sock: sk.address,
    ino: sockIno(sk),
    protocol: sk.member('sk_protocol').num(),
    state: sk.member('__sk_common.skc_state').num(),
    portid: nlk.member('portid').num(),
    groups,
    dstPortid: nlk.member('dst_portid').num(),
    dstGroup: nlk.member('dst_group').num(),
    listed: bound || subscribed,
    queued: sk.member('sk_receive_queue.qlen').num(),
    net: sk.member('__sk_common.skc_net.net').value(),
    opts: socketOptions(sk, socket),
    extras: socketExtras(sk),
  };
}

/** The netlink socket behind a struct file of a socket. */
export function netlinkSocket(file: KObject): NetlinkSocket {
  const socket = KObject.struct(file.prog, 'socket', file.member('private_data').value());
  return netlinkSock(socket.member('sk').deref(), socket);
}
