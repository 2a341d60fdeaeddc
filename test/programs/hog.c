/*
 * Touches N MiB (argv[1]) of memory with a pattern, then idles forever: the
 * memory a benchmark dumps. With a file (argv[2]), it wakes every 20 ms and
 * appends each wake-up gap longer than 100 ms to that file, in milliseconds:
 * how long the process was kept from running (frozen), seen from inside.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  size_t size = (size_t)atol(argc > 1 ? argv[1] : "64") << 20;
  unsigned char *p = malloc(size);
  if (!p) return 1;
  for (size_t i = 0; i < size; i += 4096) memset(p + i, (int)(i >> 12), 4096);
  printf("hog %zu MiB\n", size >> 20);
  fflush(stdout);
  if (argc < 3) for (;;) pause();
  int fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return 1;
  struct timespec tick = {0, 20 * 1000 * 1000};
  for (double last = now_ms();;) {
    nanosleep(&tick, NULL);
    double t = now_ms();
    if (t - last > 100) dprintf(fd, "%.0f\n", t - last);
    last = t;
  }
}
