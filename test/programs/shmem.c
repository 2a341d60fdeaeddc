/*
 * A parent and a forked child sharing memory every way a server does:
 * MAP_SHARED|MAP_ANONYMOUS (nginx's accept mutex), a memfd both as an fd
 * and as a mapping, and a file in /dev/shm mapped MAP_SHARED (POSIX shm,
 * a file-backed shared mapping). Before the fork the parent fills known
 * contents, leaving holes (pages never touched). The child then counts up
 * a generation in each region every 100 ms; the parent prints what it
 * sees every 200 ms ("see A M F P": anonymous, memfd mapping, memfd read
 * through its fd, /dev/shm) and whether the known contents still hold
 * ("contents ok" or what differs). After a restore the generations must
 * go on rising: the child still writes where the parent reads.
 * argv[1]: the /dev/shm file's path.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define ANON_PAGES 4
#define MEMFD_PAGES 3
#define SHM_PAGES 2
/* The generation counters live at this offset of each region's first page. */
#define GEN 2048

static void nap(long ms) {
  struct timespec t = {0, ms * 1000 * 1000};
  nanosleep(&t, 0);
}

/* Page `page` of a region named `tag` holds "tag page N" then bytes i*7+page. */
static void fill(char *base, const char *tag, int page) {
  char *p = base + (size_t)page * PAGE;
  int n = snprintf(p, 64, "%s page %d", tag, page);
  for (int i = 64; i < PAGE; i++) if (page || i < GEN || i >= GEN + 8) p[i] = (char)(i * 7 + page);
  (void)n;
}

static int check(const char *base, const char *tag, int page) {
  char want[64];
  const char *p = base + (size_t)page * PAGE;
  snprintf(want, sizeof want, "%s page %d", tag, page);
  if (strcmp(p, want)) return 0;
  for (int i = 64; i < PAGE; i++) if ((page || i < GEN || i >= GEN + 8) && p[i] != (char)(i * 7 + page)) return 0;
  return 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  char *anon = mmap(NULL, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int mfd = memfd_create("ovm-shmem", MFD_ALLOW_SEALING);
  if (anon == MAP_FAILED || mfd < 0 || ftruncate(mfd, MEMFD_PAGES * PAGE)) return 1;
  char *mem = mmap(NULL, MEMFD_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (mem == MAP_FAILED || fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)) return 1;
  int sfd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (sfd < 0 || ftruncate(sfd, SHM_PAGES * PAGE)) return 1;
  char *shm = mmap(NULL, SHM_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
  if (shm == MAP_FAILED) return 1;
  close(sfd);
  /* Holes: anonymous page 1 and memfd page 1 are never touched (a read would fill them). */
  fill(anon, "anon", 0); fill(anon, "anon", 2); fill(anon, "anon", 3);
  fill(mem, "memfd", 0); fill(mem, "memfd", 2);
  fill(shm, "shm", 0); fill(shm, "shm", 1);
  printf("start memfd %d\n", mfd);

  volatile uint64_t *ga = (uint64_t *)(anon + GEN), *gm = (uint64_t *)(mem + GEN), *gs = (uint64_t *)(shm + GEN);
  pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    for (uint64_t g = 1;; g++) {
      *ga = g; *gm = g; *gs = g;
      nap(100);
    }
  }
  printf("child %d\n", child);
  for (;;) {
    uint64_t byfd = 0;
    if (pread(mfd, &byfd, 8, GEN) != 8) return 1;
    printf("see %llu %llu %llu %llu\n", (unsigned long long)*ga, (unsigned long long)*gm, (unsigned long long)byfd, (unsigned long long)*gs);
    int ok = check(anon, "anon", 0) && check(anon, "anon", 2) && check(anon, "anon", 3) &&
             check(mem, "memfd", 0) && check(mem, "memfd", 2) && check(shm, "shm", 0) && check(shm, "shm", 1) &&
             fcntl(mfd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW);
    printf("contents %s\n", ok ? "ok" : "bad");
    nap(200);
  }
}
