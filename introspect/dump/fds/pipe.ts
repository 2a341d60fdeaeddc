import { openFileState } from '../../linux/open-file.js';
import { pipeContents } from '../../linux/pipes.js';
import type { FileTable } from '../files.js';
import { FdDumper, FdToDump } from './fd-dumper.js';

/** include/uapi/asm-generic/fcntl.h */
const O_WRONLY = 1;

/** Pipe contents to dump, once per pipe: pipes-data.img for pipes, fifo-data.img for FIFOs (criu/pipes.c struct pipe_data_dump). */
export interface PipeDataDump {
  dumped: Set<bigint>;
  data: { entry: Record<string, unknown>; data: Buffer }[];
}

/** criu/pipes.c dump_one_pipe_data: the contents once per pipe, from a read end. */
export function dumpPipeData(files: FileTable, fd: FdToDump, flags: number, into: PipeDataDump): void {
  if ((flags & O_WRONLY) !== 0 || into.dumped.has(fd.identity.ino)) return;
  into.dumped.add(fd.identity.ino);
  const pipe = pipeContents(fd.identity.inode, files.pages);
  into.data.push({ entry: { pipe_id: pipe.ino, bytes: pipe.data.length, size: pipe.size }, data: pipe.data });
}

/** Pipes (criu/pipes.c): one entry per end, the contents once per pipe. */
export const pipeFd: FdDumper = {
  kinds: ['pipe'],
  dump(files, fd) {
    const { flags } = openFileState(fd.file);
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (fresh) files.entries.push({ type: 'PIPE', id, pipe: { id, pipe_id: fd.identity.ino, flags, fown: files.fown(fd.file) } });
    dumpPipeData(files, fd, flags, { dumped: files.pipesDumped, data: files.pipesData });
    return { opened: { id, type: 'PIPE' } };
  },
};
