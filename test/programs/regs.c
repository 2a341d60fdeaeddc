/*
 * Holds known state for the host to find in guest RAM while it sleeps in a
 * syscall: r12-r15 in its saved user registers, ymm0-3 in its FPU state, its
 * fs base, a SIGUSR1 handler, a blocked mask, a file at an offset, a pipe and
 * a unix socket pair. Prints "PID FSBASE" and pauses forever.
 */
#include <asm/prctl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void on_usr1(int sig) { (void)sig; }

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGTERM);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, 0);
  signal(SIGPIPE, SIG_IGN);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR2);
  sigaddset(&blocked, SIGHUP);
  sigprocmask(SIG_BLOCK, &blocked, 0);

  int fd = open("/tmp/regs-file", O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (write(fd, "0123456789", 10) != 10) return 1;
  lseek(fd, 4, SEEK_SET);
  int p[2], sv[2];
  if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
  open("/tmp/regs-file", O_RDONLY | O_CLOEXEC);

  unsigned long fs;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  printf("%d %lx\n", getpid(), fs);
  fflush(stdout);

  static uint8_t pattern[128];
  for (int i = 0; i < 128; i++) pattern[i] = (uint8_t)(i + 1);
  __asm__ volatile(
      "vmovdqu 0(%0), %%ymm0\n\tvmovdqu 32(%0), %%ymm1\n\tvmovdqu 64(%0), %%ymm2\n\tvmovdqu 96(%0), %%ymm3\n\t"
      "movabs $0x1111222233334444, %%r12\n\tmovabs $0x5555666677778888, %%r13\n\t"
      "movabs $0x9999aaaabbbbcccc, %%r14\n\tmovabs $0xddddeeeeffff0000, %%r15\n\t"
      "1: mov $34, %%eax\n\tsyscall\n\tjmp 1b\n\t" /* pause() forever */
      : : "r"(pattern) : "rax", "rcx", "r11", "r12", "r13", "r14", "r15", "memory", "xmm0", "xmm1", "xmm2", "xmm3");
  return 0;
}
