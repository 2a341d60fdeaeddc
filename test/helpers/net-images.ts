import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The raw images of a dumped network namespace (criu/net.c): what `ip addr
 * save`, `ip route save`, `ip -6 route save`, `ip rule save` printed, and
 * iptables-save / ip6tables-save / `nft list ruleset` text. crit cannot
 * decode them (no image magic), so they are compared here.
 */
export const RAW_NET_IMAGE = /^(ifaddr|route|route6|rule|iptables|ip6tables|nftables)-\d+\.img$/;

/** The rtnetlink messages of an `ip ... save` file, nlmsg_seq and nlmsg_pid zeroed: the dumping `ip`'s own request's. */
export function savedMessages(file: Buffer): { magic: number; messages: string[] } {
  const messages: string[] = [];
  for (let i = 4; i < file.length;) {
    const len = file.readUInt32LE(i);
    assert.ok(len >= 16 && i + len <= file.length, `a netlink message of ${len} bytes at ${i}`);
    const m = Buffer.from(file.subarray(i, i + len));
    m.fill(0, 8, 16);
    messages.push(m.toString('hex'));
    i += len;
  }
  return { magic: file.length >= 4 ? file.readUInt32LE(0) : 0, messages };
}

/**
 * The same network images: the same messages (the kernel's own, attribute
 * for attribute) and the same firewall text. CRIU's nftables image of a
 * namespace without a firewall is not empty: it holds the CRIU chains its
 * own network lock (iptables-restore through iptables-nft) put there for
 * the dump; ovmigrate, which locks nothing, writes the empty ruleset.
 */
export function assertSameNetImages(ours: string, theirs: string): void {
  const list = (d: string) => fs.readdirSync(d).filter((f) => RAW_NET_IMAGE.test(f)).sort();
  assert.deepEqual(list(ours), list(theirs), 'the same network images');
  for (const f of list(theirs)) {
    const a = fs.readFileSync(path.join(ours, f));
    const b = fs.readFileSync(path.join(theirs, f));
    if (/^(ifaddr|route|route6|rule)-/.test(f)) assert.deepEqual(savedMessages(a), savedMessages(b), f);
    else if (f.startsWith('nftables-') && a.length === 0 && b.length) assert.match(b.toString('utf8'), /chain CRIU \{/, `${f}: CRIU's holds only its network lock`);
    else assert.equal(a.toString('utf8'), b.toString('utf8'), f);
  }
}
