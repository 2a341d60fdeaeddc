/*
 * Keeps known values in ymm0-3 and r12-r15 across sleeps and checks them
 * after every sleep: prints "." each time they hold, "!" and exits 3 when
 * they do not. Its registers live only in the saved thread state.
 */
#include <stdint.h>
#include <stdio.h>

int main(void) {
  static uint8_t pattern[128] __attribute__((aligned(32)));
  for (int i = 0; i < 128; i++) pattern[i] = (uint8_t)(i * 7 + 1);
  static const long req[2] = {0, 100 * 1000 * 1000};
  printf("avx start\n");
  fflush(stdout);
  __asm__ volatile(
      "vmovdqu 0(%0), %%ymm0\n\tvmovdqu 32(%0), %%ymm1\n\tvmovdqu 64(%0), %%ymm2\n\tvmovdqu 96(%0), %%ymm3\n\t"
      "movabs $0x1111222233334444, %%r12\n\tmovabs $0x5555666677778888, %%r13\n\t"
      "movabs $0x9999aaaabbbbcccc, %%r14\n\tmovabs $0xddddeeeeffff0000, %%r15\n\t"
      "1:\n\t"
      "mov $35, %%eax\n\tmov %1, %%rdi\n\txor %%esi, %%esi\n\tsyscall\n\t" /* nanosleep */
      "vpcmpeqb 0(%0), %%ymm0, %%ymm4\n\tvpmovmskb %%ymm4, %%eax\n\tcmp $-1, %%eax\n\tjne 2f\n\t"
      "vpcmpeqb 32(%0), %%ymm1, %%ymm4\n\tvpmovmskb %%ymm4, %%eax\n\tcmp $-1, %%eax\n\tjne 2f\n\t"
      "vpcmpeqb 64(%0), %%ymm2, %%ymm4\n\tvpmovmskb %%ymm4, %%eax\n\tcmp $-1, %%eax\n\tjne 2f\n\t"
      "vpcmpeqb 96(%0), %%ymm3, %%ymm4\n\tvpmovmskb %%ymm4, %%eax\n\tcmp $-1, %%eax\n\tjne 2f\n\t"
      "movabs $0x1111222233334444, %%rax\n\tcmp %%rax, %%r12\n\tjne 2f\n\t"
      "movabs $0xddddeeeeffff0000, %%rax\n\tcmp %%rax, %%r15\n\tjne 2f\n\t"
      "mov $1, %%eax\n\tmov $1, %%edi\n\tlea 3f(%%rip), %%rsi\n\tmov $1, %%edx\n\tsyscall\n\t" /* write(1, ".", 1) */
      "jmp 1b\n\t"
      "2:\n\t"
      "mov $1, %%eax\n\tmov $1, %%edi\n\tlea 4f(%%rip), %%rsi\n\tmov $1, %%edx\n\tsyscall\n\t"
      "mov $60, %%eax\n\tmov $3, %%edi\n\tsyscall\n\t" /* exit(3) */
      "3: .ascii \".\"\n\t"
      "4: .ascii \"!\"\n\t"
      : : "r"(pattern), "r"(req) : "rax", "rcx", "rdx", "rsi", "rdi", "r11", "r12", "r13", "r14", "r15", "memory",
        "xmm0", "xmm1", "xmm2", "xmm3", "xmm4");
  return 0;
}
