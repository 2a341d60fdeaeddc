import { BadDataError } from '../../common/errors.js';
import { KObject, listForEach } from '../kernel/object.js';

/** More addresses on one device than any container has: a longer list is corrupt RAM. */
const MAX_ADDRESSES = 4096;

/** What an address of either family carries in RTM_NEWADDR besides the address itself. */
interface AddressCommon {
  ifindex: number;
  prefixlen: number;
  /** IFA_F_* (32 bits; the ifaddrmsg keeps the low 8). */
  flags: number;
  proto: number;
  rtPriority: number;
  validLft: number;
  preferredLft: number;
  /** jiffies of creation and of the last change. */
  cstamp: bigint;
  tstamp: bigint;
}

/** An IPv4 address of a device (struct in_ifaddr), what RTM_NEWADDR carries. */
export interface Inet4Address extends AddressCommon {
  scope: number;
  /** Network byte order, as the kernel keeps them. */
  local: Buffer;
  address: Buffer;
  broadcast: Buffer;
  label: string;
}

/** An IPv6 address of a device (struct inet6_ifaddr). */
export interface Inet6Address extends AddressCommon {
  /** IFA_HOST/IFA_LINK/... as the kernel keeps it (ipv6_addr_scope), not the RT_SCOPE_* of the message. */
  scope: number;
  address: Buffer;
  peer: Buffer;
}

function be32(obj: KObject): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(obj.num());
  return b;
}

function optional(obj: KObject, name: string): number {
  return obj.has(name) ? obj.member(name).num() : 0;
}

/** A device's ifindex: an int the kernel allocates from 1 (dev_index_reserve); anything else is corrupt RAM. */
function deviceIndex(dev: KObject): number {
  const ifindex = dev.member('ifindex').num();
  if (ifindex <= 0) throw new BadDataError(`${dev.path}.ifindex is ${ifindex}`);
  return ifindex;
}

/** The IPv4 addresses of a device (dev->ip_ptr->ifa_list), primary ones first as the kernel keeps them. */
export function inet4Addresses(dev: KObject): Inet4Address[] {
  const inDev = dev.member('ip_ptr').value();
  if (inDev === 0n) return [];
  const ifindex = deviceIndex(dev);
  const out: Inet4Address[] = [];
  const seen = new Set<bigint>();
  let p = KObject.struct(dev.prog, 'in_device', inDev).member('ifa_list').value();
  while (p !== 0n) {
    if (seen.has(p)) throw new BadDataError(`${dev.path}: ifa_list loops at 0x${p.toString(16)}`);
    if (seen.size >= MAX_ADDRESSES) throw new BadDataError(`${dev.path}: ifa_list has more than ${MAX_ADDRESSES} addresses`);
    seen.add(p);
    const ifa = KObject.struct(dev.prog, 'in_ifaddr', p);
    if (ifa.member('ifa_dev').value() !== inDev) throw new BadDataError(`${ifa.path}.ifa_dev is not ${dev.path}'s in_device`);
    out.push({
      ifindex,
      prefixlen: ifa.member('ifa_prefixlen').num(),
      flags: ifa.member('ifa_flags').num(),
      scope: ifa.member('ifa_scope').num(),
      local: be32(ifa.member('ifa_local')),
      address: be32(ifa.member('ifa_address')),
      broadcast: be32(ifa.member('ifa_broadcast')),
      label: ifa.member('ifa_label').string(),
      // ifa_proto: 6.0 (commit 47f0bd503210, "net: Add new protocol attribute to IP addresses").
      proto: optional(ifa, 'ifa_proto'),
      rtPriority: ifa.member('ifa_rt_priority').num(),
      validLft: ifa.member('ifa_valid_lft').num(),
      preferredLft: ifa.member('ifa_preferred_lft').num(),
      cstamp: ifa.member('ifa_cstamp').value(),
      tstamp: ifa.member('ifa_tstamp').value(),
    });
    p = ifa.member('ifa_next').value();
  }
  return out;
}

/** The IPv6 unicast addresses of a device (dev->ip6_ptr->addr_list), in list order (what RTM_GETADDR dumps). */
export function inet6Addresses(dev: KObject): Inet6Address[] {
  const idev = dev.member('ip6_ptr').value();
  if (idev === 0n) return [];
  const ifindex = deviceIndex(dev);
  const head = KObject.struct(dev.prog, 'inet6_dev', idev).member('addr_list').address;
  return [...listForEach(dev.prog, head, 'inet6_ifaddr', 'if_list', MAX_ADDRESSES)].map((ifa) => {
    if (ifa.member('idev').value() !== idev) throw new BadDataError(`${ifa.path}.idev is not ${dev.path}'s inet6_dev`);
    // A u32 in inet6_ifaddr; ipv6_add_addr takes at most 128.
    const prefixlen = ifa.member('prefix_len').num();
    if (prefixlen > 128) throw new BadDataError(`${ifa.path}.prefix_len is ${prefixlen}`);
    return {
      ifindex,
      prefixlen,
      flags: ifa.member('flags').num(),
      scope: ifa.member('scope').num(),
      address: Buffer.from(ifa.prog.read(ifa.member('addr').address, 16, `${ifa.path}.addr`)),
      peer: Buffer.from(ifa.prog.read(ifa.member('peer_addr').address, 16, `${ifa.path}.peer_addr`)),
      proto: optional(ifa, 'ifa_proto'),
      rtPriority: ifa.member('rt_priority').num(),
      validLft: ifa.member('valid_lft').num(),
      preferredLft: ifa.member('prefered_lft').num(),
      cstamp: ifa.member('cstamp').value(),
      tstamp: ifa.member('tstamp').value(),
    };
  });
}
