import { KObject } from '../kernel/object.js';
import { readCachedFile } from './page-cache.js';

/** criu/files-reg.c BUILD_ID_MAP_SIZE: the build-id is looked for in the first MiB. */
const BUILD_ID_SCAN = 1 << 20;
const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;

/**
 * What the page cache says of a file's GNU build-id: its u32 words, `none`
 * (no ELF, or no build-id note), or `uncached` when a page it needs is not in
 * the guest's page cache: reclaimed (a library's header page is seldom mapped
 * after ld.so read it), or dropped by its file system. The host cannot read
 * the file itself.
 */
export type BuildId = { words: number[] } | 'none' | 'uncached';

/** A read of the page cache that was out of the scanned range (`none`) or missed a page (`uncached`). */
class Missing {
  constructor(readonly why: 'none' | 'uncached') {}
}

/**
 * The GNU build-id of an ELF file, read from its page cache the way CRIU
 * reads it from the file (criu/files-reg.c get_build_id_64): the first
 * PT_NOTE segment holding an NT_GNU_BUILD_ID note, as u32 words.
 */
export function elfBuildId(inode: KObject, size: number): BuildId {
  const mapping = inode.member('i_mapping').deref();
  const mapped = Math.min(size, BUILD_ID_SCAN);
  const read = (off: number, len: number): Buffer => {
    if (off < 0 || len < 0 || off + len > mapped) throw new Missing('none');
    const data = readCachedFile(mapping, off, len);
    if (!data) throw new Missing('uncached');
    return data;
  };
  try {
    const ehdr = read(0, 64);
    if (ehdr.readUInt32BE(0) !== 0x7f454c46 || ehdr[4] !== 2) return 'none';
    const phoff = Number(ehdr.readBigUInt64LE(32));
    const phnum = ehdr.readUInt16LE(56);
    for (let i = 0; i < phnum && i < 256; i++) {
      const ph = read(phoff + i * 56, 56);
      if (ph.readUInt32LE(0) !== PT_NOTE) continue;
      const offset = Number(ph.readBigUInt64LE(8));
      const filesz = Number(ph.readBigUInt64LE(32));
      const notes = read(offset, Math.min(filesz, mapped - offset));
      for (let at = 0; at + 12 <= notes.length;) {
        const namesz = notes.readUInt32LE(at);
        const descsz = notes.readUInt32LE(at + 4);
        const type = notes.readUInt32LE(at + 8);
        const desc = at + 12 + ((namesz + 3) & ~3);
        if (type === NT_GNU_BUILD_ID) {
          if (descsz === 0 || descsz > 512 || desc + descsz > notes.length) return 'none';
          const bytes = Buffer.alloc((descsz + 3) & ~3);
          notes.copy(bytes, 0, desc, desc + descsz);
          return { words: Array.from({ length: bytes.length / 4 }, (_, k) => bytes.readUInt32LE(k * 4)) };
        }
        at = desc + ((descsz + 3) & ~3);
      }
    }
    return 'none';
  } catch (err) {
    if (err instanceof Missing) return err.why;
    throw err;
  }
}
