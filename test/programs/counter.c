/*
 * A single process whose progress proves a restore: a counter, a 32 MiB
 * buffer with a known checksum, records written at the offset of an open
 * file, a SIGUSR1 handler and a blocked SIGUSR2.
 *
 *   counter DATAFILE       (log lines on stdout)
 *   "start PID SUM"        once
 *   "tick N"               every 100 ms
 *   "usr1 N sum SUM blocked MASK pending MASK cwd DIR"   on SIGUSR1
 * DATAFILE gets one 9-byte record "%08d\n" per tick, in order.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SIZE (32u << 20)

static volatile sig_atomic_t usr1;
static uint64_t *buffer;

static void on_usr1(int sig) { (void)sig; usr1 = 1; }

static uint64_t checksum(void) {
  uint64_t sum = 0;
  for (size_t i = 0; i < SIZE / 8; i++) sum = sum * 31 + buffer[i];
  return sum;
}

static uint64_t mask_bits(const sigset_t *set) {
  uint64_t bits = 0;
  for (int s = 1; s < 64; s++) if (sigismember(set, s) == 1) bits |= 1ull << (s - 1);
  return bits;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  buffer = malloc(SIZE);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < SIZE / 8; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    buffer[i] = x;
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGTERM);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, 0);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR2);
  sigprocmask(SIG_BLOCK, &blocked, 0);
  int data = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (data < 0) return 1;
  printf("start %d %016llx\n", getpid(), (unsigned long long)checksum());
  struct timespec tick = {0, 100 * 1000 * 1000};
  for (unsigned n = 0;; n++) {
    char rec[16];
    snprintf(rec, sizeof rec, "%08u\n", n);
    if (write(data, rec, 9) != 9) return 1;
    printf("tick %u\n", n);
    nanosleep(&tick, 0);
    if (usr1) {
      usr1 = 0;
      sigset_t cur, pend;
      sigprocmask(SIG_BLOCK, 0, &cur);
      sigpending(&pend);
      char cwd[256];
      if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
      printf("usr1 %u sum %016llx blocked %llx pending %llx cwd %s\n", n, (unsigned long long)checksum(),
             (unsigned long long)mask_bits(&cur), (unsigned long long)mask_bits(&pend), cwd);
    }
  }
}
