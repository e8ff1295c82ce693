#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dotstub/dnsmsg.h"
#include "dotstub/frame.h"
#include "dotstub/probe.h"
#include "dotstub/tls.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Wait for the direction a TLS call asked for; 0, or -1 on timeout. */
static int wait_for(int fd, tls_status_t st, double deadline)
{
	struct pollfd p = { fd, st == TLS_AGAIN_OUTPUT ? POLLOUT : POLLIN, 0 };
	int left = (int)(deadline - now_ms());

	if (left <= 0)
		return -1;
	return poll(&p, 1, left) == 1 ? 0 : -1;
}

static int connect_tcp(const config_upstream_t *u, double deadline, FILE *out)
{
	int one = 1, err = 0;
	socklen_t len = sizeof(err);
	int fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		fprintf(out, "error: socket: %s\n", strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&u->addr, u->addrlen) < 0 &&
	    errno != EINPROGRESS)
		err = errno;
	else if (wait_for(fd, TLS_AGAIN_OUTPUT, deadline) < 0)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		fprintf(out, "error: connect to %s: %s\n", u->text, strerror(err));
		close(fd);
		return -1;
	}
	return fd;
}

static tls_status_t handshake(tls_session_t *s, int fd, double deadline)
{
	tls_status_t st;

	while ((st = tls_session_handshake(s)) == TLS_AGAIN_INPUT ||
	       st == TLS_AGAIN_OUTPUT)
		if (wait_for(fd, st, deadline) < 0)
			return TLS_FAILED;
	return st;
}

/* One query for the auth name (or the root's NS) and its answer. */
static void probe_query(tls_session_t *s, int fd, const config_upstream_t *u,
			double deadline, FILE *out)
{
	uint8_t q[512], buf[4096];
	size_t qlen = dnsmsg_build_probe(u->name[0] ? u->name : ".",
					 u->name[0] ? 1 : 2, 0x5eed, q + 2,
					 sizeof(q) - 2);
	frame_reader_t *rd = frame_reader_create();
	double start = now_ms();
	size_t sent = 0, got;
	const uint8_t *msg;
	size_t len;
	tls_status_t st;

	q[0] = (uint8_t)(qlen >> 8);
	q[1] = (uint8_t)qlen;
	while ((st = tls_session_send(s, q, qlen + 2, &sent)) != TLS_OK)
		if (st == TLS_FAILED || st == TLS_CLOSED || wait_for(fd, st, deadline) < 0)
			goto fail;
	for (;;) {
		/* ACK the server's ticket segments at once: a server with Nagle
		 * on holds the answer until then (see dot_conn.c). */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
		st = tls_session_recv(s, buf, sizeof(buf), &got);
		if (st == TLS_OK) {
			frame_reader_feed(rd, buf, got);
			if (frame_reader_next(rd, &msg, &len) && len >= DNSMSG_HEADER_LEN)
				break;
			continue;
		}
		if (st == TLS_FAILED || st == TLS_CLOSED || wait_for(fd, st, deadline) < 0)
			goto fail;
	}
	fprintf(out, "query:        %s %s: rcode %d, %u bytes, %.1f ms\n",
		u->name[0] ? u->name : ".", u->name[0] ? "A" : "NS",
		dnsmsg_rcode(msg), (unsigned)len, now_ms() - start);
	frame_reader_destroy(rd);
	return;
fail:
	fprintf(out, "query:        no answer (%s)\n",
		st == TLS_FAILED || st == TLS_CLOSED ? tls_session_error(s) : "timeout");
	frame_reader_destroy(rd);
}

/* After the query, idle: when does the server close? dotstub learns the
 * same (idle-timeout), and closes its connections before. */
static void probe_idle_close(tls_session_t *s, int fd, unsigned wait_ms, FILE *out)
{
	double start = now_ms(), deadline = start + wait_ms;
	uint8_t buf[4096];
	size_t got;
	tls_status_t st;

	while ((st = tls_session_recv(s, buf, sizeof(buf), &got)) != TLS_CLOSED) {
		if (st == TLS_FAILED ||
		    ((st == TLS_AGAIN_INPUT || st == TLS_AGAIN_OUTPUT) &&
		     wait_for(fd, st, deadline) < 0)) {
			fprintf(out, "idle close:   not within %.1f s%s\n", wait_ms / 1000.0,
				st == TLS_FAILED ? " (connection failed)" : "");
			return;
		}
		start = st == TLS_OK ? now_ms() : start;  /* data is not idle */
	}
	fprintf(out, "idle close:   after %.1f s\n", (now_ms() - start) / 1000.0);
}

int probe_run(const config_t *cfg, FILE *out)
{
	const config_upstream_t *u = &cfg->probe;
	tls_peer_t peer = {
		.auth_name = u->name[0] ? u->name : NULL,
		.ip_text = u->ip_text,
		.pins = u->pins,
		.npins = u->npins,
	};
	char err[256];
	tls_ctx_t *ctx = tls_ctx_create(u->ca_file, err, sizeof(err));
	tls_session_t *s = NULL;
	double t0 = now_ms(), deadline = t0 + cfg->connect_timeout_ms * 2.0;
	int fd = -1, rc = 1;

	fprintf(out, "probe:        %s\n", u->text);
	if (!ctx) {
		fprintf(out, "error: trust anchors: %s\n", err);
		return 1;
	}
	fd = connect_tcp(u, deadline, out);
	if (fd < 0)
		goto done;
	double t1 = now_ms();
	fprintf(out, "connect:      %.1f ms\n", t1 - t0);
	s = tls_session_create(ctx, fd, &peer, err, sizeof(err));
	if (!s) {
		fprintf(out, "error: %s\n", err);
		goto done;
	}
	tls_status_t st = handshake(s, fd, deadline);
	tls_session_describe(s, out);
	if (st != TLS_OK) {
		fprintf(out, "handshake:    FAILED: %s\n", tls_session_error(s));
		fprintf(out, "result:       NOT VERIFIED\n");
		goto done;
	}
	fprintf(out, "handshake:    %.1f ms\n", now_ms() - t1);
	probe_query(s, fd, u, deadline + 2000, out);
	if (cfg->probe_idle_ms)
		probe_idle_close(s, fd, cfg->probe_idle_ms, out);
	fprintf(out, "result:       verified\n");
	rc = 0;
done:
	tls_session_destroy(s);
	if (fd >= 0)
		close(fd);
	tls_ctx_destroy(ctx);
	return rc;
}
