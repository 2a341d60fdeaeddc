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
 * only a read-only private mapping left); file leases: a read lease on
 * DIR/rlease, a write lease on DIR/wlease, and a read lease on DIR/blease
 * being broken (by its own non-blocking open for writing; the test raises
 * fs.lease-break-time so it stays breaking); a fanotify group with an inode
 * mark on DIR/watched (FAN_MODIFY), a mount mark on DIR's mount
 * (FAN_CLOSE_WRITE) and an ignore-only mark on DIR/lock.
 * Prints "files PID LOCKER PROGRAM" once set up; then "inotify WD MASK NAME" for
 * each event and "fanotify MASK PATH" for each fanotify event on a file under DIR;
 * on SIGUSR1 (a signalfd) "fifo DATA" with what the FIFO holds,
 * "deleted NLINK DATA", "sparse SIZE FIRST LAST", "mapped DATA" and
 * "lease R W B" (F_GETLEASE of each lease's fd).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/fanotify.h>
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
  char ev[4096] __attribute__((aligned(8)));
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
  /* Leases (a lease-break SIGIO would kill the process). */
  signal(SIGIO, SIG_IGN);
  int leases[3];
  const char *lease_names[3] = {"rlease", "wlease", "blease"};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", argv[1], lease_names[i]);
    leases[i] = open(path, (i == 1 ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (leases[i] < 0 || fcntl(leases[i], F_SETLEASE, i == 1 ? F_WRLCK : F_RDLCK)) return 1;
  }
  if (open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC) >= 0 || fcntl(leases[2], F_GETLEASE) != F_UNLCK) return 1;

  int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
  if (fan < 0) return 1;
  snprintf(path, sizeof path, "%s/watched", argv[1]);
  if (fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, path) || fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD, argv[1])) return 1;
  snprintf(path, sizeof path, "%s/lock", argv[1]);
  if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_CLOSE_WRITE, AT_FDCWD, path)) return 1;

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

  struct pollfd fds[3] = {{.fd = in, .events = POLLIN}, {.fd = sfd, .events = POLLIN}, {.fd = fan, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 3, -1) < 0) continue;
    if (fds[2].revents & POLLIN) {
      ssize_t n = read(fan, ev, sizeof ev);
      for (struct fanotify_event_metadata *e = (void *)ev; n > 0 && FAN_EVENT_OK(e, n); e = FAN_EVENT_NEXT(e, n)) {
        char link[64], name[PATH_MAX] = {0};
        snprintf(link, sizeof link, "/proc/self/fd/%d", e->fd);
        if (e->fd >= 0 && readlink(link, name, sizeof name - 1) > 0 && !strncmp(name, argv[1], strlen(argv[1])))
          printf("fanotify %llx %s\n", (unsigned long long)e->mask, name);
        if (e->fd >= 0) close(e->fd);
      }
    }
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
      printf("lease %d %d %d\n", fcntl(leases[0], F_GETLEASE), fcntl(leases[1], F_GETLEASE), fcntl(leases[2], F_GETLEASE));
    }
  }
}
