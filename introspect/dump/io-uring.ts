/**
 * Why an io_uring is refused, and what to do instead: criu has no image
 * for it (criu#2131, #3070). libuv >= 1.45 makes rings on its own
 * (UV_USE_IO_URING=0 turns them off up to libuv 1.49); containerd 2.0's
 * RuntimeDefault seccomp profile blocks io_uring_setup, and programs fall
 * back to epoll. Said of an fd (fds/io-uring.ts) or of a mapping of a
 * ring whose fd is closed (memory.ts).
 */
export const IO_URING_REFUSAL = 'an io_uring (anon_inode:[io_uring]): neither ovmigrate nor criu can checkpoint one.' +
  ' Run the program without io_uring: UV_USE_IO_URING=0 for libuv <= 1.49, or a seccomp profile that blocks io_uring_setup' +
  ' (containerd 2.0\'s RuntimeDefault does)';
