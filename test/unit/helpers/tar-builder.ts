/**
 * Tars crafted byte by byte for the archive reader's tests: any name, any
 * type, pax and GNU long-name headers, so hostile archives are easy to say.
 */

export interface TarSpec {
  name: string;
  /** '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, 'x', 'g', 'L', 'K', ... */
  type?: string;
  body?: Buffer | string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** The size field, when it must lie about the body. */
  size?: number;
  /** The ustar prefix field. */
  prefix?: string;
  /** 'gnu' writes GNU's magic ("ustar  \0"). */
  magic?: 'ustar' | 'gnu';
  /** Breaks the checksum. */
  badChecksum?: boolean;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

export function tarHeader(s: TarSpec): Buffer {
  const h = Buffer.alloc(512);
  const body = typeof s.body === 'string' ? Buffer.from(s.body) : (s.body ?? Buffer.alloc(0));
  h.write(s.name, 0, 100, 'utf8');
  h.write(octal(s.mode ?? 0o644, 8), 100, 'latin1');
  h.write(octal(s.uid ?? 0, 8), 108, 'latin1');
  h.write(octal(s.gid ?? 0, 8), 116, 'latin1');
  h.write(octal(s.size ?? body.length, 12), 124, 'latin1');
  h.write(octal(1700000000, 12), 136, 'latin1');
  h.write(s.type ?? '0', 156, 'latin1');
  h.write(s.linkname ?? '', 157, 100, 'utf8');
  h.write(s.magic === 'gnu' ? 'ustar  \0' : 'ustar\x0000', 257, 'latin1');
  if (s.prefix) h.write(s.prefix, 345, 155, 'utf8');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  if (s.badChecksum) sum += 1;
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  return h;
}

function pad(b: Buffer): Buffer {
  const rest = (512 - (b.length % 512)) % 512;
  return rest ? Buffer.concat([b, Buffer.alloc(rest)]) : b;
}

/** One entry: its header and its padded body. */
export function tarEntry(s: TarSpec): Buffer {
  const body = typeof s.body === 'string' ? Buffer.from(s.body) : (s.body ?? Buffer.alloc(0));
  return Buffer.concat([tarHeader(s), pad(body)]);
}

/** A pax header entry with these records, for the entry that follows. */
export function paxEntry(records: Record<string, string>, global = false): Buffer {
  const lines = Object.entries(records).map(([k, v]) => {
    const rest = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (String(len).length + Buffer.byteLength(rest) !== len) len++;
    return `${len}${rest}`;
  });
  return tarEntry({ name: 'PaxHeaders/x', type: global ? 'g' : 'x', body: lines.join('') });
}

/** A GNU long name ('L') or long link ('K') entry for the entry that follows. */
export function gnuLongEntry(text: string, type: 'L' | 'K' = 'L'): Buffer {
  return tarEntry({ name: '././@LongLink', type, body: Buffer.concat([Buffer.from(text), Buffer.from([0])]), magic: 'gnu' });
}

/** Entries, then the two zero blocks. */
export function tarOf(...entries: (TarSpec | Buffer)[]): Buffer {
  return Buffer.concat([...entries.map((e) => (Buffer.isBuffer(e) ? e : tarEntry(e))), Buffer.alloc(1024)]);
}

/** The files of a good small archive in containerd 2.x's layout. */
export function goodArchiveEntries(o: { mounts?: unknown[]; args?: string[]; rootfsDiff?: Buffer } = {}): TarSpec[] {
  const config = { id: 'c0ffee', name: 'counter', rootfsImage: 'docker.io/library/busybox:latest', rootfsImageRef: 'sha256:1234', rootfsImageName: 'docker.io/library/busybox:latest', runtime: 'io.containerd.ovmigrate.v1', checkpointedTime: '2026-12-02T03:00:00Z' };
  const spec = { ociVersion: '1.1.0', process: { args: o.args ?? ['sh', '-c', 'counter'], cwd: '/' }, mounts: o.mounts ?? [{ destination: '/proc', type: 'proc', source: 'proc', options: [] }], annotations: { 'io.kubernetes.cri.container-type': 'container' } };
  return [
    { name: 'checkpoint/', type: '5', mode: 0o755 },
    { name: 'checkpoint/inventory.img', body: Buffer.from([1, 2, 3, 4]) },
    { name: 'checkpoint/pages-1.img', body: Buffer.alloc(5000, 7) },
    { name: 'config.dump', body: JSON.stringify(config) },
    { name: 'spec.dump', body: JSON.stringify(spec) },
    { name: 'status.dump', body: JSON.stringify({ id: 'c0ffee', image: { image: 'docker.io/library/busybox:latest' } }) },
    { name: 'rootfs-diff.tar', body: o.rootfsDiff ?? tarOf({ name: 'data/', type: '5', mode: 0o755 }, { name: 'data/count', body: '41\n' }) },
    { name: 'container.log', body: 'log line\n' },
    { name: 'stats-dump', body: Buffer.from([0x54, 0x56, 0x11, 0x57]) },
  ];
}
