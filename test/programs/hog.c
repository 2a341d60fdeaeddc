/*
 * Touches N MiB (argv[1]) of memory with a pattern and sleeps forever:
 * the memory a benchmark dumps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  size_t size = (size_t)atol(argc > 1 ? argv[1] : "64") << 20;
  unsigned char *p = malloc(size);
  if (!p) return 1;
  for (size_t i = 0; i < size; i += 4096) memset(p + i, (int)(i >> 12), 4096);
  printf("hog %zu MiB\n", size >> 20);
  fflush(stdout);
  for (;;) pause();
}
