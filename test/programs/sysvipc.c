/*
 * SysV IPC objects of the process's IPC namespace, for a checkpoint to
 * carry: a segment attached and filled, a second attached and IPC_RMID'd
 * (alive while attached, key gone), a semaphore set holding values, and a
 * message queue with messages queued, one longer than a page (its text
 * spans the kernel's msg_msgseg segments). Every 0.3 s it reads everything
 * back (the bytes through its attachments, the values by GETALL, the
 * messages by msgrcv(MSG_COPY), which leaves them queued), takes and gives
 * back a semaphore, and appends "sysv ok N" to the file named by argv[1],
 * or "sysv bad WHAT" at the first difference. N goes up by one each time,
 * across a checkpoint and restore.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

#define SEG 20000
#define LONG_MSG 5000
static const unsigned short SEMS[] = {3, 1, 4, 1, 5};
#define NSEMS (sizeof SEMS / sizeof SEMS[0])

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

static struct {
  long mtype;
  char mtext[LONG_MSG + 16];
} msg;

static char fill(int seg, int i) {
  return (char)('a' + (seg * 7 + i * 13) % 26);
}

static const char *msg_text(int n, size_t *len) {
  static char buf[LONG_MSG];
  if (n == 0) {
    *len = 5;
    return "hello";
  }
  if (n == 1) {
    *len = 0;
    return "";
  }
  for (int i = 0; i < LONG_MSG; i++) buf[i] = (char)('A' + i % 23);
  *len = LONG_MSG;
  return buf;
}

static void say(const char *path, const char *line) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) _exit(2);
  if (write(fd, line, strlen(line)) < 0) _exit(2);
  close(fd);
}

int main(int argc, char **argv) {
  if (argc != 2) return 1;
  const char *out = argv[1];
  char line[128];
  int shm = shmget(0x5157, SEG, IPC_CREAT | 0640);
  int gone = shmget(IPC_PRIVATE, 4096 * 3, IPC_CREAT | 0600);
  int sem = semget(0x5e3, NSEMS, IPC_CREAT | 0660);
  int q = msgget(0x3e55, IPC_CREAT | 0620);
  if (shm < 0 || gone < 0 || sem < 0 || q < 0) return 1;
  char *a = shmat(shm, NULL, 0);
  char *b = shmat(gone, NULL, 0);
  if (a == (void *)-1 || b == (void *)-1) return 1;
  for (int i = 8; i < SEG; i++) a[i] = fill(0, i);
  // Only the first and last pages of the removed one are touched: the middle page stays a hole.
  for (int i = 0; i < 4096; i++) b[i] = fill(1, i), b[8192 + i] = fill(2, i);
  if (shmctl(gone, IPC_RMID, NULL)) return 1;
  union semun arg = {.array = (unsigned short *)SEMS};
  if (semctl(sem, 0, SETALL, arg)) return 1;
  for (int n = 0; n < 3; n++) {
    size_t len;
    const char *text = msg_text(n, &len);
    msg.mtype = 10 + n;
    memcpy(msg.mtext, text, len);
    if (msgsnd(q, &msg, len, 0)) return 1;
  }
  for (unsigned long tick = 0;; tick++) {
    const char *bad = NULL;
    unsigned short vals[NSEMS];
    arg.array = vals;
    for (int i = 8; i < SEG && !bad; i++) if (a[i] != fill(0, i)) bad = "shm";
    for (int i = 0; i < 4096 && !bad; i++) if (b[i] != fill(1, i) || b[8192 + i] != fill(2, i)) bad = "removed shm";
    if (!bad && (semctl(sem, 0, GETALL, arg) || memcmp(vals, SEMS, sizeof vals))) bad = "sem values";
    for (int n = 0; n < 3 && !bad; n++) {
      size_t len;
      const char *text = msg_text(n, &len);
      ssize_t got = msgrcv(q, &msg, sizeof msg.mtext, n, IPC_NOWAIT | MSG_COPY);
      if (got != (ssize_t)len || msg.mtype != 10 + n || memcmp(msg.mtext, text, len)) bad = "messages";
    }
    struct sembuf take = {0, -1, 0}, give = {0, 1, 0};
    if (!bad && (semop(sem, &take, 1) || semop(sem, &give, 1))) bad = "semop";
    memcpy(a, &tick, sizeof tick);
    if (bad) snprintf(line, sizeof line, "sysv bad %s\n", bad);
    else snprintf(line, sizeof line, "sysv ok %lu\n", tick);
    say(out, line);
    struct timespec t = {0, 300 * 1000 * 1000};
    nanosleep(&t, NULL);
  }
}
