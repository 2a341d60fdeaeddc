/*
 * A tree of processes: the root forks a and b, a forks c. Each prints
 * "tree NAME PID PPID N" every 100 ms, N counting from 0.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static void count(const char *name) {
  struct timespec tick = {0, 100 * 1000 * 1000};
  for (unsigned n = 0;; n++) {
    printf("tree %s %d %d %u\n", name, getpid(), getppid(), n);
    fflush(stdout);
    nanosleep(&tick, 0);
  }
}

int main(void) {
  if (fork() == 0) {
    if (fork() == 0) count("c");
    count("a");
  }
  if (fork() == 0) count("b");
  count("root");
}
