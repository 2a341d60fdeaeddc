import { UnsupportedError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { pageCacheRuns, readCachedFile, runPages } from './page-cache.js';

const PAGE = 4096;

/** A file's data parts: offset and bytes, ascending; the rest below size reads as zeros. */
export interface FileData {
  size: number;
  parts: { off: number; data: Buffer }[];
}

/**
 * The contents of a file no name reaches any more, from its page cache
 * alone (the host cannot read the guest's disk). On tmpfs the page cache
 * is the file: a page not there is a hole, as SEEK_DATA reports it
 * (shmem's mapping_seek_hole_data), and runs of present pages are the data
 * parts; a page swapped out cannot be read from RAM. On any other file
 * system every page must be cached, and the file is one data part (its
 * holes on disk are not in RAM either).
 */
export function deletedFileData(inode: KObject, size: number, what: string): FileData {
  const prog = inode.prog;
  const mapping = inode.member('i_mapping').deref();
  const shmem = prog.symbols.lookup('shmem_aops')?.address;
  if (shmem === undefined || mapping.member('a_ops').value() !== shmem) {
    const data = size === 0 ? Buffer.alloc(0) : readCachedFile(mapping, 0, size);
    if (!data) throw new UnsupportedError(`${what}: part of its contents is not in the guest's page cache`);
    return { size, parts: size ? [{ off: 0, data }] : [] };
  }
  const end = BigInt(Math.ceil(size / PAGE));
  const parts: FileData['parts'] = [];
  let run: { off: number; pages: Buffer[] } | undefined;
  const budget = { nodes: Number(end) * 8 + 64 };
  for (const r of pageCacheRuns(mapping, end, budget)) {
    if (r.value) throw new UnsupportedError(`${what}: pages of it are swapped out`);
    for (const { index, phys } of runPages(mapping, r, end)) {
      const off = Number(index) * PAGE;
      const page = prog.mem.read(phys, PAGE, `page ${index} of ${what}`);
      if (run && run.off + run.pages.length * PAGE === off) run.pages.push(page);
      else {
        if (run) parts.push({ off: run.off, data: Buffer.concat(run.pages) });
        run = { off, pages: [page] };
      }
    }
  }
  if (run) parts.push({ off: run.off, data: Buffer.concat(run.pages) });
  // The last page holds bytes past the size: not data.
  for (const p of parts) if (p.off + p.data.length > size) p.data = p.data.subarray(0, size - p.off);
  return { size, parts: parts.filter((p) => p.data.length > 0) };
}

/**
 * Whether a struct path is named by its dentry's d_dname (shmem's internal
 * files behind MAP_SHARED|MAP_ANONYMOUS, memfd and SysV memory print as
 * "/dev/zero (deleted)", "/memfd:x (deleted)"): no file that was unlinked.
 */
export function isPseudoFile(path: KObject): boolean {
  const ops = path.member('dentry').deref().member('d_op').value();
  return ops !== 0n && KObject.struct(path.prog, 'dentry_operations', ops).member('d_dname').value() !== 0n;
}

/** The contents as one buffer of `size` bytes, holes as zeros. */
export function flatten(d: FileData): Buffer {
  const out = Buffer.alloc(d.size);
  for (const p of d.parts) p.data.copy(out, p.off);
  return out;
}
