/*
 * An unprivileged process whose mapped address space dwarfs the VM's RAM:
 * a 64 GiB MAP_NORESERVE private anonymous mapping, one byte read per page
 * over its first GIB GiB, which maps the zero page at every one of those
 * PTEs and costs the guest only its page tables. MADV_NOHUGEPAGE keeps the
 * faults to 4 KiB PTEs (with THP a read fault maps the huge zero page, one
 * PMD entry per 2 MiB).
 *
 *   noreserve GIB      (log lines on stdout)
 *   "ready PID PAGES"  once every page is read
 *   "tick N"           every 100 ms
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  size_t gib = strtoul(argv[1], NULL, 10);
  size_t size = (size_t)64 << 30;
  if (gib == 0 || gib > 64) return 2;
  volatile unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  if (madvise((void *)p, size, MADV_NOHUGEPAGE) != 0) { perror("madvise"); return 1; }
  unsigned long sum = 0;
  size_t pages = (gib << 30) / 4096;
  for (size_t i = 0; i < pages; i++) sum += p[i * 4096];
  printf("ready %d %zu %lu\n", getpid(), pages, sum);
  fflush(stdout);
  struct timespec tick = { 0, 100 * 1000 * 1000 };
  for (unsigned long n = 0;; n++) {
    printf("tick %lu\n", n);
    fflush(stdout);
    nanosleep(&tick, NULL);
  }
}
