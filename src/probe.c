#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dotstub/dnsmsg.h"
#include "dotstub/frame.h"
#include "dotstub/json.h"
#include "dotstub/probe.h"
#include "dotstub/tls.h"
#include "dotstub/xmalloc.h"

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

/* What one probe saw, printed at the end as text or JSON. */
typedef struct {
	const config_upstream_t *u;
	char error[CONFIG_SPEC_MAX + 128];  /* why it stopped before the handshake */
	double connect_ms;       /* < 0: not connected */
	double handshake_ms;     /* < 0: no complete handshake */
	int handshake_ran;       /* a TLS session was made (tls is valid) */
	char handshake_error[320];
	tls_info_t *tls;
	int verified;
	struct {
		const char *name, *type;
		int answered, rcode;
		unsigned bytes;
		double ms;
		char error[300];
	} query;
	struct {
		unsigned wait_ms;    /* 0: not measured (no --probe-idle) */
		int closed, failed;
		double after_s;      /* idle time before the server closed */
	} idle;
} probe_result_t;

static int connect_tcp(const config_upstream_t *u, double deadline,
		       probe_result_t *r)
{
	int one = 1, err = 0;
	socklen_t len = sizeof(err);
	int fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(r->error, sizeof(r->error), "socket: %s", strerror(errno));
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
		snprintf(r->error, sizeof(r->error), "connect to %s: %s", u->text,
			 strerror(err));
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
			double deadline, probe_result_t *r)
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

	r->query.name = u->name[0] ? u->name : ".";
	r->query.type = u->name[0] ? "A" : "NS";
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
	r->query.answered = 1;
	r->query.rcode = dnsmsg_rcode(msg);
	r->query.bytes = (unsigned)len;
	r->query.ms = now_ms() - start;
	frame_reader_destroy(rd);
	return;
fail:
	snprintf(r->query.error, sizeof(r->query.error), "%s",
		 st == TLS_FAILED || st == TLS_CLOSED ? tls_session_error(s) : "timeout");
	frame_reader_destroy(rd);
}

/* After the query, idle: when does the server close? dotstub learns the
 * same (idle-timeout), and closes its connections before. */
static void probe_idle_close(tls_session_t *s, int fd, unsigned wait_ms,
			     probe_result_t *r)
{
	double start = now_ms(), deadline = start + wait_ms;
	uint8_t buf[4096];
	size_t got;
	tls_status_t st;

	r->idle.wait_ms = wait_ms;
	while ((st = tls_session_recv(s, buf, sizeof(buf), &got)) != TLS_CLOSED) {
		if (st == TLS_FAILED ||
		    ((st == TLS_AGAIN_INPUT || st == TLS_AGAIN_OUTPUT) &&
		     wait_for(fd, st, deadline) < 0)) {
			r->idle.failed = st == TLS_FAILED;
			return;
		}
		start = st == TLS_OK ? now_ms() : start;  /* data is not idle */
	}
	r->idle.closed = 1;
	r->idle.after_s = (now_ms() - start) / 1000.0;
}

/* Connect, handshake, query (and the idle close): fills r. */
static void probe(const config_t *cfg, probe_result_t *r)
{
	const config_upstream_t *u = r->u;
	tls_peer_t peer = {
		.auth_name = u->name[0] ? u->name : NULL,
		.ip_text = u->ip_text,
		.pins = u->pins,
		.npins = u->npins,
	};
	char err[256];
	tls_ctx_t *ctx = tls_ctx_create(u->ca_file, err, sizeof(err));
	tls_session_t *s = NULL;
	double t0 = now_ms(), t1, deadline = t0 + cfg->connect_timeout_ms * 2.0;
	int fd = -1;

	if (!ctx) {
		snprintf(r->error, sizeof(r->error), "trust anchors: %s", err);
		return;
	}
	fd = connect_tcp(u, deadline, r);
	if (fd < 0)
		goto done;
	t1 = now_ms();
	r->connect_ms = t1 - t0;
	s = tls_session_create(ctx, fd, &peer, err, sizeof(err));
	if (!s) {
		snprintf(r->error, sizeof(r->error), "%s", err);
		goto done;
	}
	tls_status_t st = handshake(s, fd, deadline);
	r->handshake_ran = 1;
	tls_session_info(s, r->tls);
	if (st != TLS_OK) {
		snprintf(r->handshake_error, sizeof(r->handshake_error), "%s",
			 tls_session_error(s));
		goto done;
	}
	r->handshake_ms = now_ms() - t1;
	r->verified = 1;
	probe_query(s, fd, u, deadline + 2000, r);
	if (cfg->probe_idle_ms)
		probe_idle_close(s, fd, cfg->probe_idle_ms, r);
done:
	tls_session_destroy(s);
	if (fd >= 0)
		close(fd);
	tls_ctx_destroy(ctx);
}

static void print_text(const probe_result_t *r, FILE *out)
{
	fprintf(out, "probe:        %s\n", r->u->text);
	if (r->connect_ms >= 0)
		fprintf(out, "connect:      %.1f ms\n", r->connect_ms);
	if (r->error[0])
		fprintf(out, "error: %s\n", r->error);
	if (!r->handshake_ran)
		return;
	tls_info_print(r->tls, out);
	if (!r->verified) {
		fprintf(out, "handshake:    FAILED: %s\n", r->handshake_error);
		fprintf(out, "result:       NOT VERIFIED\n");
		return;
	}
	fprintf(out, "handshake:    %.1f ms\n", r->handshake_ms);
	if (r->query.answered)
		fprintf(out, "query:        %s %s: rcode %d, %u bytes, %.1f ms\n",
			r->query.name, r->query.type, r->query.rcode,
			r->query.bytes, r->query.ms);
	else
		fprintf(out, "query:        no answer (%s)\n", r->query.error);
	if (r->idle.closed)
		fprintf(out, "idle close:   after %.1f s\n", r->idle.after_s);
	else if (r->idle.wait_ms)
		fprintf(out, "idle close:   not within %.1f s%s\n", r->idle.wait_ms / 1000.0,
			r->idle.failed ? " (connection failed)" : "");
	fprintf(out, "result:       verified\n");
}

static void json_cert(json_t *j, const char *key, const tls_cert_info_t *c)
{
	int readable = c->role != TLS_ROLE_UNREADABLE;

	json_object(j, key);
	json_str(j, "subject", readable ? c->subject : NULL);
	json_str(j, "issuer", readable ? c->issuer : NULL);
	if (readable) {
		json_int(j, "not_before", c->not_before);
		json_int(j, "not_after", c->not_after);
	}
	json_str(j, "pin_sha256", c->pin[0] ? c->pin : NULL);
	json_str(j, "path", tls_role_word(c->role));
	json_bool(j, "on_path", tls_role_on_path(c->role));
	json_end(j, '}');
}

static void json_tls(json_t *j, const tls_info_t *t)
{
	json_array(j, "chain");
	for (unsigned i = 0; i < t->nchain; i++)
		json_cert(j, NULL, &t->chain[i]);
	json_end(j, ']');
	json_int(j, "certificates_sent", t->nsent);
	if (t->has_anchor)
		json_cert(j, "trust_anchor", &t->anchor);
	else
		json_str(j, "trust_anchor", NULL);
	json_str(j, "tls_version", t->version);
	json_str(j, "cipher", t->cipher);
	json_str(j, "alpn", t->alpn[0] ? t->alpn : NULL);
	json_object(j, "verdicts");
	json_bool(j, "reached", t->reached);
	json_bool(j, "name", t->reached && t->name_ok);
	json_bool(j, "purpose", t->reached && t->purpose_ok);
	json_bool(j, "trust", t->reached && t->trust_ok);
	json_str(j, "why", t->why[0] ? t->why : NULL);
	json_end(j, '}');
	json_object(j, "pins");
	json_int(j, "configured", (int64_t)t->npins);
	json_str(j, "matched", t->pin_matched[0] ? t->pin_matched : NULL);
	json_end(j, '}');
}

static void json_query(json_t *j, const probe_result_t *r)
{
	if (!r->query.name) {
		json_str(j, "query", NULL);
		return;
	}
	json_object(j, "query");
	json_str(j, "name", r->query.name);
	json_str(j, "type", r->query.type);
	json_bool(j, "answered", r->query.answered);
	if (r->query.answered) {
		json_int(j, "rcode", r->query.rcode);
		json_int(j, "bytes", r->query.bytes);
		json_ms(j, "ms", r->query.ms);
	} else {
		json_str(j, "error", r->query.error);
	}
	json_end(j, '}');
}

static void json_idle(json_t *j, const probe_result_t *r)
{
	if (!r->idle.wait_ms) {
		json_str(j, "idle_close", NULL);
		return;
	}
	json_object(j, "idle_close");
	json_bool(j, "closed", r->idle.closed);
	json_ms(j, "after_ms", r->idle.closed ? r->idle.after_s * 1000.0 : -1);
	json_int(j, "waited_ms", r->idle.wait_ms);
	json_bool(j, "connection_failed", r->idle.failed);
	json_end(j, '}');
}

/* One object; a member the probe never reached is null. */
static void print_json(const probe_result_t *r, FILE *out)
{
	json_t j;

	json_init(&j, out);
	json_object(&j, NULL);
	json_str(&j, "upstream", r->u->text);
	json_str(&j, "address", r->u->ip_text);
	json_str(&j, "auth_name", r->u->name[0] ? r->u->name : NULL);
	json_bool(&j, "verified", r->verified);
	json_str(&j, "error", r->error[0] ? r->error
			      : r->handshake_error[0] ? r->handshake_error : NULL);
	json_object(&j, "timings_ms");
	json_ms(&j, "connect", r->connect_ms);
	json_ms(&j, "handshake", r->handshake_ms);
	json_ms(&j, "query", r->query.answered ? r->query.ms : -1);
	json_end(&j, '}');
	if (r->handshake_ran)
		json_tls(&j, r->tls);
	json_query(&j, r);
	json_idle(&j, r);
	json_end(&j, '}');
}

int probe_run(const config_t *cfg, FILE *out)
{
	probe_result_t *r = xcalloc(1, sizeof(*r));
	int rc;

	r->u = &cfg->probe;
	r->connect_ms = r->handshake_ms = -1;
	r->tls = xcalloc(1, sizeof(*r->tls));
	probe(cfg, r);
	if (cfg->probe_json)
		print_json(r, out);
	else
		print_text(r, out);
	rc = r->verified ? 0 : 1;
	free(r->tls);
	free(r);
	return rc;
}
