import assert from 'node:assert/strict';
import { KObject } from '../../introspect/kernel/object.js';
import { elfBuildId } from '../../introspect/linux/elf-build-id.js';
import { FakeKernel } from './helpers/fake-program.js';

/** A 64-bit ELF whose one program header (at 64) is a PT_NOTE at `noteAt` holding a GNU build-id of these bytes. */
function elf(noteAt: number, id: Buffer): Buffer {
  const out = Buffer.alloc(noteAt + 16 + id.length);
  out.writeUInt32BE(0x7f454c46, 0);
  out[4] = 2;
  out.writeBigUInt64LE(64n, 32);
  out.writeUInt16LE(1, 56);
  out.writeUInt32LE(4, 64);
  out.writeBigUInt64LE(BigInt(noteAt), 64 + 8);
  out.writeBigUInt64LE(BigInt(16 + id.length), 64 + 32);
  out.writeUInt32LE(4, noteAt);
  out.writeUInt32LE(id.length, noteAt + 4);
  out.writeUInt32LE(3, noteAt + 8);
  out.write('GNU\0', noteAt + 12);
  id.copy(out, noteAt + 16);
  return out;
}

/** An inode of `size` bytes whose page cache holds these pages of `bytes` (by index). */
function inode(k: FakeKernel, bytes: Buffer, cached: number[], size = bytes.length): KObject {
  const values: Record<string, bigint | number> = { shift: 0 };
  for (const index of cached) {
    const p = k.allocPage();
    k.put(p.va, bytes.subarray(index * 4096, (index + 1) * 4096));
    k.write(p.page, 'page', { index });
    values[`slots[${index}]`] = p.page;
  }
  const head = k.new('xa_node', values) | 2n;
  return KObject.struct(k.program(), 'inode', k.new('inode', { i_size: size, i_mapping: k.new('address_space', { 'i_pages.xa_head': head }) }));
}

describe('ELF build-id from the page cache', () => {
  const id = Buffer.from('0123456789abcdefghij');
  const words = Array.from({ length: 5 }, (_, i) => id.readUInt32LE(i * 4));

  it('reads the GNU note as criu dump does, across pages', () => {
    const k = new FakeKernel();
    assert.deepEqual(elfBuildId(inode(k, elf(120, id), [0]), 156), { words });
    const far = elf(4090, id);
    assert.deepEqual(elfBuildId(inode(k, far, [0, 1]), far.length), { words });
  });

  it('says uncached when the header or the note is not in the page cache, and none for no ELF or a note past the file', () => {
    const k = new FakeKernel();
    const far = elf(4090, id);
    assert.equal(elfBuildId(inode(k, far, []), far.length), 'uncached');
    assert.equal(elfBuildId(inode(k, far, [0]), far.length), 'uncached');
    assert.equal(elfBuildId(inode(k, Buffer.from('#!/bin/sh\n'.padEnd(100)), [0]), 100), 'none');
    assert.equal(elfBuildId(inode(k, elf(120, id), [0]), 130), 'none');
  });
});
