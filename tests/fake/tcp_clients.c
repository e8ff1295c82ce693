/*
 * tcp_clients — hostile DNS-over-TCP clients for dotstub's listener tests
 * (tests/integration/tcpclients.test, fdlimit.test).
 *
 *   tcp_clients --port P --pipeline N --name NAME [--qtype T] [--seconds S]
 *       One connection to 127.0.0.1:P; N framed queries for NAME (IDs 1..N)
 *       written as fast as the socket takes them; nothing is ever read.
 *       Prints "sent K" once all are written (or at the end), and
 *       "closed after MS ms" when dotstub closes the connection (its TCP
 *       state leaves ESTABLISHED), else "open after S s".
 *
 *   tcp_clients --port P --idle N [--busy K --name NAME] [--seconds S]
 *       N connections, opened one after another; the first K (default 0)
 *       each send one query for NAME and then wait, the others send
 *       nothing. Answers are read and counted. Prints "connected N" once
 *       all are connected, then a status line whenever something changes
 *       and at the end:
 *       "status closed=C busy_closed=B answers=A"
 *       (closed: connections dotstub closed; busy_closed: of them, busy
 *       ones closed before their answer came).
 *
 * Stops after S seconds (default 30) or at SIGTERM, printing its last
 * line again; exits 0. Only libc; output is line-buffered.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096

typedef struct {
	int port;
	int pipeline;      /* > 0: pipeline mode */
	int idle;          /* > 0: idle mode */
	int busy;
	const char *name;
	int qtype;
	int seconds;
} opts_t;

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(void)
{
	fputs("usage: tcp_clients --port P --pipeline N --name NAME [--qtype T] [--seconds S]\n"
	      "       tcp_clients --port P --idle N [--busy K --name NAME] [--seconds S]\n",
	      stderr);
	exit(2);
}

static void parse(int argc, char **argv, opts_t *o)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "pipeline", required_argument, NULL, 'P' },
		{ "idle", required_argument, NULL, 'i' },
		{ "busy", required_argument, NULL, 'b' },
		{ "name", required_argument, NULL, 'n' },
		{ "qtype", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->qtype = 1;
	o->seconds = 30;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'p': o->port = atoi(optarg); break;
		case 'P': o->pipeline = atoi(optarg); break;
		case 'i': o->idle = atoi(optarg); break;
		case 'b': o->busy = atoi(optarg); break;
		case 'n': o->name = optarg; break;
		case 't': o->qtype = atoi(optarg); break;
		case 's': o->seconds = atoi(optarg); break;
		default: usage();
		}
	}
	if (o->port <= 0 || (o->pipeline > 0) == (o->idle > 0) ||
	    o->idle > MAX_CONNS || ((o->pipeline || o->busy) && !o->name))
		usage();
}

/* A framed query (2-byte length first) for name/qtype with id; its size. */
static size_t build_query(uint8_t *buf, size_t cap, unsigned id,
			  const char *name, int qtype)
{
	size_t n = 2;
	const char *p = name;

	if (cap < 2 + 12 + 255 + 4)
		return 0;
	memset(buf, 0, 14);
	buf[n++] = (uint8_t)(id >> 8);
	buf[n++] = (uint8_t)id;
	buf[n++] = 0x01;   /* RD */
	n++;
	buf[n + 1] = 1;    /* QDCOUNT */
	n += 8;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (len == 0 || len > 63 || n + len + 6 > cap)
			return 0;
		buf[n++] = (uint8_t)len;
		memcpy(buf + n, p, len);
		n += len;
		p += len + (dot ? 1 : 0);
	}
	buf[n++] = 0;
	buf[n++] = (uint8_t)(qtype >> 8);
	buf[n++] = (uint8_t)qtype;
	buf[n++] = 0;
	buf[n++] = 1;
	buf[0] = (uint8_t)((n - 2) >> 8);
	buf[1] = (uint8_t)(n - 2);
	return n;
}

static int connect_to(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Still ESTABLISHED? (FIN from the peer: CLOSE_WAIT; RST: CLOSE.) */
static int established(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return 0;
	return ti.tcpi_state == TCP_ESTABLISHED;
}

static int run_pipeline(const opts_t *o)
{
	uint8_t q[300];
	int fd = connect_to(o->port);
	long long t0 = now_ms(), deadline = t0 + o->seconds * 1000LL;
	int sent = 0, reported = 0, dead = 0;
	size_t len, off = 0;

	if (fd < 0) {
		perror("tcp_clients: connect");
		return 1;
	}
	len = build_query(q, sizeof(q), 1, o->name, o->qtype);
	if (len == 0)
		usage();
	while (!stop && now_ms() < deadline) {
		if (!dead && sent < o->pipeline) {
			ssize_t n = send(fd, q + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0 && (off += (size_t)n) == len) {
				off = 0;
				sent++;
				build_query(q, sizeof(q), (unsigned)sent + 1, o->name, o->qtype);
				continue;
			}
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				dead = 1;   /* reset: the state check below says so */
		}
		if ((sent == o->pipeline || dead) && !reported++)
			printf("sent %d\n", sent);
		if (!established(fd)) {
			if (!reported)
				printf("sent %d\n", sent);
			printf("closed after %lld ms\n", now_ms() - t0);
			return 0;
		}
		usleep(sent < o->pipeline ? 1000 : 20000);
	}
	if (!reported)
		printf("sent %d\n", sent);
	printf("open after %d s\n", o->seconds);
	return 0;
}

typedef struct {
	int fd;        /* -1 once closed */
	int busy;      /* waiting for its answer */
} conn_t;

/* Read what a connection has: answers are counted by their length
 * prefixes (one read per poll wake-up is enough for small answers).
 * Returns 1 when the peer closed it. */
static int drain(conn_t *c, int *answers)
{
	uint8_t buf[4096];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return 1;
	if (n > 0 && c->busy) {
		c->busy = 0;
		(*answers)++;
	}
	return 0;
}

static void status(int closed, int busy_closed, int answers)
{
	printf("status closed=%d busy_closed=%d answers=%d\n", closed,
	       busy_closed, answers);
}

static int run_idle(const opts_t *o)
{
	static conn_t conns[MAX_CONNS];
	static struct pollfd pfd[MAX_CONNS];
	long long deadline;
	int closed = 0, busy_closed = 0, answers = 0, changed = 1;
	uint8_t q[300];
	size_t len = 0;

	if (o->busy)
		len = build_query(q, sizeof(q), 4242, o->name, o->qtype);
	for (int i = 0; i < o->idle; i++) {
		conns[i].fd = connect_to(o->port);
		if (conns[i].fd < 0) {
			fprintf(stderr, "tcp_clients: connect %d: %s\n", i, strerror(errno));
			return 1;
		}
		if (i < o->busy) {
			conns[i].busy = 1;
			if (send(conns[i].fd, q, len, MSG_NOSIGNAL) != (ssize_t)len)
				perror("tcp_clients: send");
		}
	}
	printf("connected %d\n", o->idle);
	deadline = now_ms() + o->seconds * 1000LL;
	while (!stop && now_ms() < deadline) {
		for (int i = 0; i < o->idle; i++) {
			pfd[i].fd = conns[i].fd;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		if (changed)
			status(closed, busy_closed, answers);
		changed = 0;
		if (poll(pfd, (nfds_t)o->idle, 100) <= 0)
			continue;
		for (int i = 0; i < o->idle; i++) {
			if (conns[i].fd < 0 || !pfd[i].revents)
				continue;
			if (drain(&conns[i], &answers)) {
				closed++;
				busy_closed += conns[i].busy;
				close(conns[i].fd);
				conns[i].fd = -1;
			}
			changed = 1;
		}
	}
	status(closed, busy_closed, answers);
	return 0;
}

int main(int argc, char **argv)
{
	opts_t o;

	parse(argc, argv, &o);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	return o.pipeline ? run_pipeline(&o) : run_idle(&o);
}
