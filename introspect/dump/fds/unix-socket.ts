import { openFileState } from '../../linux/open-file.js';
import { SOCK_STREAM, TCP_LISTEN, unixSocket } from '../../linux/unix-sockets.js';
import { FdDumper, fdProblem } from './fd-dumper.js';

/** Unix sockets (criu/sk-unix.c dump_one_unix_fd): the socket, its options and its queue. */
export const unixSocketFd: FdDumper = {
  kinds: ['unix-socket'],
  dump(files, fd) {
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (!fresh) return { opened: { id, type: 'UNIXSK' } };
    const problems = [];
    const sk = unixSocket(fd.file, files.pages);
    if (sk.passesFds) problems.push(fdProblem(fd, 'unix socket has file descriptors in flight (SCM_RIGHTS)'));
    if (sk.pendingConnections) problems.push(fdProblem(fd, `listening unix socket has ${sk.pendingConnections} connections not yet accepted`));
    const usk: Record<string, unknown> = {
      id,
      ino: sk.ino,
      type: sk.type,
      state: sk.state,
      flags: openFileState(fd.file).flags,
      uflags: 0,
      backlog: sk.backlog,
      peer: sk.peer,
      fown: files.fown(fd.file),
      opts: sk.opts,
      name: sk.name,
      ...(sk.shutdown ? { shutdown: sk.shutdown } : {}),
      ns_id: files.netNsId(sk.net),
    };
    files.unix.set(sk.ino, { id, sk, task: fd.task, fd: fd.fd });
    files.entries.push({ type: 'UNIXSK', id, usk });
    for (const packet of sk.queue) files.skQueues.push({ entry: { id_for: id, length: packet.length }, data: packet });
    if (sk.state === TCP_LISTEN && sk.type !== SOCK_STREAM) problems.push(fdProblem(fd, 'a listening unix socket that is not SOCK_STREAM'));
    return { opened: { id, type: 'UNIXSK' }, problems };
  },
};
