import assert from 'node:assert/strict';
import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { KObject } from '../../introspect/kernel/object.js';
import { guestClocks } from '../../introspect/linux/clocks.js';
import { PageInfo } from '../../introspect/linux/pages.js';
import { TCPI_OPT_SACK, TCPI_OPT_TIMESTAMPS, TCPI_OPT_WSCALE, tcpRepairState } from '../../introspect/linux/tcp-repair.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { EVENT_STRUCTS, fakeTimekeeper } from './helpers/event-structs.js';
import { FakeKernel } from './helpers/fake-program.js';
import { TCP_STRUCTS, fakeTcpSocket } from './helpers/tcp-structs.js';

const MONO = 5000n * 1_000_000_000n;

function setup() {
  const k = new FakeKernel({ structs: { ...EVENT_STRUCTS, ...TCP_STRUCTS } });
  fakeTimekeeper(k, MONO, 1n << 60n);
  const t = fakeTcpSocket(k);
  const read = () => {
    const prog = k.program();
    return tcpRepairState(KObject.struct(prog, 'sock', t.sk), new PageInfo(prog), guestClocks(prog));
  };
  return { k, t, read };
}

describe('TCP repair state from guest RAM (fake kernel)', () => {
  it('reads what CRIU reads under TCP_REPAIR: sequence numbers, queue lengths, options, window, and the queued bytes in order', () => {
    const { t, read } = setup();
    const r = read();
    assert.deepEqual([r.inqLen, r.inqSeq, r.outqLen, r.outqSeq, r.unsqLen], [12, 1016, 7, 5007, 3]);
    assert.equal(r.optMask, TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE);
    assert.deepEqual([r.sndWscale, r.rcvWscale, r.mssClamp, r.nodelay, r.cork], [7, 6, 65483, true, false]);
    // TCP_TIMESTAMP: CLOCK_MONOTONIC in ms plus tsoffset.
    assert.equal(r.timestamp, 5_000_000 + 100);
    assert.deepEqual([r.sndWl1, r.sndWnd, r.maxWindow, r.rcvWnd, r.rcvWup], [1016, 3, 65535, 64000, 1016]);
    // Receive: from copied_seq, the linear part then a page frag. Send: the partly acked skb from snd_una, then the write queue.
    assert.equal(r.inq.toString(), t.inq);
    assert.equal(r.outq.toString(), t.outq);
  });

  it('half-closed states: the FINs stay in rcv_nxt and write_seq, and are not counted as queued bytes (soccr refresh_sk, tcp_inq)', () => {
    const { k, t, read } = setup();
    const SOCK_DONE = 1n << 1n;
    const fin = (state: number, fields: Record<string, number | bigint>) => {
      k.write(t.sk, 'tcp_sock', { 'sk.__sk_common.skc_state': state, 'sk.__sk_common.skc_flags': 0n, rcv_nxt: 1016, snd_una: 5000, snd_nxt: 5004, write_seq: 5007, ...fields });
      const r = read();
      return [r.inqLen, r.inqSeq, r.outqLen, r.outqSeq, r.unsqLen, r.inq.toString(), r.outq.toString()];
    };
    // CLOSE_WAIT: the peer's FIN after "abcdef" (rcv_nxt one past it, SOCK_DONE); our send queue as it was.
    assert.deepEqual(fin(8, { rcv_nxt: 1017, 'sk.__sk_common.skc_flags': SOCK_DONE }), [12, 1017, 7, 5007, 3, t.inq, t.outq]);
    // Read up to the FIN, or past it (recv returned 0): nothing is queued.
    assert.deepEqual(fin(8, { rcv_nxt: 1017, copied_seq: 1016, 'sk.__sk_common.skc_flags': SOCK_DONE }).slice(0, 3), [0, 1017, 7]);
    assert.deepEqual(fin(8, { rcv_nxt: 1017, copied_seq: 1017, 'sk.__sk_common.skc_flags': SOCK_DONE }).slice(0, 3), [0, 1017, 7]);
    k.write(t.sk, 'tcp_sock', { copied_seq: 1004 });
    // FIN_WAIT1: our FIN queued after "lmn" (write_seq one past it), not yet sent.
    assert.deepEqual(fin(4, { write_seq: 5008 }), [12, 1016, 7, 5008, 3, t.inq, t.outq]);
    // LAST_ACK: both FINs; ours sent with everything before it, not acknowledged.
    assert.deepEqual(fin(9, { rcv_nxt: 1017, 'sk.__sk_common.skc_flags': SOCK_DONE, snd_nxt: 5008, write_seq: 5008 }), [12, 1017, 7, 5008, 0, t.inq, t.outq]);
    // FIN_WAIT2 (and CLOSING's send side once acked): everything up to our FIN acknowledged, nothing to send.
    k.write(t.sk, 'tcp_sock', { 'sk.sk_write_queue.qlen': 0, 'sk.sk_write_queue.next': k.addr('tcp_sock', t.sk, 'sk.sk_write_queue'), 'sk.sk_write_queue.prev': k.addr('tcp_sock', t.sk, 'sk.sk_write_queue'), 'sk.tcp_rtx_queue.rb_node': 0n });
    assert.deepEqual(fin(5, { snd_una: 5008, snd_nxt: 5008, write_seq: 5008 }), [12, 1016, 0, 5008, 0, t.inq, '']);
    assert.deepEqual(fin(11, { rcv_nxt: 1017, 'sk.__sk_common.skc_flags': SOCK_DONE, snd_una: 5008, snd_nxt: 5008, write_seq: 5008 }).slice(0, 5), [12, 1017, 0, 5008, 0]);
  });

  it('SYN_SENT: nothing queued (tcp_ioctl and tcp_inq give 0), write_seq one past the SYN, as soccr refresh_sk reads it', () => {
    const { k, t, read } = setup();
    k.write(t.sk, 'tcp_sock', { 'sk.__sk_common.skc_state': 2, rcv_nxt: 0, copied_seq: 0, snd_una: 7000, snd_nxt: 7001, write_seq: 7001 });
    const r = read();
    assert.deepEqual([r.inqLen, r.inqSeq, r.outqLen, r.outqSeq, r.unsqLen, r.inq.length, r.outq.length], [0, 0, 0, 7001, 0, 0, 0]);
  });

  it('refuses what it cannot repair by name, and corrupt queues with typed errors', () => {
    const { k, t, read } = setup();
    // SYN_RECV: a request, never a socket a task holds; not a state soccr repairs.
    k.write(t.sk, 'tcp_sock', { 'sk.__sk_common.skc_state': 3 });
    assertOvmError(read, UnsupportedError);
    k.write(t.sk, 'tcp_sock', { 'sk.__sk_common.skc_state': 1, urg_data: 0x100 | 65 });
    assertOvmError(read, UnsupportedError);
    k.write(t.sk, 'tcp_sock', { urg_data: 0 });
    read();
    // Sequence numbers that promise more than the skbs hold, or a queue longer than its qlen.
    k.write(t.sk, 'tcp_sock', { rcv_nxt: 1017 });
    assertOvmError(read, BadDataError);
    k.write(t.sk, 'tcp_sock', { rcv_nxt: 1016, 'sk.sk_receive_queue.qlen': 1 });
    assertOvmError(read, BadDataError);
    k.write(t.sk, 'tcp_sock', { 'sk.sk_receive_queue.qlen': 2, write_seq: 5007 + (100 << 20) });
    assertOvmError(read, BadDataError);
  });
});
