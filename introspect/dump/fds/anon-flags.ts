import { KObject } from '../../kernel/object.js';

/** include/uapi/asm-generic/fcntl.h */
const O_CLOEXEC = 0o2000000;

/**
 * The flags CRIU writes for a file: fdinfo's "flags" less O_CLOEXEC, which
 * is the fd's and goes to fdinfo_entry (criu/files.c fill_fd_params).
 * eventfd2/timerfd_create/signalfd4/epoll_create1 may leave their *_CLOEXEC
 * in f_flags.
 */
export function fileFlags(file: KObject): number {
  return file.member('f_flags').num() & ~O_CLOEXEC;
}
