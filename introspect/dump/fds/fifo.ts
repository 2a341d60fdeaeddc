import { openFileState } from '../../linux/open-file.js';
import { FdDumper } from './fd-dumper.js';
import { dumpPipeData } from './pipe.js';

/**
 * FIFOs opened by path (criu/fifo.c dump_one_fifo): a regular-file entry
 * under an id of its own carries the path and flags, then the FIFO entry
 * names it (regf_id) and the pipe (its inode number); the contents go to
 * fifo-data.img once per FIFO, from a read end, as a pipe's do. Restore
 * opens the path O_RDWR first, so neither end waits for the other.
 */
export const fifoFd: FdDumper = {
  kinds: ['fifo'],
  dump(files, fd) {
    const st = openFileState(fd.file);
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (fresh) {
      const regfId = files.ids.newFileId();
      files.regEntry(regfId, st.path, fd.identity, st.flags, st.pos, files.fown(fd.file), fd.task, fd.fd, st.inode);
      files.entries.push({ type: 'FIFO', id, fifo: { id, pipe_id: fd.identity.ino, regf_id: regfId } });
    }
    dumpPipeData(files, fd, st.flags, { dumped: files.fifosDumped, data: files.fifoData });
    return { opened: { id, type: 'FIFO' } };
  },
};
