/*
 * The event files a server holds, for dump tests: an epoll over a pipe, an
 * eventfd (added under an fd closed since, the file kept by a dup) and a
 * socketpair, all readable; a semaphore eventfd holding 3; a signalfd for
 * the blocked SIGUSR1 and SIGUSR2; a periodic CLOCK_MONOTONIC timerfd
 * (200 ms) and an absolute CLOCK_REALTIME one an hour ahead, owned for
 * SIGIO by the process.
 * It prints "tick N" for each read of the periodic timer (N expirations);
 * on SIGUSR1 (read from the signalfd) it prints what each file holds.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static int add(int ep, int fd, uint32_t events, uint64_t data) {
  struct epoll_event e = {.events = events, .data.u64 = data};
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

int main(void) {
  int p[2], sv[2];
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
  int ev = eventfd(5, 0);
  int sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ev < 0 || sem < 0 || ep < 0) return 1;
  if (write(p[1], "x", 1) != 1 || write(sv[1], "y", 1) != 1) return 1;
  if (add(ep, p[0], EPOLLIN, 0x1000 + (uint64_t)p[0]) || add(ep, ev, EPOLLIN | EPOLLET, 0x2000 + (uint64_t)ev) ||
      add(ep, sv[0], EPOLLIN | EPOLLOUT, 0xabcdef0123456789ull)) return 1;
  /* The eventfd stays watched under its first fd number, which no longer holds it. */
  int ev2 = dup(ev), ev1 = ev;
  close(ev);

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigaddset(&mask, SIGUSR2);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

  int periodic = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  struct itimerspec every = {.it_interval = {0, 200000000}, .it_value = {0, 200000000}};
  int absolute = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct itimerspec at = {.it_value = {now.tv_sec + 3600, now.tv_nsec}};
  if (sfd < 0 || periodic < 0 || absolute < 0 || timerfd_settime(periodic, 0, &every, NULL) ||
      timerfd_settime(absolute, TFD_TIMER_ABSTIME, &at, NULL)) return 1;
  /* An owner for SIGIO (fown_entry), never signalled: no O_ASYNC. */
  if (fcntl(absolute, F_SETOWN, getpid()) || fcntl(absolute, F_SETSIG, SIGUSR2)) return 1;
  /* The epoll, the pipe's read end, the eventfd's first fd and its dup, the socket. */
  printf("start %d %d %d %d %d\n", ep, p[0], ev1, ev2, sv[0]);

  struct pollfd fds[2] = {{.fd = periodic, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[0].revents & POLLIN) {
      uint64_t n;
      if (read(periodic, &n, 8) == 8) printf("tick %llu\n", (unsigned long long)n);
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) != sizeof si) return 1;
      printf("signal %u\n", si.ssi_signo);
      struct epoll_event ready[8];
      int n = epoll_wait(ep, ready, 8, 0);
      printf("epoll %d", n);
      for (int i = 0; i < n; i++) printf(" %llx:%x", (unsigned long long)ready[i].data.u64, ready[i].events);
      printf("\n");
      uint64_t v = 0, s = 0;
      if (read(ev2, &v, 8) != 8 || read(sem, &s, 8) != 8) return 1;
      struct itimerspec left, per;
      timerfd_gettime(absolute, &left);
      timerfd_gettime(periodic, &per);
      printf("eventfd %llu semaphore %llu absolute %lld interval %ld\n", (unsigned long long)v, (unsigned long long)s,
             (long long)left.it_value.tv_sec, per.it_interval.tv_nsec);
    }
  }
}
