/*
 * A small server holding the sockets servers hold, for the dump of TCP, UDP
 * and netlink sockets (argument: base port P, default 7401):
 *   - a TCP v4 listener on 127.0.0.1:P with options set (reuseaddr/port,
 *     keepalive and its timings, buffers, priority, mark, linger, a receive
 *     timeout, IP_FREEBIND, backlog 17);
 *   - a TCP v6 listener on [::]:P+1, IPV6_V6ONLY;
 *   - UDP: v4 bound to 127.0.0.1:P+2 (SO_BROADCAST), v4 connected to it,
 *     v6 bound to [::]:P+3;
 *   - a TCP connection to itself over loopback (both ends);
 *   - a NETLINK_ROUTE socket bound to RTMGRP_LINK;
 *   - an unbound TCP and an unbound UDP socket.
 * It prints "tick N" every 200 ms; answers "pong N" to each line a client
 * sends to a listener ("served v4|v6 N"); prints "udp4|udp6 TEXT" for each
 * datagram.
 */
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void opt(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof(value))) die("setsockopt");
}

static int sock4(int type, int port) {
  int fd = socket(AF_INET, type, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (port && bind(fd, (struct sockaddr *)&a, sizeof(a))) die("bind v4");
  return fd;
}

static int sock6(int type, int port, int v6only) {
  int fd = socket(AF_INET6, type, 0);
  if (fd < 0) die("socket6");
  opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT};
  if (bind(fd, (struct sockaddr *)&a, sizeof(a))) die("bind v6");
  return fd;
}

static void serve(int listener, const char *name, unsigned *served) {
  int c = accept(listener, 0, 0);
  if (c < 0) return;
  struct timeval tv = {2, 0};
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[256];
  ssize_t n = read(c, buf, sizeof(buf) - 1);
  if (n > 0) {
    char reply[64];
    int len = snprintf(reply, sizeof(reply), "pong %u\n", ++*served);
    if (write(c, reply, (size_t)len) != len) perror("write");
    printf("served %s %u\n", name, *served);
  }
  close(c);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 7401;
  setvbuf(stdout, 0, _IOLBF, 0);

  int l4 = socket(AF_INET, SOCK_STREAM, 0);
  if (l4 < 0) die("socket");
  opt(l4, SOL_SOCKET, SO_REUSEADDR, 1);
  opt(l4, SOL_SOCKET, SO_REUSEPORT, 1);
  opt(l4, SOL_SOCKET, SO_KEEPALIVE, 1);
  opt(l4, IPPROTO_TCP, TCP_KEEPIDLE, 77);
  opt(l4, IPPROTO_TCP, TCP_KEEPINTVL, 11);
  opt(l4, IPPROTO_TCP, TCP_KEEPCNT, 5);
  opt(l4, SOL_SOCKET, SO_RCVBUF, 65536);
  opt(l4, SOL_SOCKET, SO_SNDBUF, 32768);
  opt(l4, SOL_SOCKET, SO_PRIORITY, 3);
  opt(l4, SOL_SOCKET, SO_MARK, 42);
  opt(l4, IPPROTO_IP, IP_FREEBIND, 1);
  struct linger lg = {1, 7};
  if (setsockopt(l4, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg))) die("linger");
  struct timeval rcvtimeo = {2, 500000};
  if (setsockopt(l4, SOL_SOCKET, SO_RCVTIMEO, &rcvtimeo, sizeof(rcvtimeo))) die("rcvtimeo");
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(l4, (struct sockaddr *)&a4, sizeof(a4))) die("bind");
  if (listen(l4, 17)) die("listen");

  int l6 = socket(AF_INET6, SOCK_STREAM, 0);
  if (l6 < 0) die("socket6");
  opt(l6, SOL_SOCKET, SO_REUSEADDR, 1);
  opt(l6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port + 1), .sin6_addr = IN6ADDR_ANY_INIT};
  if (bind(l6, (struct sockaddr *)&a6, sizeof(a6))) die("bind6");
  if (listen(l6, 64)) die("listen6");

  int u4 = sock4(SOCK_DGRAM, port + 2);
  opt(u4, SOL_SOCKET, SO_BROADCAST, 1);
  int u4c = sock4(SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port + 2), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(u4c, (struct sockaddr *)&to, sizeof(to))) die("connect udp");
  int u6 = sock6(SOCK_DGRAM, port + 3, 0);

  /* A connection to itself: both ends established, nothing left unread or unacknowledged. */
  int c = sock4(SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr *)&a4, sizeof(a4))) die("connect");
  int s = accept(l4, 0, 0);
  if (s < 0) die("accept");
  char hello[6];
  if (write(c, "hello", 5) != 5 || read(s, hello, 5) != 5 || write(s, "hello", 5) != 5 || read(c, hello, 5) != 5) die("hello");

  int nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (nl < 0) die("netlink");
  struct sockaddr_nl snl = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
  if (bind(nl, (struct sockaddr *)&snl, sizeof(snl))) die("bind netlink");

  int tcp0 = socket(AF_INET, SOCK_STREAM, 0), udp0 = socket(AF_INET6, SOCK_DGRAM, 0);
  if (tcp0 < 0 || udp0 < 0) die("socket");

  printf("ready %d l4 %d l6 %d u4 %d u4c %d u6 %d c %d s %d nl %d tcp0 %d udp0 %d\n", (int)getpid(), l4, l6, u4, u4c, u6, c, s, nl, tcp0, udp0);
  unsigned tick = 0, served = 0;
  struct pollfd fds[4] = {{l4, POLLIN, 0}, {l6, POLLIN, 0}, {u4, POLLIN, 0}, {u6, POLLIN, 0}};
  for (;;) {
    int n = poll(fds, 4, 200);
    if (n < 0) continue;
    if (n == 0) {
      printf("tick %u\n", ++tick);
      continue;
    }
    if (fds[0].revents & POLLIN) serve(l4, "v4", &served);
    if (fds[1].revents & POLLIN) serve(l6, "v6", &served);
    for (int i = 2; i < 4; i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      char buf[256];
      ssize_t r = recv(fds[i].fd, buf, sizeof(buf) - 1, 0);
      if (r < 0) continue;
      buf[r] = 0;
      printf("udp%c %s\n", i == 2 ? '4' : '6', buf);
    }
  }
}
