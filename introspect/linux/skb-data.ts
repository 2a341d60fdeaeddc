import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { Program } from '../kernel/program.js';
import { PageInfo } from './pages.js';

/** A TCP skb carries at most MAX_SKB_FRAGS (17) page frags; more is corrupt. */
const MAX_FRAGS = 64;
/** One skb holds at most 64 KiB of payload (GSO_LEGACY_MAX_SIZE; BIG TCP's 512 KiB stays within this bound). */
const MAX_SKB_BYTES = 1 << 20;
/** include/net/netmem.h: the low bit of a netmem_ref marks a net_iov (device memory), not a struct page. */
const NET_IOV = 1n;
/** include/net/tcp.h */
const TCPHDR_SYN = 0x02;

/** A queued sk_buff with its TCP control block (include/net/tcp.h TCP_SKB_CB: seq, end_seq at the start of cb). */
export interface QueuedSkb {
  skb: bigint;
  seq: number;
  endSeq: number;
  len: number;
  /** tcp_flags has SYN: it takes a sequence number and no byte. */
  syn: boolean;
}

/** Offsets of what the queue walkers read, from BTF, once per walk. */
export class SkbLayout {
  readonly next: bigint;
  readonly seq: bigint;
  readonly endSeq: bigint;
  readonly flags: bigint;

  constructor(readonly prog: Program) {
    const cb = BigInt(prog.btf.memberOffset('sk_buff', 'cb'));
    this.next = BigInt(prog.btf.memberOffset('sk_buff', 'next'));
    this.seq = cb + BigInt(prog.btf.memberOffset('tcp_skb_cb', 'seq'));
    this.endSeq = cb + BigInt(prog.btf.memberOffset('tcp_skb_cb', 'end_seq'));
    this.flags = cb + BigInt(prog.btf.memberOffset('tcp_skb_cb', 'tcp_flags'));
  }

  describe(skb: bigint): QueuedSkb {
    const s = KObject.struct(this.prog, 'sk_buff', skb);
    const len = s.member('len').num();
    if (len > MAX_SKB_BYTES) throw new BadDataError(`${s.path}.len is ${len}`);
    const flags = this.prog.read(skb + this.flags, 1, `${s.path} TCP_SKB_CB.tcp_flags`)[0];
    return { skb, seq: this.prog.u32(skb + this.seq, `${s.path} TCP_SKB_CB.seq`), endSeq: this.prog.u32(skb + this.endSeq, `${s.path} TCP_SKB_CB.end_seq`), len, syn: (flags & TCPHDR_SYN) !== 0 };
  }
}

/** The skbs of a struct sk_buff_head in list order (skb_queue_walk), bounded by its qlen and cycle-checked. */
export function* skbQueue(layout: SkbLayout, head: KObject, bound: number): Generator<QueuedSkb> {
  const qlen = head.member('qlen').num();
  if (qlen > bound) throw new BadDataError(`${head.path} holds ${qlen} skbs, more than ${bound}`);
  const seen = new Set<bigint>();
  let skb = head.member('next').value();
  while (skb !== head.address) {
    if (skb === 0n) throw new BadDataError(`${head.path}: NULL in the list`);
    if (seen.has(skb) || seen.size >= qlen) throw new BadDataError(`${head.path}: more skbs linked than its qlen ${qlen}`);
    seen.add(skb);
    yield layout.describe(skb);
    skb = layout.prog.u64(skb + layout.next, `sk_buff(0x${skb.toString(16)}).next`);
  }
  if (seen.size !== qlen) throw new BadDataError(`${head.path}: ${seen.size} skbs linked, qlen says ${qlen}`);
}

/** Members of skb_frag_t: a bio_vec (6.1) or, since "net: add netmem to skb_frag_t" (6.8), struct skb_frag with a netmem_ref. */
function fragMembers(frag: KObject): { page: string; len: string; offset: string } {
  if (frag.has('bv_page')) return { page: 'bv_page', len: 'bv_len', offset: 'bv_offset' };
  if (frag.has('netmem')) return { page: 'netmem', len: 'len', offset: 'offset' };
  throw new BadDataError(`${frag.path}: skb_frag_t has neither bv_page nor netmem in this kernel`);
}

/**
 * Bytes [from, from + n) of an skb's payload, as skb_copy_bits reads them:
 * the linear part (head..), then the page frags of skb_shinfo(skb). A
 * frag_list (GRO chains) is not walked: TCP's own queues do not build one.
 */
export function skbBytes(prog: Program, pages: PageInfo, skbAddr: bigint, from: number, n: number): Buffer {
  const skb = KObject.struct(prog, 'sk_buff', skbAddr);
  const len = skb.member('len').num();
  const dataLen = skb.member('data_len').num();
  if (dataLen > len || from < 0 || n < 0 || from + n > len) throw new BadDataError(`${skb.path}: bytes ${from}+${n} of ${len} (${dataLen} in frags)`);
  const headLen = len - dataLen;
  const out: Buffer[] = [];
  let at = from;
  let left = n;
  if (at < headLen && left > 0) {
    const take = Math.min(headLen - at, left);
    out.push(prog.read(skb.member('data').value() + BigInt(at), take, `${skb.path}.data`));
    at += take;
    left -= take;
  }
  if (left > 0 || dataLen > 0) {
    // skb_shinfo: at head + end, end an offset (NET_SKBUFF_DATA_USES_OFFSET on 64-bit) or a pointer.
    const end = skb.member('end');
    const endValue = end.value();
    const shinfoAddr = end.size === 4 ? skb.member('head').value() + endValue : endValue;
    const shinfo = KObject.struct(prog, 'skb_shared_info', shinfoAddr);
    const nrFrags = shinfo.member('nr_frags').num();
    const frags = shinfo.member('frags');
    if (nrFrags > MAX_FRAGS || (frags.type.kind === 'array' && nrFrags > frags.type.nelems)) throw new BadDataError(`${shinfo.path}.nr_frags is ${nrFrags}`);
    if (shinfo.member('frag_list').value() !== 0n && left > 0) throw new UnsupportedError(`${skb.path} has a frag_list (chained skbs are not read)`);
    let fragStart = headLen;
    for (let i = 0; i < nrFrags && left > 0; i++) {
      const frag = frags.index(i);
      const m = fragMembers(frag);
      const fragLen = frag.member(m.len).num();
      const fragEnd = fragStart + fragLen;
      if (at < fragEnd) {
        const page = frag.member(m.page).value();
        if (m.page === 'netmem' && (page & NET_IOV) !== 0n) throw new UnsupportedError(`${frag.path} is device memory (net_iov), not a page`);
        const take = Math.min(fragEnd - at, left);
        out.push(pages.readPageData(page, frag.member(m.offset).num() + (at - fragStart), take, `${frag.path}.${m.page}`));
        at += take;
        left -= take;
      }
      fragStart = fragEnd;
    }
    if (left > 0) throw new BadDataError(`${skb.path}: its linear part and ${nrFrags} frags hold less than its len ${len}`);
  }
  return Buffer.concat(out);
}
