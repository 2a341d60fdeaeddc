import { KObject } from '../kernel/object.js';
import { readCachedFile } from './page-cache.js';

/** criu/files-reg.c BUILD_ID_MAP_SIZE: the build-id is looked for in the first MiB. */
const BUILD_ID_SCAN = 1 << 20;
const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;

/**
 * The GNU build-id of an ELF file, read from its page cache the way CRIU
 * reads it from the file (criu/files-reg.c get_build_id_64): the first
 * PT_NOTE segment holding an NT_GNU_BUILD_ID note, as u32 words. Undefined
 * when the file is no ELF or its pages are not cached.
 */
export function elfBuildId(inode: KObject, size: number): number[] | undefined {
  const mapping = inode.member('i_mapping').deref();
  const mapped = Math.min(size, BUILD_ID_SCAN);
  const read = (off: number, len: number) => (off < 0 || len < 0 || off + len > mapped ? undefined : readCachedFile(mapping, off, len));
  const ehdr = read(0, 64);
  if (!ehdr || ehdr.readUInt32BE(0) !== 0x7f454c46 || ehdr[4] !== 2) return undefined;
  const phoff = Number(ehdr.readBigUInt64LE(32));
  const phnum = ehdr.readUInt16LE(56);
  for (let i = 0; i < phnum && i < 256; i++) {
    const ph = read(phoff + i * 56, 56);
    if (!ph) return undefined;
    if (ph.readUInt32LE(0) !== PT_NOTE) continue;
    const offset = Number(ph.readBigUInt64LE(8));
    const filesz = Number(ph.readBigUInt64LE(32));
    const notes = read(offset, Math.min(filesz, mapped - offset));
    if (!notes) return undefined;
    for (let at = 0; at + 12 <= notes.length;) {
      const namesz = notes.readUInt32LE(at);
      const descsz = notes.readUInt32LE(at + 4);
      const type = notes.readUInt32LE(at + 8);
      const desc = at + 12 + ((namesz + 3) & ~3);
      if (type === NT_GNU_BUILD_ID) {
        if (descsz === 0 || descsz > 512 || desc + descsz > notes.length) return undefined;
        const bytes = Buffer.alloc((descsz + 3) & ~3);
        notes.copy(bytes, 0, desc, desc + descsz);
        return Array.from({ length: bytes.length / 4 }, (_, k) => bytes.readUInt32LE(k * 4));
      }
      at = desc + ((descsz + 3) & ~3);
    }
  }
  return undefined;
}
