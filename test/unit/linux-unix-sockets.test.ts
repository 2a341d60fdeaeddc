import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { PageInfo } from '../../introspect/linux/pages.js';
import { unixSocket } from '../../introspect/linux/unix-sockets.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, OUTSIDE_RAM, Values } from './helpers/fake-program.js';

const TCP_ESTABLISHED = 1;
const TCP_LISTEN = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const HZ = 250n;
const MAX_SCHEDULE_TIMEOUT = (1n << 63n) - 1n;

/** A unix socket open as a file, its peer, and helpers to queue skbs on its receive queue. */
class FakeUnixSocket {
  readonly sk: bigint;
  readonly file: bigint;
  readonly skbs: bigint[] = [];

  constructor(readonly k: FakeKernel, values: Values = {}, name?: string) {
    const alloc = k.new('socket_alloc', { 'vfs_inode.i_ino': 800, 'vfs_inode.i_mode': 0o140777 });
    const socket = k.addr('socket_alloc', alloc, 'socket');
    this.sk = k.new('unix_sock', {
      'sk.__sk_common.skc_family': 1, 'sk.__sk_common.skc_state': TCP_ESTABLISHED, 'sk.sk_type': SOCK_STREAM, 'sk.sk_socket': socket,
      'sk.sk_sndbuf': 212992, 'sk.sk_rcvbuf': 212992, 'sk.sk_sndtimeo': MAX_SCHEDULE_TIMEOUT, 'sk.sk_rcvtimeo': 2n * HZ + HZ / 2n,
      'sk.__sk_common.skc_flags': 1 << 3, 'sk.sk_wmem_alloc.refs.counter': 1,
      ...(name === undefined ? {} : { addr: k.new('unix_address', { len: 2 + name.length, name: Buffer.from(`\x01\x00${name}`) }) }),
      ...values,
    });
    k.write(socket, 'socket', { sk: this.sk });
    this.file = k.new('file', { private_data: socket, f_inode: k.addr('socket_alloc', alloc, 'vfs_inode') });
    this.link();
  }

  /** Queues an skb with `text` in its linear part, from sender `pid`; frags are page fragments after it. */
  queue(text: string, pid: bigint, cb: Values = {}, frags: string[] = []): bigint {
    const k = this.k;
    const data = k.alloc(text.length + 1, 8);
    k.put(data, Buffer.from(text));
    const head = k.alloc(1024);
    const fragLen = frags.reduce((n, f) => n + f.length, 0);
    const skb = k.new('sk_buff', { len: text.length + fragLen, data_len: fragLen, data, head, end: 256 });
    const shinfo: Values = { nr_frags: frags.length };
    frags.forEach((f, i) => {
      const page = k.allocPage();
      k.put(page.va + 8n, Buffer.from(f));
      Object.assign(shinfo, { [`frags[${i}].bv_page`]: page.page, [`frags[${i}].bv_offset`]: 8, [`frags[${i}].bv_len`]: f.length });
    });
    k.write(head + 256n, 'skb_shared_info', shinfo);
    k.write(k.addr('sk_buff', skb, 'cb'), 'unix_skb_parms', { pid, 'uid.val': 1000, 'gid.val': 1000, ...cb });
    this.skbs.push(skb);
    this.link();
    return skb;
  }

  private link(): void {
    this.k.link(this.k.addr('sock', this.sk, 'sk_receive_queue'), this.skbs);
    this.k.write(this.sk, 'sock', { 'sk_receive_queue.qlen': this.skbs.length });
  }

  read() {
    const prog = this.k.program();
    return unixSocket(KObject.struct(prog, 'file', this.file), new PageInfo(prog));
  }
}

function kernel(): FakeKernel {
  const k = new FakeKernel();
  k.u64(k.symbol('tick_nsec', 8), 4_000_000n);
  return k;
}

describe('unix sockets on a fake kernel', () => {
  it('reads a connected stream socket: name, peer, options and its queue as MSG_PEEK reads return it', () => {
    const k = kernel();
    const peer = new FakeUnixSocket(k);
    const s = new FakeUnixSocket(k, { peer: peer.sk, 'sk.sk_wmem_alloc.refs.counter': 101 }, '/run/app.sock');
    s.queue('hello ', 10n, { consumed: 2 });
    s.queue('world', 10n, {}, ['!', '?']);
    s.queue('other', 11n);
    const u = s.read();
    assert.deepEqual([u.sock, u.ino, u.type, u.state, u.peer, u.peerSock, u.backlog], [s.sk, 800n, SOCK_STREAM, TCP_ESTABLISHED, 800n, peer.sk, 100]);
    assert.equal(u.name.toString(), '/run/app.sock');
    assert.deepEqual(u.queue.map(String), ['llo world!?', 'other']);
    assert.deepEqual([u.passesFds, u.pendingConnections], [false, 0]);
    assert.deepEqual([u.opts.so_sndbuf, u.opts.so_snd_tmo_sec, u.opts.so_rcv_tmo_sec, u.opts.so_rcv_tmo_usec, u.opts.so_keepalive, u.opts.so_broadcast],
      [212992, 0n, 2n, 500000n, true, false]);
  });

  it('a socket bound to a path: the name with the NUL bind counts, and the file at the path (mount, mode, owner, removed or not)', () => {
    const k = kernel();
    const inode = k.new('inode', { i_mode: 0o140777, 'i_uid.val': 101, 'i_gid.val': 104, __i_nlink: 1, i_sb: k.new('super_block', { s_dev: 5 }) });
    const mount = k.new('mount', { mnt_id: 71 });
    const s = new FakeUnixSocket(k, { 'path.dentry': k.new('dentry', { d_inode: inode }), 'path.mnt': k.addr('mount', mount, 'mnt') }, '/run/db.sock\0');
    const u = s.read();
    assert.deepEqual(u.name, Buffer.from('/run/db.sock\0'));
    assert.deepEqual(u.file, { mntId: 71, mode: 0o140777, uid: 101, gid: 104, deleted: false });
    k.write(inode, 'inode', { __i_nlink: 0 });
    assert.equal(s.read().file?.deleted, true);
    assert.equal(new FakeUnixSocket(k, {}, '\0abstract').read().file, undefined, 'an abstract name has no file');
  });

  it('keeps datagrams apart, and counts pending connections of a listener', () => {
    const k = kernel();
    const d = new FakeUnixSocket(k, { 'sk.sk_type': SOCK_DGRAM });
    d.queue('one', 1n);
    d.queue('two', 1n, { fp: 0x1234n });
    assert.deepEqual(d.read().queue.map(String), ['one', 'two']);
    assert.equal(d.read().passesFds, true);
    const l = new FakeUnixSocket(k, { 'sk.__sk_common.skc_state': TCP_LISTEN, 'sk.sk_max_ack_backlog': 128 });
    l.queue('', 1n);
    l.queue('', 2n);
    const u = l.read();
    assert.deepEqual([u.backlog, u.pendingConnections, u.queue.length], [128, 2, 0]);
  });

  describe('hostile values end in typed errors', () => {
    it('an address length out of sockaddr_un', () => {
      for (const len of [0, 1, 111, -1, 0x7fff_ffff]) {
        const k = kernel();
        const s = new FakeUnixSocket(k, {}, 'x');
        const addr = k.ptr('unix_sock', s.sk, 'addr');
        k.write(addr, 'unix_address', { len });
        assertOvmError(() => s.read(), BadDataError);
      }
    });

    it('a queue length beyond any socket, or shorter than the list', () => {
      const k = kernel();
      const s = new FakeUnixSocket(k);
      s.queue('a', 1n);
      s.queue('b', 1n);
      for (const qlen of [0xffff_ffff, 1 << 17, 1]) {
        k.write(s.sk, 'sock', { 'sk_receive_queue.qlen': qlen });
        assertOvmError(() => s.read(), BadDataError);
      }
    });

    it('a receive queue that loops, or has a NULL or outside-RAM next', () => {
      for (const next of ['loop', 0n, OUTSIDE_RAM] as const) {
        const k = kernel();
        const s = new FakeUnixSocket(k);
        const [a, b] = [s.queue('a', 1n), s.queue('b', 1n)];
        k.write(b, 'sk_buff', { next: next === 'loop' ? a : next });
        // The walk stops at qlen entries before it would follow a next outside RAM.
        assertOvmError(() => s.read(), BadDataError);
      }
    });

    it('skb lengths that are huge or disagree', () => {
      for (const values of [{ len: 0xffff_ffff }, { len: 1, data_len: 5 }, { len: 10, data_len: 9 }, { len: 65 << 20 }] as Values[]) {
        const k = kernel();
        const s = new FakeUnixSocket(k);
        k.write(s.queue('abc', 1n, {}, ['x']), 'sk_buff', values);
        assertOvmError(() => s.read(), BadDataError);
      }
    });

    it('fragments that are too many, chained, or overrun their page', () => {
      for (const shinfo of [{ nr_frags: 18 }, { nr_frags: 255 }, { frag_list: 0x1000n }, { 'frags[0].bv_offset': 0xffff_ffff }, { 'frags[0].bv_page': 0x1000n }] as Values[]) {
        const k = kernel();
        const s = new FakeUnixSocket(k);
        const skb = s.queue('abc', 1n, {}, ['x']);
        const head = k.ptr('sk_buff', skb, 'head');
        k.write(head + 256n, 'skb_shared_info', shinfo);
        assertOvmError(() => s.read(), BadDataError);
      }
    });

    it('skb data outside RAM', () => {
      const k = kernel();
      const s = new FakeUnixSocket(k);
      k.write(s.queue('abc', 1n), 'sk_buff', { data: OUTSIDE_RAM });
      assertOvmError(() => s.read(), PageFaultError);
    });

    it('a NULL sock, and a kernel without tick_nsec or with it zero', () => {
      const k = kernel();
      const s = new FakeUnixSocket(k);
      k.write(k.ptr('file', s.file, 'private_data'), 'socket', { sk: 0 });
      assertOvmError(() => s.read(), BadDataError);
      const noTick = new FakeUnixSocket(new FakeKernel());
      assertOvmError(() => noTick.read(), BadDataError);
      const k2 = kernel();
      k2.u64(k2.symbolAddress('tick_nsec'), 0n);
      assertOvmError(() => new FakeUnixSocket(k2).read(), BadDataError);
    });
  });
});
