import { FileKind } from '../../linux/files.js';
import { eventFdDumper } from './eventfd.js';
import { eventpollDumper } from './eventpoll.js';
import { fanotifyDumper } from './fanotify.js';
import { FdDumper } from './fd-dumper.js';
import { fifoFd } from './fifo.js';
import { inetSocketFd } from './inet-socket.js';
import { inotifyDumper } from './inotify.js';
import { memfdFd } from './memfd.js';
import { ioUringFd } from './io-uring.js';
import { netlinkSocketFd } from './netlink-socket.js';
import { pipeFd } from './pipe.js';
import { regularFd } from './regular.js';
import { signalFdDumper } from './signalfd.js';
import { timerFdDumper } from './timerfd.js';
import { ttyFd } from './tty.js';
import { unixSocketFd } from './unix-socket.js';

export { FdDumper, FdDumped, FdToDump, FdType, fdProblem } from './fd-dumper.js';

/** Every kind of open file the dump knows, one dumper each; a kind not here is refused. */
export const FD_DUMPERS: readonly FdDumper[] = [regularFd, pipeFd, unixSocketFd, inetSocketFd, netlinkSocketFd,
  eventFdDumper, eventpollDumper, signalFdDumper, timerFdDumper,
  fifoFd,
  inotifyDumper,
  fanotifyDumper,
  memfdFd,
  ioUringFd,
  ttyFd,
];

const byKind = new Map<FileKind, FdDumper>(FD_DUMPERS.flatMap((d) => d.kinds.map((k) => [k, d] as [FileKind, FdDumper])));

export function fdDumper(kind: FileKind): FdDumper | undefined {
  return byKind.get(kind);
}
