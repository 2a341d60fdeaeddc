/*
 * Task state a checkpoint must carry besides memory and files, for dump
 * tests: seccomp filters, interval and POSIX timers, a zombie child.
 * - A zombie: a child that exits with 7 and is never reaped.
 * - Two stacked seccomp filters: the first (installed with TSYNC, so a
 *   helper thread shares it) fails sysinfo() with EDOM; the second, on the
 *   main thread only, fails getcpu() with ERANGE. Everything else passes.
 * - ITIMER_REAL every 250 ms (SIGALRM counted), ITIMER_VIRTUAL (500 s,
 *   then every 1 s) and ITIMER_PROF (every 1000 s) armed, never reached.
 *   All periodic: criu 3.17's restore leaves a one-shot interval timer
 *   disarmed (criu/cr-restore.c decode_itimer zeroes a timer without an
 *   interval), whatever the image holds.
 * - A periodic CLOCK_MONOTONIC POSIX timer (200 ms, SIGRTMIN, sival_ptr
 *   0x1234abcd) and a one-shot CLOCK_REALTIME SIGEV_NONE one an hour ahead.
 * It prints "start ZOMBIE THREAD" once; on SIGUSR1 a "state" line: the
 * signal counts, what each filtered call returns on each thread, and the
 * time left on the timers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarms, rt, report;
static volatile int thread_sysinfo = -1, thread_getcpu = -1, thread_tid;
static volatile unsigned long thread_rounds;

static void on_signal(int sig) {
  if (sig == SIGALRM) alarms++;
  else if (sig == SIGUSR1) report = 1;
  else rt++;
}

/* The errno a call fails with, 0 when it succeeds. */
static int err_sysinfo(void) {
  struct sysinfo si;
  return syscall(SYS_sysinfo, &si) < 0 ? errno : 0;
}
static int err_getcpu(void) {
  unsigned cpu, node;
  return syscall(SYS_getcpu, &cpu, &node, NULL) < 0 ? errno : 0;
}

static int install(int nr, int err, unsigned flags) {
  struct sock_filter insns[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof insns / sizeof insns[0], .filter = insns};
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static void *helper(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  thread_tid = gettid();
  for (;;) {
    thread_sysinfo = err_sysinfo();
    thread_getcpu = err_getcpu();
    thread_rounds++;
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static double left(const struct timeval *tv) {
  return tv->tv_sec + tv->tv_usec / 1e6;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  pid_t zombie = fork();
  if (zombie == 0) _exit(7);
  if (zombie < 0) return 1;

  struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGALRM, &sa, NULL) || sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGRTMIN, &sa, NULL)) return 1;

  pthread_t t;
  if (pthread_create(&t, NULL, helper, NULL)) return 1;
  while (!thread_rounds) usleep(1000);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || install(SYS_sysinfo, EDOM, SECCOMP_FILTER_FLAG_TSYNC) ||
      install(SYS_getcpu, ERANGE, 0)) {
    perror("seccomp");
    return 1;
  }

  struct itimerval real = {{0, 250000}, {0, 250000}}, virt = {{1, 0}, {500, 0}}, prof = {{1000, 0}, {1000, 0}};
  if (setitimer(ITIMER_REAL, &real, NULL) || setitimer(ITIMER_VIRTUAL, &virt, NULL) || setitimer(ITIMER_PROF, &prof, NULL)) return 1;

  timer_t periodic, none;
  struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN, .sigev_value.sival_ptr = (void *)0x1234abcd};
  struct sigevent quiet = {.sigev_notify = SIGEV_NONE};
  struct itimerspec every = {{0, 200000000}, {0, 200000000}};
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct itimerspec hour = {{0, 0}, {now.tv_sec + 3600, now.tv_nsec}};
  if (timer_create(CLOCK_MONOTONIC, &sev, &periodic) || timer_create(CLOCK_REALTIME, &quiet, &none) ||
      timer_settime(periodic, 0, &every, NULL) || timer_settime(none, TIMER_ABSTIME, &hour, NULL)) return 1;
  printf("start %d %d\n", zombie, thread_tid);

  for (;;) {
    pause();
    if (!report) continue;
    report = 0;
    unsigned long rounds = thread_rounds;
    while (thread_rounds < rounds + 2) usleep(10000);
    struct itimerval r, v, p;
    struct itimerspec n;
    getitimer(ITIMER_REAL, &r);
    getitimer(ITIMER_VIRTUAL, &v);
    getitimer(ITIMER_PROF, &p);
    timer_gettime(none, &n);
    printf("state alarms %d rt %d main %d %d thread %d %d real %.3f virt %.1f/%ld prof %.1f none %ld\n", (int)alarms, (int)rt,
           err_sysinfo(), err_getcpu(), thread_sysinfo, thread_getcpu, left(&r.it_interval), left(&v.it_value),
           (long)v.it_interval.tv_sec, left(&p.it_value), (long)n.it_value.tv_sec);
  }
}
