/*
 * The file objects a server holds, for dump tests, all under DIR (argv[1],
 * a tmpfs), in the root of a tree whose second child runs argv[2] (the
 * event-files program: one tree, one dump), with none of these fds: an inotify watching DIR (IN_CREATE) and DIR/watched
 * (IN_MODIFY), the latter added and removed once so the next wd is past
 * both; a FIFO DIR/fifo opened read-write with "queued-in-fifo" in it; a
 * POSIX write lock on bytes 0-9 of DIR/lock; and a child that holds an
 * flock on its own open of DIR/lock; and files unlinked while open: DIR/deleted
 * ("ghost-contents", an fd), DIR/sparse (5 pages, "first" at 0 and "last"
 * at 16384, the rest holes; an fd) and DIR/mapped ("mapped-contents",
 * only a read-only private mapping left).
 * Prints "files PID LOCKER PROGRAM" once set up; then "inotify WD MASK NAME" for
 * each event; on SIGUSR1 (a signalfd) "fifo DATA" with what the FIFO holds,
 * "deleted NLINK DATA", "sparse SIZE FIRST LAST" and "mapped DATA".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char path[512];
  if (argc < 2) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigprocmask(SIG_BLOCK, &mask, NULL);

  if (argc < 3) return 2;
  int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  snprintf(path, sizeof path, "%s/watched", argv[1]);
  int gone = inotify_add_watch(in, path, IN_ATTRIB);
  if (in < 0 || gone < 0 || inotify_rm_watch(in, gone)) return 1;
  if (inotify_add_watch(in, argv[1], IN_CREATE) < 0 || inotify_add_watch(in, path, IN_MODIFY) < 0) return 1;
  /* Drop the IN_IGNORED of the removed watch. */
  char ev[4096];
  while (read(in, ev, sizeof ev) > 0) {}

  snprintf(path, sizeof path, "%s/fifo", argv[1]);
  int fifo = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fifo < 0 || write(fifo, "queued-in-fifo", 14) != 14) return 1;

  snprintf(path, sizeof path, "%s/lock", argv[1]);
  int lk = open(path, O_RDWR | O_CLOEXEC);
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  if (lk < 0 || fcntl(lk, F_SETLK, &fl)) return 1;
  snprintf(path, sizeof path, "%s/deleted", argv[1]);
  int del = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (del < 0 || write(del, "ghost-contents", 14) != 14 || unlink(path)) return 1;
  snprintf(path, sizeof path, "%s/sparse", argv[1]);
  int sparse = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (sparse < 0 || ftruncate(sparse, 5 * 4096) || pwrite(sparse, "first", 5, 0) != 5 || pwrite(sparse, "last", 4, 16384) != 4 || unlink(path)) return 1;
  snprintf(path, sizeof path, "%s/mapped", argv[1]);
  int m = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (m < 0 || write(m, "mapped-contents", 15) != 15) return 1;
  const char *mapped = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, m, 0);
  if (mapped == MAP_FAILED || close(m) || unlink(path)) return 1;
  snprintf(path, sizeof path, "%s/lock", argv[1]);

  pid_t child = fork();
  if (child == 0) {
    int own = open(path, O_RDONLY);
    if (own < 0 || flock(own, LOCK_EX | LOCK_NB)) return 1;
    for (;;) pause();
  }
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (child < 0 || sfd < 0) return 1;
  /* Let the child take its lock before the test freezes the tree. */
  usleep(200000);
  fflush(stdout);
  pid_t program = fork();
  if (program == 0) {
    sigprocmask(SIG_UNBLOCK, &mask, NULL);
    execv(argv[2], argv + 2);
    return 1;
  }
  if (program < 0) return 1;
  printf("files %d %d %d\n", getpid(), child, program);

  struct pollfd fds[2] = {{.fd = in, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[0].revents & POLLIN) {
      ssize_t n = read(in, ev, sizeof ev);
      for (char *p = ev; n > 0 && p < ev + n;) {
        struct inotify_event *e = (struct inotify_event *)p;
        printf("inotify %d %x %s\n", e->wd, e->mask, e->len ? e->name : "-");
        p += sizeof *e + e->len;
      }
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) != sizeof si) return 1;
      char buf[64] = {0};
      ssize_t n = read(fifo, buf, sizeof buf - 1);
      printf("fifo %s\n", n > 0 ? buf : "-");
      struct stat st;
      memset(buf, 0, sizeof buf);
      if (fstat(del, &st) || pread(del, buf, sizeof buf - 1, 0) < 0) return 1;
      printf("deleted %ld %s\n", (long)st.st_nlink, buf);
      char first[6] = {0}, last[5] = {0};
      if (fstat(sparse, &st) || pread(sparse, first, 5, 0) != 5 || pread(sparse, last, 4, 16384) != 4) return 1;
      printf("sparse %lld %s %s\n", (long long)st.st_size, first, last);
      printf("mapped %.15s\n", mapped);
    }
  }
}
