/*
 * A process of four threads. Each prints "thread I TID N" every 100 ms, N
 * counting from 0; main prints "sum S" of the counters, which only grows.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned counters[4];

static void *worker(void *arg) {
  long i = (long)arg;
  struct timespec tick = {0, 100 * 1000 * 1000};
  for (;;) {
    printf("thread %ld %ld %u\n", i, (long)syscall(SYS_gettid), counters[i]);
    fflush(stdout);
    counters[i]++;
    nanosleep(&tick, 0);
  }
  return 0;
}

int main(void) {
  pthread_t t;
  for (long i = 1; i < 4; i++) pthread_create(&t, 0, worker, (void *)i);
  worker(0);
}
