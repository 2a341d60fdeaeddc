import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { inetSocket } from '../../introspect/linux/inet-sockets.js';
import { netlinkSocket } from '../../introspect/linux/netlink-sockets.js';
import { KERNEL_STRUCTS } from './helpers/kernel-structs.js';
import { StructDecls } from './helpers/kernel-types.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, OUTSIDE_RAM, Values } from './helpers/fake-program.js';

const HZ = 250n;
const MAX_SCHEDULE_TIMEOUT = (1n << 63n) - 1n;
const sockCommon = KERNEL_STRUCTS.sock_common as [string, string][];
const sock = KERNEL_STRUCTS.sock as [string, string][];

/** 6.1's inet, TCP, UDP and netlink socks (names as BTF has them; layout is the builder's). */
const STRUCTS_61: StructDecls = {
  in6_addr: [['s6_addr', 'u8[16]']],
  hlist_node: [['next', 'ptr'], ['pprev', 'ptr']],
  sock_common: [
    ['skc_daddr', 'u32'], ['skc_rcv_saddr', 'u32'], ['skc_dport', 'u16'], ['skc_num', 'u16'], ...sockCommon.slice(0, 4), ['skc_ipv6only', 'u8:1'],
    ['skc_bound_dev_if', 's32'], ...sockCommon.slice(4), ['skc_v6_daddr', 'in6_addr'], ['skc_v6_rcv_saddr', 'in6_addr'], ['skc_node', 'hlist_node'],
  ],
  sock_backlog: [['rmem_alloc', 'atomic_t'], ['len', 's32']],
  sock: [...sock, ['sk_protocol', 'u16'], ['sk_ack_backlog', 'u32'], ['sk_filter', 'ptr'], ['sk_backlog', 'sock_backlog']],
  inet_sock: [['sk', 'sock'], ['pinet6', 'ptr'], ['inet_sport', 'u16'], ['freebind', 'u8:1']],
  inet_connection_sock: [['icsk_inet', 'inet_sock'], ['icsk_backoff', 'u8']],
  tcp_sock: [
    ['inet_conn', 'inet_connection_sock'], ['rcv_nxt', 'u32'], ['copied_seq', 'u32'], ['snd_una', 'u32'], ['write_seq', 'u32'],
    ['keepalive_probes', 'u8'], ['keepalive_time', 'u32'], ['keepalive_intvl', 'u32'],
  ],
  udp_sock: [['inet', 'inet_sock'], ['udp_flags', 'u64']],
  netns_ipv4: [['sysctl_tcp_keepalive_time', 's32'], ['sysctl_tcp_keepalive_intvl', 's32'], ['sysctl_tcp_keepalive_probes', 'u8']],
  net: [['ipv4', 'netns_ipv4']],
  netlink_sock: [
    ['sk', 'sock'], ['flags', 'u64'], ['portid', 'u32'], ['dst_portid', 'u32'], ['dst_group', 'u32'], ['subscriptions', 'u32'], ['ngroups', 'u32'],
    ['groups', 'ptr'], ['state', 'u64'], ['bound', 'bool'],
  ],
};
/** 6.12: freebind is a bit of inet_flags (6.6), in an anonymous enum in the real kernel. */
const STRUCTS_612: StructDecls = { ...STRUCTS_61, inet_sock: [['sk', 'sock'], ['pinet6', 'ptr'], ['inet_flags', 'u64'], ['inet_sport', 'u16']] };
const ENUMS = { udp_flag_bits: [['UDP_FLAGS_CORK', 0], ['UDP_FLAGS_NO_CHECK6_TX', 1]] as [string, number][],
  inet_flag_bits: [['INET_FLAGS_PKTINFO', 0], ['INET_FLAGS_FREEBIND', 11]] as [string, number][] };

function kernel(structs = STRUCTS_61): FakeKernel {
  const k = new FakeKernel({ structs, enums: ENUMS });
  k.u64(k.symbol('tick_nsec', 8), 4_000_000n);
  return k;
}

/** A socket open as a file: its struct sock allocated as `struct` (tcp_sock, udp_sock, netlink_sock), ino 900. */
function socketFile(k: FakeKernel, struct: string, prefix: string, values: Values): { sk: bigint; file: bigint; net: bigint } {
  const alloc = k.new('socket_alloc', { 'vfs_inode.i_ino': 900, 'vfs_inode.i_mode': 0o140777 });
  const socket = k.addr('socket_alloc', alloc, 'socket');
  const net = k.new('net', { 'ipv4.sysctl_tcp_keepalive_time': 7200n * HZ, 'ipv4.sysctl_tcp_keepalive_intvl': 75n * HZ, 'ipv4.sysctl_tcp_keepalive_probes': 9 });
  const base: Values = {
    'sk.__sk_common.skc_net.net': net, 'sk.sk_socket': socket, 'sk.sk_sndbuf': 16384, 'sk.sk_rcvbuf': 131072,
    'sk.sk_sndtimeo': MAX_SCHEDULE_TIMEOUT, 'sk.sk_rcvtimeo': MAX_SCHEDULE_TIMEOUT, 'sk.sk_wmem_alloc.refs.counter': 1,
  };
  const prefixed = Object.fromEntries(Object.entries(base).map(([key, v]) => [key.replace(/^sk\./, prefix), v]));
  const sk = k.new(struct, { ...prefixed, ...values });
  k.write(socket, 'socket', { sk });
  const file = k.new('file', { private_data: socket, f_inode: k.addr('socket_alloc', alloc, 'vfs_inode') });
  return { sk, file, net };
}

const TCP = 'inet_conn.icsk_inet.sk.';
const UDP = 'inet.sk.';
const tcp = (k: FakeKernel, values: Values) => socketFile(k, 'tcp_sock', TCP, {
  [`${TCP}__sk_common.skc_family`]: 2, [`${TCP}sk_type`]: 1, [`${TCP}sk_protocol`]: 6, ...values,
});
const read = (k: FakeKernel, file: bigint) => inetSocket(KObject.struct(k.program(), 'file', file));

describe('inet and netlink sockets on a fake kernel', () => {
  it('reads a v4 listener as sock_diag and getsockopt show it: ports, address, backlog, keepalive from the socket or its namespace', () => {
    const k = kernel();
    const { file, net, sk } = tcp(k, {
      [`${TCP}__sk_common.skc_state`]: 10, [`${TCP}__sk_common.skc_rcv_saddr`]: 0x0100007f, 'inet_conn.icsk_inet.inet_sport': 0xf11c,
      [`${TCP}sk_max_ack_backlog`]: 17, [`${TCP}sk_ack_backlog`]: 0, 'inet_conn.icsk_inet.freebind': 1, keepalive_time: 77n * HZ, keepalive_probes: 0,
      [`${TCP}__sk_common.skc_reuse`]: 1, [`${TCP}__sk_common.skc_flags`]: 1 << 3,
    });
    const s = read(k, file);
    assert.deepEqual([s.sock, s.ino, s.family, s.proto, s.state, s.stateName, s.srcPort, s.srcAddr, s.dstPort, s.dstAddr], [sk, 900n, 2, 'TCP', 10, 'LISTEN', 7409, [0x0100007f], 0, [0]]);
    assert.deepEqual([s.hashed, s.backlog, s.receiveQueued, s.freebind, s.corked, s.v6only, s.net], [true, 17, 0, true, false, undefined, net]);
    assert.deepEqual([s.opts.reuseaddr, s.opts.so_keepalive, s.opts.tcp_keepidle, s.opts.tcp_keepintvl, s.opts.tcp_keepcnt], [true, true, 77, 75, 9]);
  });

  it('reads connected and unbound TCP sockets, v6 addresses and 6.12 flag bits', () => {
    const k = kernel(STRUCTS_612);
    const v6 = Buffer.alloc(16);
    v6[15] = 1;
    const { file } = tcp(k, {
      [`${TCP}__sk_common.skc_family`]: 10, [`${TCP}__sk_common.skc_state`]: 1, [`${TCP}__sk_common.skc_v6_rcv_saddr`]: v6, [`${TCP}__sk_common.skc_v6_daddr`]: v6,
      [`${TCP}__sk_common.skc_dport`]: 0x5000, [`${TCP}__sk_common.skc_ipv6only`]: 1, 'inet_conn.icsk_inet.inet_flags': 1n << 11n,
      write_seq: 5, snd_una: 0xffff_fffe, rcv_nxt: 100, copied_seq: 90,
    });
    const s = read(k, file);
    assert.deepEqual([s.family, s.stateName, s.dstPort, s.srcAddr, s.v6only, s.freebind, s.backlog, s.receiveQueued], [10, 'ESTABLISHED', 80, [0, 0, 0, 0x01000000], true, true, 7, 10]);
    // A TCP socket in CLOSE is not in sock_diag: CRIU reads it with getsockname and takes tcpi_backoff as backlog.
    const closed = tcp(k, { [`${TCP}__sk_common.skc_state`]: 7, 'inet_conn.icsk_backoff': 2, [`${TCP}sk_shutdown`]: 3 });
    const c = read(k, closed.file);
    assert.deepEqual([c.hashed, c.backlog, c.shutdown], [false, 2, 1]);
  });

  it('reads UDP: hashed when bound, its write queue as backlog, UDP_CORK', () => {
    const k = kernel();
    const { file } = socketFile(k, 'udp_sock', UDP, {
      [`${UDP}__sk_common.skc_family`]: 2, [`${UDP}sk_type`]: 2, [`${UDP}sk_protocol`]: 17, [`${UDP}__sk_common.skc_state`]: 7,
      [`${UDP}__sk_common.skc_node.pprev`]: 0x1000n, [`${UDP}sk_wmem_alloc.refs.counter`]: 769, udp_flags: 1,
    });
    const s = read(k, file);
    assert.deepEqual([s.proto, s.hashed, s.backlog, s.corked], ['UDP', true, 768, true]);
  });

  it('reads a netlink socket: portid, groups, protocol, whether sock_diag lists it', () => {
    const k = kernel();
    const groups = k.alloc(8);
    k.put(groups, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
    const { file } = socketFile(k, 'netlink_sock', 'sk.', {
      'sk.__sk_common.skc_family': 16, 'sk.sk_protocol': 0, portid: 4242, ngroups: 36, groups, bound: 1, subscriptions: 1,
    });
    const n = netlinkSocket(KObject.struct(k.program(), 'file', file));
    assert.deepEqual([n.ino, n.protocol, n.portid, n.groups, n.listed, n.queued], [900n, 0, 4242, [1, 0], true, 0]);
  });

  describe('hostile values end in typed errors', () => {
    it('a family that is neither v4 nor v6, a NULL net, a net outside RAM', () => {
      for (const values of [{ [`${TCP}__sk_common.skc_family`]: 1 }, { [`${TCP}__sk_common.skc_net.net`]: 0 }] as Values[]) {
        const k = kernel();
        assertOvmError(() => read(k, tcp(k, values).file), BadDataError);
      }
      const k = kernel();
      assertOvmError(() => read(k, tcp(k, { [`${TCP}__sk_common.skc_net.net`]: OUTSIDE_RAM }).file), PageFaultError);
    });

    it('a kernel with neither freebind nor inet_flags, or without the UDP_CORK bit', () => {
      const k = kernel({ ...STRUCTS_61, inet_sock: [['sk', 'sock'], ['inet_sport', 'u16']] });
      assertOvmError(() => read(k, tcp(k, {}).file), BadDataError);
      const k2 = new FakeKernel({ structs: STRUCTS_61 });
      k2.u64(k2.symbol('tick_nsec', 8), 4_000_000n);
      const { file } = socketFile(k2, 'udp_sock', UDP, { [`${UDP}__sk_common.skc_family`]: 2, [`${UDP}sk_type`]: 2, [`${UDP}sk_protocol`]: 17 });
      assertOvmError(() => read(k2, file), BadDataError);
    });

    it('netlink groups beyond any family, or a bitmap outside RAM', () => {
      for (const values of [{ ngroups: 0xffff_ffff, groups: 0x1000n }, { ngroups: 2048, groups: 0x1000n }] as Values[]) {
        const k = kernel();
        const { file } = socketFile(k, 'netlink_sock', 'sk.', { 'sk.__sk_common.skc_family': 16, ...values });
        assertOvmError(() => netlinkSocket(KObject.struct(k.program(), 'file', file)), BadDataError);
      }
      const k = kernel();
      const { file } = socketFile(k, 'netlink_sock', 'sk.', { 'sk.__sk_common.skc_family': 16, ngroups: 32, groups: OUTSIDE_RAM });
      assertOvmError(() => netlinkSocket(KObject.struct(k.program(), 'file', file)), PageFaultError);
    });
  });
});
