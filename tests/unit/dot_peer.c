/* The in-process DoT server of dot_peer.h. One thread, the test's loop,
 * non-blocking sockets; a write is retried until it is out (a test's few
 * hundred bytes always fit a loopback socket buffer, so it never has to
 * wait for the client, which runs on the same loop). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dotstub/xmalloc.h"

#include "dot_peer.h"

#define PEER_CONNS_MAX 64
#define PEER_QUERIES_MAX 256
#define PEER_RECORD_MAX 16384
#define PEER_ANSWER_MAX 1024

struct peer_conn {
	dot_peer_t *p;
	int fd;
	gnutls_session_t s;
	int open;              /* handshake done */
	ev_io io;
	struct bytes in;       /* framed queries not yet whole */
};

struct held {
	struct peer_conn *c;
	size_t query;          /* index into queries */
};

struct dot_peer {
	struct ev_loop *loop;
	int lfd;
	uint16_t port;
	ev_io accept_io;
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t ticket_key;
	dot_peer_mode_t mode;
	struct peer_conn *conns[PEER_CONNS_MAX];   /* NULL: free slot */
	struct bytes queries[PEER_QUERIES_MAX];
	size_t nqueries;
	struct held held[PEER_QUERIES_MAX];
	size_t nheld;
	dot_peer_counts_t counts;
	int silent[PEER_CONNS_MAX];                /* PEER_SILENT's sockets */
	size_t nsilent;
};

static void forget_held(dot_peer_t *p, size_t i)
{
	memmove(&p->held[i], &p->held[i + 1], (p->nheld - i - 1) * sizeof(p->held[0]));
	p->nheld--;
}

static void conn_close(struct peer_conn *c, int bye)
{
	dot_peer_t *p = c->p;

	if (bye && c->open)
		gnutls_bye(c->s, GNUTLS_SHUT_WR);
	ev_io_stop(p->loop, &c->io);
	close(c->fd);
	gnutls_deinit(c->s);
	for (size_t i = p->nheld; i-- > 0;)
		if (p->held[i].c == c)
			forget_held(p, i);
	for (size_t i = 0; i < PEER_CONNS_MAX; i++)
		if (p->conns[i] == c)
			p->conns[i] = NULL;
	bytes_free(&c->in);
	free(c);
	p->counts.closed++;
}

/* A DNS answer to q: header, the question, one A record 192.0.2.99 (TTL
 * 60), made wrong or padded as `how` says. Returns the length, 0 when q
 * has no readable single question. */
static size_t build_answer(const uint8_t *q, size_t len, dot_peer_answer_t how,
			   uint8_t *out, size_t cap)
{
	static const uint8_t a_record[] = {
		0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c,
		0x00, 0x04, 192, 0, 2, 99,
	};
	static const uint8_t opt[] = { 0, 0x00, 0x29, 0x04, 0xd0, 0, 0, 0, 0 };
	size_t off = 12, n;

	if (len < 12 || q[4] != 0 || q[5] != 1)
		return 0;
	while (off < len && q[off] != 0) {
		if (q[off] & 0xc0)
			return 0;
		off += q[off] + 1u;
	}
	off += 1 + 4;
	if (off > len || off + sizeof(a_record) + 11 + 4 + 128 > cap)
		return 0;
	memcpy(out, q, off);
	out[2] = 0x80 | (q[2] & 0x79);    /* QR; opcode and RD as asked */
	out[3] = 0x80;                    /* RA, NOERROR */
	memset(out + 6, 0, 6);
	out[7] = 1;                       /* ANCOUNT */
	memcpy(out + off, a_record, sizeof(a_record));
	n = off + sizeof(a_record);
	if (how == ANSWER_WRONG_ID)
		out[1]++;
	if (how == ANSWER_WRONG_QUESTION && off > 17)
		out[13] = out[13] == 'x' ? 'y' : 'x';
	if (how == ANSWER_PADDED) {
		/* OPT with a padding option bringing the whole to 128-byte
		 * blocks, as a server that pads its answers (RFC 8467) does. */
		size_t base = n + sizeof(opt) + 2 + 4;
		size_t pad = (base + 127) / 128 * 128 - base;

		out[11] = 1;              /* ARCOUNT */
		memcpy(out + n, opt, sizeof(opt));
		n += sizeof(opt);
		out[n++] = (uint8_t)((pad + 4) >> 8);
		out[n++] = (uint8_t)(pad + 4);
		out[n++] = 0;
		out[n++] = 12;            /* Padding */
		out[n++] = (uint8_t)(pad >> 8);
		out[n++] = (uint8_t)pad;
		memset(out + n, 0, pad);
		n += pad;
	}
	return n;
}

static void send_answer(struct peer_conn *c, const struct bytes *query,
			dot_peer_answer_t how)
{
	uint8_t frame[2 + PEER_ANSWER_MAX];
	size_t n = build_answer(query->data, query->len, how, frame + 2,
					 sizeof(frame) - 2);
	ssize_t rc;

	ck_assert_msg(n > 0, "dot_peer: cannot answer a %zu-byte query", query->len);
	frame[0] = (uint8_t)(n >> 8);
	frame[1] = (uint8_t)n;
	do
		rc = gnutls_record_send(c->s, frame, n + 2);
	while (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED);
	ck_assert_msg(rc == (ssize_t)(n + 2), "dot_peer: record_send: %zd", rc);
	c->p->counts.answers++;
}

/* One whole query. Returns -1 when the connection was closed. */
static int handle_query(struct peer_conn *c, const uint8_t *msg, size_t len)
{
	dot_peer_t *p = c->p;
	struct bytes *q;

	ck_assert_uint_lt(p->nqueries, PEER_QUERIES_MAX);
	q = &p->queries[p->nqueries++];
	bytes_add(q, msg, len);
	p->counts.queries++;
	switch (p->mode) {
	case PEER_ANSWER:
		send_answer(c, q, ANSWER_OK);
		break;
	case PEER_HOLD:
		p->held[p->nheld++] = (struct held){ c, p->nqueries - 1 };
		break;
	case PEER_SILENT:
		break;
	case PEER_CLOSE_ON_QUERY:
	case PEER_REJECT:
		conn_close(c, 1);
		return -1;
	}
	return 0;
}

/* Cut whole frames off c->in. Returns -1 when the connection was closed. */
static int handle_frames(struct peer_conn *c)
{
	size_t off = 0;

	while (c->in.len - off >= 2) {
		size_t len = (size_t)c->in.data[off] << 8 | c->in.data[off + 1];
		if (c->in.len - off - 2 < len)
			break;
		if (handle_query(c, c->in.data + off + 2, len) < 0)
			return -1;
		off += 2 + len;
	}
	memmove(c->in.data, c->in.data + off, c->in.len - off);
	c->in.len -= off;
	return 0;
}

static void read_records(struct peer_conn *c)
{
	uint8_t buf[PEER_RECORD_MAX];

	for (;;) {
		ssize_t n = gnutls_record_recv(c->s, buf, sizeof(buf));

		if (n == GNUTLS_E_AGAIN)
			return;
		if (n == GNUTLS_E_INTERRUPTED ||
		    (n < 0 && !gnutls_error_is_fatal((int)n)))
			continue;
		if (n <= 0) {   /* EOF, close_notify or a fatal error */
			conn_close(c, 0);
			return;
		}
		bytes_add(&c->in, buf, (size_t)n);
		if (handle_frames(c) < 0)
			return;
	}
}

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct peer_conn *c = w->data;

	(void)loop;
	(void)revents;
	if (!c->open) {
		int rc = gnutls_handshake(c->s);

		if (rc < 0) {
			if (gnutls_error_is_fatal(rc))
				conn_close(c, 0);
			return;
		}
		c->open = 1;
		if (gnutls_session_is_resumed(c->s))
			c->p->counts.resumed++;
		else
			c->p->counts.handshakes++;
	}
	read_records(c);
}

static void conn_open(dot_peer_t *p, int fd)
{
	struct peer_conn *c = xcalloc(1, sizeof(*c));
	size_t slot = 0;
	int one = 1;

	while (slot < PEER_CONNS_MAX && p->conns[slot])
		slot++;
	ck_assert_uint_lt(slot, PEER_CONNS_MAX);
	p->conns[slot] = c;
	c->p = p;
	c->fd = fd;
	/* Answers right behind the tickets must not wait for an ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fixture_server_session(&c->s, p->cred, &p->ticket_key);
	gnutls_transport_set_int(c->s, fd);
	ev_io_init(&c->io, on_conn_io, fd, EV_READ);
	c->io.data = c;
	ev_io_start(p->loop, &c->io);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	dot_peer_t *p = w->data;
	int fd;

	(void)loop;
	(void)revents;
	while ((fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		p->counts.connections++;
		if (p->mode == PEER_REJECT ||
		    (p->mode == PEER_SILENT && p->nsilent == PEER_CONNS_MAX)) {
			close(fd);
			p->counts.closed++;
			continue;
		}
		if (p->mode == PEER_SILENT) {
			p->silent[p->nsilent++] = fd;
			continue;
		}
		conn_open(p, fd);
	}
}

dot_peer_t *dot_peer_start(struct ev_loop *loop, gnutls_x509_crt_t crt,
			   gnutls_x509_privkey_t key)
{
	dot_peer_t *p = xcalloc(1, sizeof(*p));
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	int one = 1;

	p->loop = loop;
	p->mode = PEER_ANSWER;
	gnutls_ok(gnutls_certificate_allocate_credentials(&p->cred), "peer cred");
	gnutls_ok(gnutls_certificate_set_x509_key(p->cred, &crt, 1, key), "peer key");
	gnutls_ok(gnutls_session_ticket_key_generate(&p->ticket_key), "ticket key");
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(p->lfd, 0);
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(p->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(p->lfd, 64), 0);
	ck_assert_int_eq(getsockname(p->lfd, (struct sockaddr *)&sin, &slen), 0);
	p->port = ntohs(sin.sin_port);
	ev_io_init(&p->accept_io, on_accept, p->lfd, EV_READ);
	p->accept_io.data = p;
	ev_io_start(loop, &p->accept_io);
	return p;
}

void dot_peer_stop(dot_peer_t *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < PEER_CONNS_MAX; i++)
		if (p->conns[i])
			conn_close(p->conns[i], 0);
	ev_io_stop(p->loop, &p->accept_io);
	close(p->lfd);
	for (size_t i = 0; i < p->nsilent; i++)
		close(p->silent[i]);
	for (size_t i = 0; i < p->nqueries; i++)
		bytes_free(&p->queries[i]);
	gnutls_certificate_free_credentials(p->cred);
	gnutls_free(p->ticket_key.data);
	free(p);
}

void dot_peer_set_mode(dot_peer_t *p, dot_peer_mode_t mode)
{
	p->mode = mode;
}

void dot_peer_upstream(const dot_peer_t *p, const char *ca_file,
		       config_upstream_t *u)
{
	char spec[64];

	snprintf(spec, sizeof(spec), "127.0.0.1@%u#%s", p->port, FIXTURE_AUTH_NAME);
	ck_assert_int_eq(config_parse_upstream(spec, u), 0);
	u->ca_file = ca_file;
}

const dot_peer_counts_t *dot_peer_counts(const dot_peer_t *p)
{
	return &p->counts;
}

size_t dot_peer_held(const dot_peer_t *p)
{
	return p->nheld;
}

const uint8_t *dot_peer_query(const dot_peer_t *p, size_t i, size_t *len)
{
	ck_assert_uint_lt(i, p->nqueries);
	*len = p->queries[i].len;
	return p->queries[i].data;
}

void dot_peer_answer(dot_peer_t *p, size_t i, dot_peer_answer_t how)
{
	ck_assert_uint_lt(i, p->nheld);
	send_answer(p->held[i].c, &p->queries[p->held[i].query], how);
	if (how == ANSWER_OK || how == ANSWER_PADDED)
		forget_held(p, i);
}

void dot_peer_close_all(dot_peer_t *p)
{
	for (size_t i = 0; i < PEER_CONNS_MAX; i++)
		if (p->conns[i])
			conn_close(p->conns[i], 1);
}

/* ---- the setting most cases start from -------------------------------- */

void peer_fixture_start(peer_fixture_t *pf, size_t n)
{
	ck_assert_uint_le(n, PEERS_MAX);
	memset(pf, 0, sizeof(*pf));
	pf->loop = ev_loop_new(EVFLAG_AUTO);
	fixture_make_cert(&pf->key, &pf->crt);
	fixture_write_pem(pf->crt, pf->ca_file, sizeof(pf->ca_file));
	for (size_t i = 0; i < n; i++) {
		pf->peer[i] = dot_peer_start(pf->loop, pf->crt, pf->key);
		dot_peer_upstream(pf->peer[i], pf->ca_file, &pf->ups[i]);
	}
	pf->cfg.upstreams = pf->ups;
	pf->cfg.nupstreams = n;
	pf->cfg.policy = POLICY_ORDERED;
	pf->cfg.pool_size = 1;
	pf->cfg.max_inflight = 16;
	pf->cfg.max_waiting = 16;
	pf->cfg.connect_timeout_ms = 5000;
	pf->cfg.idle_timeout_ms = 0;
	pf->cfg.query_timeout_ms = 5000;
	pf->cfg.attempt_timeout_ms = 5000;
	pf->cfg.padding_block = 128;
	pf->cfg.cache_size = 0;
	pf->cfg.cache_max_ttl = 86400;
}

void peer_fixture_stop(peer_fixture_t *pf)
{
	for (size_t i = 0; i < PEERS_MAX; i++)
		dot_peer_stop(pf->peer[i]);
	unlink(pf->ca_file);
	gnutls_x509_crt_deinit(pf->crt);
	gnutls_x509_privkey_deinit(pf->key);
	ev_loop_destroy(pf->loop);
}

/* ---- running the loop ------------------------------------------------- */

static void on_bound(struct ev_loop *loop, ev_timer *w, int revents)
{
	loop_bound_t *b = w->data;

	(void)loop;
	(void)revents;
	b->expired = 1;
}

void loop_bound_start(struct ev_loop *loop, loop_bound_t *b, double secs)
{
	b->expired = 0;
	ev_timer_init(&b->timer, on_bound, secs, 0.);
	b->timer.data = b;
	ev_now_update(loop);
	ev_timer_start(loop, &b->timer);
}

void loop_bound_stop(struct ev_loop *loop, loop_bound_t *b)
{
	ev_timer_stop(loop, &b->timer);
}

void run_for(struct ev_loop *loop, double secs)
{
	loop_bound_t b;

	loop_bound_start(loop, &b, secs);
	while (!b.expired)
		ev_run(loop, EVRUN_ONCE);
	loop_bound_stop(loop, &b);
}
