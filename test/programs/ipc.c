/*
 * Two processes talking through a pipe and a unix socket pair, each side
 * writing faster than the other reads, so both always hold data in flight.
 * The parent writes "p N" records into the pipe; the child reads and prints
 * "pipe N". The child writes "s N" records into its socket; the parent
 * reads and prints "sock N". N must go up by one each time, across a
 * checkpoint and restore.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REC 12

static void nap(long ms) {
  struct timespec t = {0, ms * 1000 * 1000};
  nanosleep(&t, 0);
}

static int read_rec(int fd, unsigned *n) {
  char buf[REC + 1];
  size_t got = 0;
  while (got < REC) {
    ssize_t r = read(fd, buf + got, REC - got);
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  buf[REC] = 0;
  return sscanf(buf + 2, "%u", n) == 1 ? 0 : -1;
}

static void write_rec(int fd, char tag, unsigned n) {
  char buf[REC + 1];
  snprintf(buf, sizeof buf, "%c %09u\n", tag, n);
  if (write(fd, buf, REC) != REC) _exit(1);
}

int main(void) {
  int p[2], sv[2];
  if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (fork() == 0) {
    close(p[1]);
    close(sv[0]);
    for (unsigned n = 0;; n++) {
      unsigned got;
      write_rec(sv[1], 's', 3 * n);
      write_rec(sv[1], 's', 3 * n + 1);
      write_rec(sv[1], 's', 3 * n + 2);
      if (read_rec(p[0], &got)) return 1;
      printf("pipe %u\n", got);
      nap(100);
    }
  }
  close(p[0]);
  close(sv[1]);
  for (unsigned n = 0;; n++) {
    unsigned got;
    write_rec(p[1], 'p', 2 * n);
    write_rec(p[1], 'p', 2 * n + 1);
    if (read_rec(sv[0], &got)) return 1;
    printf("sock %u\n", got);
    nap(100);
  }
}
