import { KObject } from '../../../introspect/kernel/object.js';
import { tmpfsEntries, type TmpfsFile, type TmpfsOptions } from '../../../introspect/linux/tmpfs.js';
import { FakeKernel, Values } from './fake-program.js';

/** A file's bytes, holes as zeros. */
export function fileContents(file: TmpfsFile): Buffer {
  return Buffer.concat([...file.chunks()].map((c) => (typeof c === 'number' ? Buffer.alloc(c) : c)));
}

/** A tmpfs: a superblock, and directories whose children are linked through d_subdirs/d_child. */
export class FakeTmpfs {
  readonly sb: bigint;
  readonly root: bigint;

  constructor(readonly k: FakeKernel) {
    this.sb = k.new('super_block', { s_dev: 0x30 });
    this.root = this.dentry('/', this.inode(0o041777));
    k.write(this.sb, 'super_block', { s_root: this.root });
    this.children(this.root, []);
  }

  inode(mode: number, values: Values = {}): bigint {
    return this.k.new('inode', { i_mode: mode, i_sb: this.sb, 'i_uid.val': 1000, 'i_gid.val': 1000, 'i_mtime.tv_sec': 1_700_000_000, ...values });
  }

  /** A regular file whose bytes are in its page cache (one page). */
  file(text: string): bigint {
    const page = this.k.allocPage();
    this.k.put(page.va, Buffer.from(text));
    return this.inode(0o100644, { i_size: text.length, i_mapping: this.k.new('address_space', { 'i_pages.xa_head': page.page }) });
  }

  dentry(name: string, inode: bigint, values: Values = {}): bigint {
    return this.k.new('dentry', { 'd_name.len': name.length, 'd_name.name': this.k.cstr(name), 'd_hash.pprev': 0x1234n, d_inode: inode, ...values });
  }

  /** Makes `dentries` the children of directory `dir`, in this order. */
  children(dir: bigint, dentries: bigint[]): void {
    for (const d of dentries) this.k.write(d, 'dentry', { d_parent: dir });
    this.k.link(this.k.addr('dentry', dir, 'd_subdirs'), dentries.map((d) => this.k.addr('dentry', d, 'd_child')));
  }

  entries(opts?: TmpfsOptions) {
    return tmpfsEntries(KObject.struct(this.k.program(), 'super_block', this.sb), opts);
  }
}

/**
 * An xarray holding `pages` (index -> entry) under a root node of
 * `rootShift`: only the nodes on the way to each entry exist, as in a
 * sparse file's page cache. Returns the internal entry for xa_head.
 */
export function xarray(k: FakeKernel, pages: Map<bigint, bigint>, rootShift: number): bigint {
  const build = (shift: number, base: bigint, entries: [bigint, bigint][]): bigint => {
    const slots = new Map<number, [bigint, bigint][]>();
    for (const [index, entry] of entries) {
      const offset = Number(((index - base) >> BigInt(shift)) & 63n);
      slots.set(offset, [...(slots.get(offset) ?? []), [index, entry]]);
    }
    const values: Record<string, bigint | number> = { shift };
    for (const [offset, sub] of slots) {
      values[`slots[${offset}]`] = shift === 0 ? sub[0][1] : build(shift - 6, base + (BigInt(offset) << BigInt(shift)), sub);
    }
    return k.new('xa_node', values) | 2n;
  };
  return build(rootShift, 0n, [...pages]);
}

/** A page of `text` that the page cache holds at `index`. */
export function cachedPage(k: FakeKernel, index: bigint, text: string): bigint {
  const p = k.allocPage();
  k.put(p.va, Buffer.from(text));
  k.write(p.page, 'page', { index });
  return p.page;
}

/** A tmpfs with one regular file "f" of `size` bytes whose page cache is `xaHead`. */
export function sparseTmpfs(k: FakeKernel, size: bigint, xaHead: bigint): FakeTmpfs {
  const t = new FakeTmpfs(k);
  const inode = t.inode(0o100600, { i_size: size, i_mapping: k.new('address_space', { 'i_pages.xa_head': xaHead }) });
  t.children(t.root, [t.dentry('f', inode)]);
  return t;
}

/** A 2^40-byte tmpfs file whose page cache is 64^4 paths through five xa_nodes, each node shared by every slot above it. */
export function sharedNodesTmpfs(k: FakeKernel = new FakeKernel()): FakeTmpfs {
  let node = k.new('xa_node', { shift: 0 }) | 2n;
  for (let shift = 6; shift <= 24; shift += 6) {
    const values: Record<string, bigint | number> = { shift };
    for (let i = 0; i < 64; i++) values[`slots[${i}]`] = node;
    node = k.new('xa_node', values) | 2n;
  }
  return sparseTmpfs(k, 1n << 40n, node);
}
