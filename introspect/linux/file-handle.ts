import { KObject } from '../kernel/object.js';

/** include/linux/exportfs.h enum fid_type */
const FILEID_INO32_GEN = 1;
const FILEID_INO64_GEN = 0x81;

/** A file handle as name_to_handle_at(2) and fdinfo's f_handle show it: type and bytes. */
export interface FileHandle {
  type: number;
  bytes: Buffer;
}

/**
 * The handle fdinfo shows for a watched inode (fs/notify/fdinfo.c
 * show_mark_fhandle: exportfs_encode_inode_fh without a parent), for the
 * encoders the file systems of containers use: the generic 32-bit inode
 * and generation (ext4 and others: export_encode_fh in 6.1,
 * generic_encode_ino32_fh since encode_fh became mandatory), tmpfs'
 * shmem_encode_fh, and, for a file system without export operations
 * (9p, proc), the 64-bit inode FID that kernels with FILEID_INO64_GEN
 * ("exportfs: support encoding non-decodeable file handles") encode where
 * older ones fall back to the generic one. Undefined for any other encoder.
 */
export function fileHandle(inode: KObject): FileHandle | undefined {
  const prog = inode.prog;
  const ino = inode.member('i_ino').value();
  const gen = inode.member('i_generation').num();
  const ops = inode.member('i_sb').deref().member('s_export_op').value();
  const encoder = ops === 0n ? 0n : KObject.struct(prog, 'export_operations', ops).member('encode_fh').value();
  const words = (...w: number[]) => {
    const b = Buffer.alloc(w.length * 4);
    w.forEach((v, i) => b.writeUInt32LE(v >>> 0, i * 4));
    return b;
  };
  const ino32 = () => ({ type: FILEID_INO32_GEN, bytes: words(Number(ino & 0xffffffffn), gen) });
  if (ops === 0n) {
    if (prog.btf.enumerator('FILEID_INO64_GEN') === undefined) return ino32();
    return { type: FILEID_INO64_GEN, bytes: words(Number(ino & 0xffffffffn), Number(ino >> 32n), gen) };
  }
  if (encoder === 0n) return ino32();
  const is = (name: string) => prog.symbols.lookup(name)?.address === encoder;
  if (is('generic_encode_ino32_fh')) return ino32();
  if (is('shmem_encode_fh')) return { type: FILEID_INO32_GEN, bytes: words(gen, Number(ino & 0xffffffffn), Number(ino >> 32n)) };
  return undefined;
}

/** CRIU's fh_entry.handle: the handle's bytes in little-endian u64s, at least 16 (proc_parse.c parse_fhandle_encoded). */
export function handleWords(bytes: Buffer): bigint[] {
  const n = Math.max(16, Math.ceil(bytes.length / 8));
  const padded = Buffer.alloc(n * 8);
  bytes.copy(padded);
  return Array.from({ length: n }, (_, i) => padded.readBigUInt64LE(i * 8));
}
