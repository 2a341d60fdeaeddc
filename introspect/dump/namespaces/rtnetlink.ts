/**
 * rtnetlink messages as the kernel writes them into a dump and `ip addr
 * save` / `ip route save` / `ip rule save` copy them to their output
 * (include/uapi/linux/netlink.h, rtnetlink.h): a 16-byte nlmsghdr, the
 * family header, then attributes each 4-byte aligned.
 */

export const RTM_NEWROUTE = 24;
export const RTM_NEWADDR = 20;
export const RTM_NEWRULE = 32;
export const NLM_F_MULTI = 0x2;
export const NLM_F_DUMP_FILTERED = 0x20;

/** What the dumping `ip` put in nlmsg_seq/nlmsg_pid: its own request's (time(NULL), its port); restore never reads them. */
export interface Sender {
  seq: number;
  pid: number;
}

export class Attrs {
  private readonly parts: Buffer[] = [];

  put(type: number, payload: Buffer): this {
    const head = Buffer.alloc(4);
    head.writeUInt16LE(4 + payload.length, 0);
    head.writeUInt16LE(type, 2);
    const pad = (4 - (payload.length % 4)) % 4;
    this.parts.push(head, payload, Buffer.alloc(pad));
    return this;
  }

  u32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.put(type, b);
  }

  u8(type: number, v: number): this {
    return this.put(type, Buffer.from([v & 0xff]));
  }

  /** A NUL-terminated string (nla_put_string). */
  str(type: number, s: string): this {
    return this.put(type, Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]));
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** One netlink message: header, family header (already padded to 4), attributes. */
export function nlmsg(type: number, flags: number, sender: Sender, family: Buffer, attrs: Attrs): Buffer {
  const body = Buffer.concat([family, attrs.bytes()]);
  const head = Buffer.alloc(16);
  head.writeUInt32LE(16 + body.length, 0);
  head.writeUInt16LE(type, 4);
  head.writeUInt16LE(flags, 6);
  head.writeUInt32LE(sender.seq >>> 0, 8);
  head.writeUInt32LE(sender.pid >>> 0, 12);
  return Buffer.concat([head, body]);
}

/** The file `ip ... save` writes: its 4-byte magic, then the messages. */
export function ipSaveFile(magic: number, messages: Buffer[]): Buffer {
  const m = Buffer.alloc(4);
  m.writeUInt32LE(magic);
  return Buffer.concat([m, ...messages]);
}

/** Magics of iproute2's save files (ip/ipaddress.c, ip/iproute.c, ip/iprule.c). */
export const IFADDR_SAVE_MAGIC = 0x47361222;
export const ROUTE_SAVE_MAGIC = 0x45311224;
export const RULE_SAVE_MAGIC = 0x71706986;
