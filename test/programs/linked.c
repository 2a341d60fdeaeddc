/*
 * Deleted open files, for dump tests, under DIR (argv[1]): DIR/ghost
 * ("ghost-contents") unlinked with no other name, its fd kept; then
 * DIR/orig ("linked-contents"), linked as DIR/other and unlinked, its fd
 * (O_RDWR) the last one, so that a dumper's link made for it takes the
 * last file ids. Prints "linked PID FD" once set up; on each SIGUSR1 reads
 * the whole file through FD and prints "read NLINK DATA", then appends "+fd"
 * through FD and prints "appended".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char path[512], other[512];
  if (argc < 2) return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigprocmask(SIG_BLOCK, &mask, NULL);

  snprintf(path, sizeof path, "%s/ghost", argv[1]);
  int ghost = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (ghost < 0 || write(ghost, "ghost-contents", 14) != 14 || unlink(path)) return 1;
  snprintf(path, sizeof path, "%s/orig", argv[1]);
  snprintf(other, sizeof other, "%s/other", argv[1]);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
  if (fd < 0 || write(fd, "linked-contents", 15) != 15 || link(path, other) || unlink(path)) return 1;
  printf("linked %d %d\n", getpid(), fd);

  for (;;) {
    if (sigwaitinfo(&mask, NULL) != SIGUSR1) continue;
    char buf[256] = {0};
    struct stat st;
    if (fstat(fd, &st) || pread(fd, buf, sizeof buf - 1, 0) < 0) return 1;
    printf("read %ld %s\n", (long)st.st_nlink, buf);
    if (pwrite(fd, "+fd", 3, st.st_size) != 3) return 1;
    printf("appended\n");
  }
}
