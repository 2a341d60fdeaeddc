#!/usr/bin/env python3
"""The shim's process helper: the few system calls Node cannot make.

The shim runs under it: `subreaper.py NODE MAIN.JS ARGS...`. It
- becomes a child subreaper (prctl), so container processes that runc
  leaves behind (an init after `runc create`, an exec'd process) are
  reparented to it, and reports each one's exit status, which only their
  parent can collect (wait);
- makes anonymous pipes for container stdio: runc restore reconnects a
  container's pipes by inode (descriptors.json, CRIU inherit-fd), so FIFOs
  or socketpairs (all Node can make) would not restore; the shim opens both
  ends through /proc/<this pid>/fd and asks for them to be closed here;
- takes a terminal's master from runc's --console-socket (SCM_RIGHTS, which
  Node cannot receive) and copies between it and containerd's FIFOs.

Wire, one line each way: the shim writes requests on its fd 4, reads
answers and events on its fd 3. A request it cannot take (unknown, missing
words, not UTF-8) is logged on stderr and gets no answer.
  pipe                                 -> pipe R W
  close FD...
  console KEY SOCKET STDIN STDOUT      -> console KEY listening, then console KEY ok
                                          (or console KEY error MESSAGE); "-" for no FIFO
  resize KEY COLS ROWS
  (event)                              -> exit PID STATUS   (STATUS: code, or 128+signal)
"""
import array
import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys
import termios
import threading

PR_SET_CHILD_SUBREAPER = 36

write_lock = threading.Lock()
consoles = {}


def send(line):
    data = (line + "\n").encode()
    with write_lock:
        os.write(EVENTS, data)


def status_of(status):
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WTERMSIG(status)


def pump(src, dst):
    """Copies until end of file or an error; the terminal side ends with EIO when its last process exits."""
    try:
        while True:
            data = os.read(src, 65536)
            if not data:
                return
            while data:
                data = data[os.write(dst, data):]
    except OSError:
        return


def with_fifo(path, flags, use):
    """Opens one of containerd's FIFOs (waiting for its other end) and hands it to `use`."""
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        use(fd)
    finally:
        os.close(fd)


def console(key, sock_path, stdin, stdout):
    try:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(sock_path)
        listener.listen(1)
        send("console %s listening" % key)
        listener.settimeout(60)
        conn, _ = listener.accept()
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        conn.close()
        listener.close()
        os.unlink(sock_path)
        if not fds:
            raise OSError("runc sent no terminal")
    except OSError as err:
        send("console %s error %s" % (key, str(err).replace("\n", " ")))
        return
    master = fds[0]
    consoles[key] = master
    send("console %s ok" % key)
    if stdin != "-":
        threading.Thread(target=with_fifo, args=(stdin, os.O_RDONLY, lambda fd: pump(fd, master)), daemon=True).start()
    if stdout != "-":
        with_fifo(stdout, os.O_RDWR, lambda fd: pump(master, fd))
    consoles.pop(key, None)
    os.close(master)


def serve_requests():
    buf = b""
    while True:
        data = os.read(REQUESTS, 65536)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            # Decoding in here too: a line that is not UTF-8 must not end this thread.
            try:
                handle(line.decode().split(" "))
            except Exception as err:  # a bad request must not stop the reaper
                sys.stderr.write("subreaper: %r: %s\n" % (line[:80], err))
                sys.stderr.flush()


def handle(words):
    op = words[0]
    if op == "pipe":
        r, w = os.pipe()
        send("pipe %d %d" % (r, w))
    elif op == "close":
        for fd in words[1:]:
            os.close(int(fd))
    elif op == "console":
        key, sock_path, stdin, stdout = words[1], words[2], words[3], words[4]
        threading.Thread(target=console, args=(key, sock_path, stdin, stdout), daemon=True).start()
    elif op == "resize":
        master = consoles.get(words[1])
        if master is not None:
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", int(words[3]), int(words[2]), 0, 0))
    else:
        raise ValueError("unknown request")


def main():
    global EVENTS, REQUESTS
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("subreaper: prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(ctypes.get_errno()))
    # Our ends sit above 10 so that the child's 3 and 4 can be placed without clashing.
    events_r, events_w = os.pipe()
    requests_r, requests_w = os.pipe()
    EVENTS = fcntl.fcntl(events_w, fcntl.F_DUPFD_CLOEXEC, 10)
    REQUESTS = fcntl.fcntl(requests_r, fcntl.F_DUPFD_CLOEXEC, 10)
    theirs = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (events_r, requests_w)]
    for fd in (events_r, events_w, requests_r, requests_w):
        os.close(fd)
    child = os.fork()
    if child == 0:
        # The shim's fd 3 reads events, fd 4 writes requests.
        os.dup2(theirs[0], 3, inheritable=True)
        os.dup2(theirs[1], 4, inheritable=True)
        os.execvp(sys.argv[1], sys.argv[1:])
    for fd in theirs:
        os.close(fd)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    threading.Thread(target=serve_requests, daemon=True).start()
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            sys.exit(0)
        except InterruptedError:
            continue
        if pid == child:
            sys.exit(status_of(status))
        send("exit %d %d" % (pid, status_of(status)))


if __name__ == "__main__":
    main()
