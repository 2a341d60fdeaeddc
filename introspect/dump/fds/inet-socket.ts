import { inetSocket } from '../../linux/inet-sockets.js';
import { FdDumper, fdProblem } from './fd-dumper.js';

/** TCP and UDP sockets: refused, naming the socket (criu/sk-inet.c would need the repair mode from inside the guest). */
export const inetSocketFd: FdDumper = {
  kinds: ['inet-socket'],
  dump(_files, fd) {
    const sk = inetSocket(fd.file);
    return { problems: [fdProblem(fd, `${sk.proto} socket in state ${sk.state} (TCP/UDP sockets are not supported yet)`)] };
  },
};
