import { KObject } from '../../kernel/object.js';
import { pathIdentity } from '../../linux/file-identity.js';
import { openFileState } from '../../linux/open-file.js';
import { fileSuperblock, shmSuperblock } from '../../linux/vma-state.js';
import type { FileTable } from '../files.js';
import { fileFlags } from './anon-flags.js';
import { FdDumper, fdProblem } from './fd-dumper.js';

const NO_OWNER = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };

function memfdEntry(files: FileTable, id: number, file: KObject, flags: number, pos: bigint, fown: Record<string, number>, who: string): Record<string, unknown> {
  return { type: 'MEMFD', id, memfd: { id, flags, pos, fown, inode_id: files.shmem.memfdInodeId(file, who) } };
}

/**
 * memfds (criu/memfd.c dump_one_memfd): a memfd_file_entry naming the
 * inode, whose name, seals and contents (pagemap-shmem) are dumped once
 * in memfd.img however many fds and mappings share it.
 */
export const memfdFd: FdDumper = {
  kinds: ['memfd'],
  dump(files, fd) {
    // MFD_HUGETLB memfds live on hugetlbfs, not on shm_mnt: CRIU 3.17 has hugetlb_flag for them, not done here.
    if (fileSuperblock(fd.file) !== shmSuperblock(fd.file)) return { problems: [fdProblem(fd, `${fd.name} is a hugetlbfs memfd (not supported yet)`)] };
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (fresh) files.entries.push(memfdEntry(files, id, fd.file, fileFlags(fd.file), openFileState(fd.file).pos, files.fown(fd.file), fd.task));
    return { opened: { id, type: 'MEMFD' } };
  },
};

/** vma_entry.shmid of a mapped memfd (criu/mem.c dump_filemap): its file id, flags, pos and owner 0 as for any mapped file. */
export function mappedMemfdId(files: FileTable, file: KObject, who: string): number {
  const { id, fresh } = files.ids.specialId(pathIdentity(openFileState(file).path));
  if (fresh) files.entries.push(memfdEntry(files, id, file, 0, 0n, NO_OWNER, who));
  return id;
}
