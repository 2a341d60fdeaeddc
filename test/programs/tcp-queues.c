/*
 * tcp-queues PORT: one TCP connection over loopback per family (127.0.0.1:PORT,
 * [::1]:PORT+1), both ends in this process, with data queued both ways when it
 * is checkpointed: the client writes more than the server's small receive
 * buffer takes (that queue full, the rest unsent in the client's send queue),
 * the server writes a little the client never reads.
 * It then waits for SIGUSR1 (pause(): nothing in memory moves meanwhile);
 * after it, each side reads every queued byte and checks it is the stream it
 * was sent, in order, and new data goes both ways. One line per family:
 * "queued v4 c2s=N s2c=M" at the start, "ok v4 ..." or "bad v4 ..." at the end.
 *
 * Three half-closed connections over 127.0.0.1 beside them (PORT+2..PORT+4),
 * data queued both ways on each, each end in a state CRIU repairs:
 *   h: the client shut down its side and the server acked: FIN_WAIT2 / CLOSE_WAIT;
 *   k: both shut down while the client's packets are dropped (iptables, dport
 *      PORT+3): the client got the server's FIN before its own was acked,
 *      CLOSING / FIN_WAIT1;
 *   l: as h, then the server shuts down while its packets are dropped (sport
 *      PORT+4): FIN_WAIT2 / LAST_ACK.
 * Two more over [::1] (PORT+5, PORT+6): h6 as h, and k6 as k (ip6tables).
 * The DROP rules stay for whoever runs this to remove. "half h c=5 s=8" (the
 * TCP states) at the start; after SIGUSR1 each side reads its queued bytes and
 * the end of the stream, h's server still sends, its client still reads, and
 * both ends close: "ok half h ..." or "bad half h ...".
 *
 * And a connection still being made (PORT+7): its SYNs dropped (iptables, dport
 * PORT+7), the client stays in SYN_SENT (TCP_SYNCNT at its most, so that it does
 * not give up meanwhile), the listener with nothing to accept: "syn c=2". After
 * SIGUSR1 the connection completes, the listener accepts it, data goes both
 * ways: "ok syn" or "bad syn ...".
 */
#include <poll.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

/*
 * Within the default send buffer (tcp_wmem[1], 16 KiB): CRIU 3.17 restores the
 * send queue before the socket's SO_SNDBUF, and a larger one fails (EPIPE).
 */
#define C2S_BYTES 14000
#define S2C_BYTES 1000

struct conn { const char *name; int c, s; long c2s, s2c; };

static volatile sig_atomic_t go;

static void on_usr1(int sig) { (void)sig; go = 1; }

static void die(const char *what) { printf("bad %s: %s\n", what, strerror(errno)); exit(1); }

/* Byte k of a direction's stream: a position-dependent pattern, so a lost, doubled or reordered byte shows. */
static unsigned char pattern(long k, int dir) { return (unsigned char)(k * 31 + (k >> 9) + dir * 101); }

static void setup(struct conn *x, int family, int port) {
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, rcvbuf = 4096, sndbuf = 65536;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET; a->sin_port = htons(port); a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6; a->sin6_port = htons(port); a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	int l = socket(family, SOCK_STREAM, 0);
	if (l < 0) die("socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* A small receive buffer: the server's queue fills at a few KiB, the rest waits unsent in the client's. */
	setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(l, (struct sockaddr *)&ss, len) || listen(l, 1)) die("listen");
	x->c = socket(family, SOCK_STREAM, 0);
	setsockopt(x->c, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	setsockopt(x->c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(x->c, (struct sockaddr *)&ss, len)) die("connect");
	x->s = accept(l, NULL, NULL);
	if (x->s < 0) die("accept");
	close(l);
	fcntl(x->c, F_SETFL, O_NONBLOCK);
	unsigned char chunk[4096];
	while (x->c2s < C2S_BYTES) {
		size_t ask = C2S_BYTES - x->c2s < (long)sizeof(chunk) ? (size_t)(C2S_BYTES - x->c2s) : sizeof(chunk);
		for (size_t i = 0; i < ask; i++) chunk[i] = pattern(x->c2s + i, 0);
		ssize_t n = write(x->c, chunk, ask);
		if (n < 0 && errno == EAGAIN) {
			/* Let the stack settle (window probes, delayed ACKs), then try once more. */
			usleep(200000);
			n = write(x->c, chunk, ask);
			if (n < 0 && errno == EAGAIN) break;
		}
		if (n <= 0) die("write c2s");
		x->c2s += n;
	}
	for (int i = 0; i < S2C_BYTES; i++) chunk[i] = pattern(i, 1);
	if (write(x->s, chunk, S2C_BYTES) != S2C_BYTES) die("write s2c");
	x->s2c = S2C_BYTES;
	fcntl(x->c, F_SETFL, 0);
	printf("queued %s c2s=%ld s2c=%ld\n", x->name, x->c2s, x->s2c);
}

/* Reads exactly want bytes of direction dir's stream from fd; returns the offset of the first wrong byte, or -1. */
static long drain(int fd, long want, int dir) {
	unsigned char buf[65536];
	long got = 0;
	while (got < want) {
		long ask = want - got < (long)sizeof(buf) ? want - got : (long)sizeof(buf);
		ssize_t n = read(fd, buf, ask);
		if (n <= 0) return got;
		for (ssize_t i = 0; i < n; i++) if (buf[i] != pattern(got + i, dir)) return got + i;
		got += n;
	}
	return -1;
}

static void check(struct conn *x) {
	/* The server drains while the client's unsent rest still has to go out: both in one process, so in turns. */
	long bad = drain(x->s, x->c2s, 0);
	if (bad >= 0) { printf("bad %s c2s at byte %ld of %ld\n", x->name, bad, x->c2s); return; }
	bad = drain(x->c, x->s2c, 1);
	if (bad >= 0) { printf("bad %s s2c at byte %ld of %ld\n", x->name, bad, x->s2c); return; }
	char line[32];
	if (write(x->c, "after-c\n", 8) != 8 || read(x->s, line, 8) != 8 || memcmp(line, "after-c\n", 8)) { printf("bad %s: new data c->s\n", x->name); return; }
	if (write(x->s, "after-s\n", 8) != 8 || read(x->c, line, 8) != 8 || memcmp(line, "after-s\n", 8)) { printf("bad %s: new data s->c\n", x->name); return; }
	printf("ok %s c2s=%ld s2c=%ld\n", x->name, x->c2s, x->s2c);
}

#define HALF_C2S 700
#define HALF_S2C 500

struct half { const char *name; int c, s, cstate, sstate; };

static int tcp_state(int fd) {
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len)) return -1;
	return ti.tcpi_state;
}

/* Waits (up to 5 s) for an ioctl's count on fd to reach want: SIOCINQ bytes arrived, SIOCOUTQ 0 all acked. */
static int settle(int fd, unsigned long req, int want) {
	for (int i = 0; i < 250; i++) {
		int n = -1;
		if (ioctl(fd, req, &n) == 0 && n == want) return 1;
		usleep(20000);
	}
	return 0;
}

static int states(struct half *x) {
	for (int i = 0; i < 250; i++) {
		if (tcp_state(x->c) == x->cstate && tcp_state(x->s) == x->sstate) return 1;
		usleep(20000);
	}
	return 0;
}

static void drop(int family, const char *dir, int port, const char *op) {
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "%s %s INPUT -p tcp --%s %d -j DROP", family == AF_INET ? "iptables" : "ip6tables", op, dir, port);
	if (system(cmd) != 0) { printf("bad %s\n", cmd); exit(1); }
}

/* A connection over loopback (127.0.0.1 or ::1):port with HALF_C2S and HALF_S2C bytes delivered, unread, then taken to x's states. */
static void half(struct half *x, int family, int port, char kind) {
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr *a = family == AF_INET ? (struct sockaddr *)&a4 : (struct sockaddr *)&a6;
	socklen_t alen = family == AF_INET ? sizeof(a4) : sizeof(a6);
	struct timeval tmo = { .tv_sec = 120 };
	int one = 1, l = socket(family, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, a, alen) || listen(l, 1)) die("listen half");
	x->c = socket(family, SOCK_STREAM, 0);
	if (connect(x->c, a, alen)) die("connect half");
	x->s = accept(l, NULL, NULL);
	if (x->s < 0) die("accept half");
	close(l);
	/*
	 * Reads after the restore end in "bad", not a hang, should a FIN never come. A FIN the restore queued
	 * while the network was locked comes again on the retransmit timer, in backed-off steps of tens of seconds.
	 */
	setsockopt(x->c, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	setsockopt(x->s, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	unsigned char buf[HALF_C2S];
	for (int i = 0; i < HALF_C2S; i++) buf[i] = pattern(i, 2);
	if (write(x->c, buf, HALF_C2S) != HALF_C2S) die("write half c2s");
	for (int i = 0; i < HALF_S2C; i++) buf[i] = pattern(i, 3);
	if (write(x->s, buf, HALF_S2C) != HALF_S2C) die("write half s2c");
	if (!settle(x->s, SIOCINQ, HALF_C2S) || !settle(x->c, SIOCINQ, HALF_S2C) || !settle(x->c, SIOCOUTQ, 0) || !settle(x->s, SIOCOUTQ, 0)) {
		printf("bad half %s: data not delivered\n", x->name);
		exit(1);
	}
	if (kind == 'k') drop(family, "dport", port, "-I");
	shutdown(x->c, SHUT_WR);
	if (kind == 'l') {
		if (!settle(x->c, SIOCOUTQ, 0)) { printf("bad half %s: FIN not acked\n", x->name); exit(1); }
		drop(family, "sport", port, "-I");
	}
	if (kind != 'h') shutdown(x->s, SHUT_WR);
	if (!states(x)) { printf("bad half %s: states c=%d s=%d\n", x->name, tcp_state(x->c), tcp_state(x->s)); exit(1); }
	printf("half %s c=%d s=%d\n", x->name, x->cstate, x->sstate);
}

/* Reads HALF_C2S/HALF_S2C bytes on each side, then the end of each stream (h's server sending and closing first). */
static void check_half(struct half *x) {
	char line[16];
	long bad = drain(x->s, HALF_C2S, 2);
	if (bad >= 0) { printf("bad half %s c2s at byte %ld\n", x->name, bad); return; }
	if (read(x->s, line, 1) != 0) { printf("bad half %s: server read no end of stream: %s, states c=%d s=%d\n", x->name, strerror(errno), tcp_state(x->c), tcp_state(x->s)); return; }
	bad = drain(x->c, HALF_S2C, 3);
	if (bad >= 0) { printf("bad half %s s2c at byte %ld\n", x->name, bad); return; }
	if (x->sstate == TCP_CLOSE_WAIT) {
		if (write(x->s, "after-s\n", 8) != 8 || read(x->c, line, 8) != 8 || memcmp(line, "after-s\n", 8)) { printf("bad half %s: new data s->c\n", x->name); return; }
		close(x->s);
		x->s = -1;
	}
	ssize_t n = read(x->c, line, 1);
	int err = 0;
	socklen_t len = sizeof(err);
	getsockopt(x->c, SOL_SOCKET, SO_ERROR, &err, &len);
	if (n != 0 || err) {
		printf("bad half %s: client read %zd, error %d (%s), states c=%d s=%d\n", x->name, n, err, strerror(n < 0 ? errno : err), tcp_state(x->c), tcp_state(x->s));
		return;
	}
	close(x->c);
	if (x->s >= 0) close(x->s);
	printf("ok half %s c2s=%d s2c=%d\n", x->name, HALF_C2S, HALF_S2C);
}

struct syn { int c, l; };

static void syn_sent(struct syn *x, int port) {
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tmo = { .tv_sec = 120 };
	int one = 1, most = 127;
	x->l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(x->l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(x->l, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	if (bind(x->l, (struct sockaddr *)&a, sizeof(a)) || listen(x->l, 1)) die("listen syn");
	drop(AF_INET, "dport", port, "-I");
	x->c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(x->c, IPPROTO_TCP, TCP_SYNCNT, &most, sizeof(most));
	if (connect(x->c, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != EINPROGRESS) die("connect syn");
	if (tcp_state(x->c) != TCP_SYN_SENT) { printf("bad syn: state %d\n", tcp_state(x->c)); exit(1); }
	printf("syn c=%d\n", TCP_SYN_SENT);
}

/* The connect ends (within 120 s), the listener accepts it, a line each way. */
static void check_syn(struct syn *x) {
	struct pollfd p = { .fd = x->c, .events = POLLOUT };
	int err = 0;
	socklen_t len = sizeof(err);
	char line[8];
	if (poll(&p, 1, 120000) != 1 || getsockopt(x->c, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		printf("bad syn: connect did not complete: %s, state %d\n", strerror(err), tcp_state(x->c));
		return;
	}
	int s = accept(x->l, NULL, NULL);
	if (s < 0) { printf("bad syn: accept: %s\n", strerror(errno)); return; }
	fcntl(x->c, F_SETFL, 0);
	if (write(x->c, "after-c\n", 8) != 8 || read(s, line, 8) != 8 || memcmp(line, "after-c\n", 8)) { printf("bad syn: new data c->s\n"); return; }
	if (write(s, "after-s\n", 8) != 8 || read(x->c, line, 8) != 8 || memcmp(line, "after-s\n", 8)) { printf("bad syn: new data s->c\n"); return; }
	printf("ok syn\n");
}

int main(int argc, char **argv) {
	int port = argc > 1 ? atoi(argv[1]) : 7420;
	struct conn v4 = { .name = "v4" }, v6 = { .name = "v6" };
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGUSR1, on_usr1);
	setup(&v4, AF_INET, port);
	setup(&v6, AF_INET6, port + 1);
	struct half h = { "h", -1, -1, TCP_FIN_WAIT2, TCP_CLOSE_WAIT }, k = { "k", -1, -1, TCP_CLOSING, TCP_FIN_WAIT1 },
		l = { "l", -1, -1, TCP_FIN_WAIT2, TCP_LAST_ACK }, h6 = { "h6", -1, -1, TCP_FIN_WAIT2, TCP_CLOSE_WAIT },
		k6 = { "k6", -1, -1, TCP_CLOSING, TCP_FIN_WAIT1 };
	half(&h, AF_INET, port + 2, 'h');
	half(&k, AF_INET, port + 3, 'k');
	half(&l, AF_INET, port + 4, 'l');
	half(&h6, AF_INET6, port + 5, 'h');
	half(&k6, AF_INET6, port + 6, 'k');
	struct syn syn;
	syn_sent(&syn, port + 7);
	while (!go) pause();
	check(&v4);
	check(&v6);
	check_half(&h);
	check_half(&k);
	check_half(&l);
	check_half(&h6);
	check_half(&k6);
	check_syn(&syn);
	return 0;
}
