import { openFileState } from '../../linux/open-file.js';
import { pipeContents } from '../../linux/pipes.js';
import { FdDumper } from './fd-dumper.js';

/** include/uapi/asm-generic/fcntl.h */
const O_WRONLY = 1;

/** Pipes (criu/pipes.c): one entry per end, the contents once per pipe. */
export const pipeFd: FdDumper = {
  kinds: ['pipe'],
  dump(files, fd) {
    const { flags } = openFileState(fd.file);
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (fresh) files.entries.push({ type: 'PIPE', id, pipe: { id, pipe_id: fd.identity.ino, flags, fown: files.fown(fd.file) } });
    // criu/pipes.c dump_one_pipe_data: the contents once per pipe, from a read end.
    if ((flags & O_WRONLY) === 0 && !files.pipesDumped.has(fd.identity.ino)) {
      files.pipesDumped.add(fd.identity.ino);
      const pipe = pipeContents(fd.identity.inode, files.pages);
      files.pipesData.push({ entry: { pipe_id: pipe.ino, bytes: pipe.data.length, size: pipe.size }, data: pipe.data });
    }
    return { opened: { id, type: 'PIPE' } };
  },
};
