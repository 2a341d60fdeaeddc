import { FakeKernel } from './fake-program.js';
import { KERNEL_STRUCTS } from './kernel-structs.js';
import { Fields, StructDecls } from './kernel-types.js';

/** The members the TCP repair reader uses (6.1 names; the skb rb-tree link and list link side by side, a union in the kernel). */
export const TCP_STRUCTS: StructDecls = {
  sock_backlog_tail: [['rmem_alloc', 'atomic_t'], ['len', 's32'], ['head', '*sk_buff'], ['tail', '*sk_buff']],
  sock: [...(KERNEL_STRUCTS.sock as Fields), ['sk_backlog', 'sock_backlog_tail'], ['tcp_rtx_queue', 'rb_root'], ['sk_write_queue', 'sk_buff_head']],
  sk_buff: [...(KERNEL_STRUCTS.sk_buff as Fields), ['rbnode', 'rb_node']],
  tcp_skb_cb: [['seq', 'u32'], ['end_seq', 'u32'], ['tcp_tw_isn', 'u32'], ['tcp_flags', 'u8']],
  tcp_options_received: [
    ['ts_recent_stamp', 's32'], ['ts_recent', 'u32'], ['saw_tstamp', 'u16:1'], ['tstamp_ok', 'u16:1'], ['dsack', 'u16:1'], ['wscale_ok', 'u16:1'],
    ['sack_ok', 'u16:3'], ['smc_ok', 'u16:1'], ['snd_wscale', 'u16:4'], ['rcv_wscale', 'u16:4'], ['user_mss', 'u16'], ['mss_clamp', 'u16'],
  ],
  tcp_sock: [
    ['sk', 'sock'], ['rcv_nxt', 'u32'], ['copied_seq', 'u32'], ['rcv_wup', 'u32'], ['snd_nxt', 'u32'], ['snd_una', 'u32'], ['tsoffset', 'u32'],
    ['snd_wl1', 'u32'], ['snd_wnd', 'u32'], ['max_window', 'u32'], ['nonagle', 'u8:4'], ['thin_lto', 'u8:1'], ['recvmsg_inq', 'u8:1'],
    ['repair', 'u8:1'], ['frto', 'u8:1'], ['repair_queue', 'u8'], ['syn_data_acked', 'u8:1'], ['urg_data', 'u16'], ['ecn_flags', 'u8'],
    ['rx_opt', 'tcp_options_received'], ['rcv_wnd', 'u32'], ['write_seq', 'u32'],
  ],
};

export interface FakeTcp {
  sk: bigint;
  /** What the reader must find. */
  inq: string;
  outq: string;
}

/**
 * An established TCP socket (sock_common.skc_state 1) with data queued both
 * ways: the receive queue holds "0123456789" (linear, seq 1000, 4 bytes read)
 * and "abcdef" (one page frag, seq 1010); the retransmit tree an skb acked for
 * 2 of its 6 bytes ("XYhijk", seq 4998), the write queue "lmn" (seq 5004, unsent).
 */
export function fakeTcpSocket(k: FakeKernel): FakeTcp {
  const cb = k.types.layout('sk_buff').fields.find((f) => f.name === 'cb')!.bitOffset / 8;
  const skb = (seq: number, text: string, frag = false) => {
    const s = k.new('sk_buff', { len: text.length });
    k.write(s + BigInt(cb), 'tcp_skb_cb', { seq, end_seq: seq + text.length });
    const head = k.alloc(256 + k.types.sizeof('skb_shared_info'), 64);
    k.write(s, 'sk_buff', { head, end: 256 });
    if (frag) {
      const page = k.allocPage();
      k.put(page.va + 200n, Buffer.from(text));
      k.write(head + 256n, 'skb_shared_info', { nr_frags: 1, 'frags[0].bv_page': page.page, 'frags[0].bv_len': text.length, 'frags[0].bv_offset': 200 });
      k.write(s, 'sk_buff', { data_len: text.length, data: head });
    } else {
      k.put(head + 16n, Buffer.from(text));
      k.write(s, 'sk_buff', { data: head + 16n });
    }
    return s;
  };
  const r1 = skb(1000, '0123456789');
  const r2 = skb(1010, 'abcdef', true);
  const t1 = skb(4998, 'XYhijk');
  const w1 = skb(5004, 'lmn');
  const sk = k.new('tcp_sock', {
    'sk.__sk_common.skc_family': 2, 'sk.__sk_common.skc_state': 1, rcv_nxt: 1016, copied_seq: 1004, rcv_wup: 1016, snd_una: 5000, snd_nxt: 5004,
    write_seq: 5007, tsoffset: 100, snd_wl1: 1016, snd_wnd: 3, max_window: 65535, rcv_wnd: 64000, nonagle: 1,
    'rx_opt.tstamp_ok': 1, 'rx_opt.wscale_ok': 1, 'rx_opt.sack_ok': 1, 'rx_opt.snd_wscale': 7, 'rx_opt.rcv_wscale': 6, 'rx_opt.mss_clamp': 65483,
  });
  const queue = (member: string, skbs: bigint[]) => {
    const head = k.addr('tcp_sock', sk, `sk.${member}`);
    const all = [head, ...skbs];
    all.forEach((s, i) => k.write(s, 'sk_buff_head', { next: all[(i + 1) % all.length], prev: all[(i + all.length - 1) % all.length] }));
    k.write(head, 'sk_buff_head', { qlen: skbs.length });
  };
  queue('sk_receive_queue', [r1, r2]);
  queue('sk_write_queue', [w1]);
  k.write(sk, 'tcp_sock', { 'sk.tcp_rtx_queue.rb_node': k.addr('sk_buff', t1, 'rbnode') });
  return { sk, inq: '456789abcdef', outq: 'hijklmn' };
}
