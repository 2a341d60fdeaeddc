#!/usr/bin/env python3
"""Takes a terminal's master from runc's --console-socket and copies what the
container writes on it to a file, in the background.

  console-receiver.py SOCKET OUT

Listens on SOCKET (a unix socket path) before it returns, so `runc restore
--console-socket SOCKET` can follow at once; the child that stays accepts
runc's one connection, takes the fd it sends (SCM_RIGHTS, runc's
utils.SendFd) and appends everything read from it to OUT until the
terminal's other side is gone.
"""
import os
import socket
import sys


def main() -> None:
    path, out = sys.argv[1], sys.argv[2]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    if os.fork():
        os._exit(0)
    os.setsid()
    # Whoever started it (a guest exec) waits for its output to close.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    conn, _ = server.accept()
    _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    conn.close()
    server.close()
    if not fds:
        sys.exit(1)
    with open(out, 'ab', buffering=0) as f:
        while True:
            try:
                data = os.read(fds[0], 4096)
            except OSError:
                break
            if not data:
                break
            f.write(data)


if __name__ == '__main__':
    main()
