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
      // A path's file as CRIU stats it (unix_resolve_name); its mount only when the mount namespace is dumped, which
      // restore enters to bind the name again.
      ...(sk.file ? { file_perms: { mode: sk.file.mode, uid: sk.file.uid, gid: sk.file.gid } } : {}),
      ns_id: files.netNsId(sk.net),
      ...(sk.file && files.mntIds ? { mnt_id: sk.file.mntId } : {}),
    };
    if (sk.name.length > 0 && sk.name[0] !== 0 && sk.name[0] !== 0x2f) problems.push(fdProblem(fd, 'unix socket bound to a relative path'));
    else if (sk.name.length > 0 && sk.name[0] !== 0 && !sk.file) problems.push(fdProblem(fd, 'unix socket bound to a path without its file'));
    if (sk.file?.deleted) problems.push(fdProblem(fd, 'unix socket bound to a path that was removed since'));
    files.unix.set(sk.ino, { id, sk, task: fd.task, fd: fd.fd });
    files.entries.push({ type: 'UNIXSK', id, usk });
    for (const packet of sk.queue) files.skQueues.push({ entry: { id_for: id, length: packet.length }, data: packet });
    if (sk.state === TCP_LISTEN && sk.type !== SOCK_STREAM) problems.push(fdProblem(fd, 'a listening unix socket that is not SOCK_STREAM'));
    return { opened: { id, type: 'UNIXSK' }, problems };
  },
};
