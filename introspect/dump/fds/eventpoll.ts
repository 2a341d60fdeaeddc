import { epollTargets } from '../../linux/eventpoll.js';
import { forEachFd } from '../../linux/files.js';
import { fileFlags } from './anon-flags.js';
import { FdDumper, fdProblem } from './fd-dumper.js';

/**
 * epoll files (criu/eventpoll.c): each target by an fd number of the task
 * that holds the epoll, as restore adds it back with epoll_ctl(ADD) on that
 * fd. A target is registered under the fd it was added with; if that fd now
 * holds another file or none, CRIU (kcmp KCMP_EPOLL_TFD) names the first fd
 * of the same task that holds the target's file, and refuses the dump when
 * there is none (the file lives on only in another task, or in flight):
 * so does this.
 */
export const eventpollDumper: FdDumper = {
  kinds: ['epoll'],
  dump(files, fd) {
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (!fresh) return { opened: { id, type: 'EVENTPOLL' } };
    const byFd = new Map<number, bigint>();
    const firstFd = new Map<bigint, number>();
    for (const open of forEachFd(fd.owner)) {
      byFd.set(open.fd, open.file.address);
      if (!firstFd.has(open.file.address)) firstFd.set(open.file.address, open.fd);
    }
    const problems = [];
    const tfd = [];
    for (const t of epollTargets(fd.file)) {
      const n = byFd.get(t.fd) === t.file ? t.fd : firstFd.get(t.file);
      if (n === undefined) {
        problems.push(fdProblem(fd, `epoll watches a file added as fd ${t.fd} (inode ${t.ino}) that this task no longer holds (closed, or open only in another task)`));
        continue;
      }
      tfd.push({ id: 0, tfd: n, events: t.events, data: t.data, dev: t.dev, inode: t.ino, pos: t.pos });
    }
    if (problems.length) return { problems };
    files.entries.push({ type: 'EVENTPOLL', id, epfd: { id, flags: fileFlags(fd.file), fown: files.fown(fd.file), tfd } });
    return { opened: { id, type: 'EVENTPOLL' } };
  },
};
