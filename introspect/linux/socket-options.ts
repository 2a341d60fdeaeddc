import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/** include/linux/net.h: sock_type; shared by inet and unix sockets. */
export const SOCK_STREAM = 1;
/** include/net/tcp_states.h: TCP_LISTEN, the state of a listening unix socket too. */
export const TCP_LISTEN = 10;
/** include/linux/sched.h: a timeout of MAX_SCHEDULE_TIMEOUT (LONG_MAX) means none; getsockopt reports 0. */
const MAX_SCHEDULE_TIMEOUT = (1n << 63n) - 1n;
/** include/linux/net.h (6.1): bits of socket->flags. */
const SOCK_PASSCRED = 3n;
const SOCK_PASSSEC = 4n;
/** include/net/sock.h: sk_userlocks bits. */
const SOCK_SNDBUF_LOCK = 1;
const SOCK_RCVBUF_LOCK = 2;

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
  tcp_keepcnt?: number;
  tcp_keepidle?: number;
  tcp_keepintvl?: number;
  so_oobinline: number;
  so_linger?: number;
  so_buf_lock: number;
}

/** What sk_opts_entry cannot carry as ovmigrate writes it: CRIU keeps them (so_bound_dev, so_filter), ovmigrate refuses them. */
export interface SocketExtras {
  /** SO_BINDTODEVICE's ifindex, 0 when unbound. */
  boundDevIf: number;
  /** A socket filter is attached (SO_ATTACH_FILTER / SO_ATTACH_BPF). */
  filter: boolean;
}

function jiffiesToTimeval(jiffies: bigint, hz: bigint): { sec: bigint; usec: bigint } {
  if (jiffies >= MAX_SCHEDULE_TIMEOUT || jiffies <= 0n) return { sec: 0n, usec: 0n };
  return { sec: jiffies / hz, usec: ((jiffies % hz) * 1_000_000n) / hz };
}

/** CONFIG_HZ, from tick_nsec (TICK_NSEC = NSEC_PER_SEC / HZ, rounded). */
export function kernelHz(sk: KObject): bigint {
  const sym = sk.prog.symbols.lookup('tick_nsec');
  if (!sym) throw new BadDataError('kernel has no tick_nsec symbol: cannot convert socket timeouts');
  const tick = sk.prog.u64(sym.address, 'tick_nsec');
  if (tick === 0n) throw new BadDataError('tick_nsec is 0');
  return (1_000_000_000n + tick / 2n) / tick;
}

/** Whether a bit of enum sock_flags is set in sk_flags (sock_flag()). */
export function sockFlag(sk: KObject, name: string): boolean {
  const e = sk.prog.btf.byName('sock_flags', 'enum');
  const v = e && e.kind === 'enum' ? e.values.find((x) => x.name === name)?.value : undefined;
  if (v === undefined) throw new BadDataError(`this kernel has no ${name} in enum sock_flags`);
  return ((sk.member('__sk_common.skc_flags').value() >> v) & 1n) === 1n;
}

/** sk_opts_entry of a struct sock and its struct socket, as criu/sockets.c dump_socket_opts reads them with getsockopt(). */
export function socketOptions(sk: KObject, socket: KObject): SocketOptions {
  const flag = (name: string) => sockFlag(sk, name);
  const hz = kernelHz(sk);
  const snd = jiffiesToTimeval(sk.member('sk_sndtimeo').value(), hz);
  const rcv = jiffiesToTimeval(sk.member('sk_rcvtimeo').value(), hz);
  const sockFlags = socket.member('flags').value();
  const locks = sk.bitfield('sk_userlocks');
  const common = KObject.struct(sk.prog, 'sock_common', sk.address);
  const opts: SocketOptions = {
    so_sndbuf: sk.member('sk_sndbuf').num(),
    so_rcvbuf: sk.member('sk_rcvbuf').num(),
    so_snd_tmo_sec: snd.sec,
    so_snd_tmo_usec: snd.usec,
    so_rcv_tmo_sec: rcv.sec,
    so_rcv_tmo_usec: rcv.usec,
    reuseaddr: common.bitfield('skc_reuse') !== 0,
    so_priority: sk.member('sk_priority').num(),
    so_rcvlowat: sk.member('sk_rcvlowat').num(),
    so_mark: sk.member('sk_mark').num(),
    so_passcred: ((sockFlags >> SOCK_PASSCRED) & 1n) === 1n,
    so_passsec: ((sockFlags >> SOCK_PASSSEC) & 1n) === 1n,
    so_dontroute: flag('SOCK_LOCALROUTE'),
    so_no_check: sk.bitfield('sk_no_check_tx') !== 0,
    so_reuseport: common.bitfield('skc_reuseport') !== 0,
    so_broadcast: flag('SOCK_BROADCAST'),
    so_keepalive: flag('SOCK_KEEPOPEN'),
    so_oobinline: flag('SOCK_URGINLINE') ? 1 : 0,
    so_buf_lock: locks & (SOCK_SNDBUF_LOCK | SOCK_RCVBUF_LOCK),
  };
  if (flag('SOCK_LINGER')) opts.so_linger = Number(sk.member('sk_lingertime').value() / hz);
  return opts;
}

/** SO_BINDTODEVICE and an attached filter: sk_bound_dev_if, sk_filter. */
export function socketExtras(sk: KObject): SocketExtras {
  return { boundDevIf: sk.member('__sk_common.skc_bound_dev_if').num(), filter: sk.member('sk_filter').value() !== 0n };
}
