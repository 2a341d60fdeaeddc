import { IO_URING_REFUSAL } from '../io-uring.js';
import { FdDumper, fdProblem } from './fd-dumper.js';

/** An io_uring fd: refused by name, with the hint. */
export const ioUringFd: FdDumper = {
  kinds: ['io-uring'],
  dump(_files, fd) {
    return { problems: [fdProblem(fd, IO_URING_REFUSAL)] };
  },
};
