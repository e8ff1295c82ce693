#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dotstub/dnsmsg.h"
#include "dotstub/dot_conn.h"
#include "dotstub/frame.h"
#include "dotstub/idmap.h"
#include "dotstub/log.h"
#include "dotstub/stats.h"
#include "dotstub/xmalloc.h"

struct dot_conn {
	struct ev_loop *loop;
	dot_conn_state_t state;
	int fd;
	const config_upstream_t *up;
	tls_session_t *tls;
	dot_conn_opts_t opts;
	const dot_conn_events_t *ev;
	void *arg;
	ev_io io;
	ev_timer timer;       /* connect/handshake deadline, then idle close */
	ev_prepare flush;     /* writes queued in this loop pass go together */
	int events;           /* what io watches: EV_READ | EV_WRITE */
	int tls_wants_write;  /* a TLS operation waits for writability */
	idmap_t *ids;
	frame_reader_t *rd;
	frame_writer_t *wr;
	size_t sending;       /* bytes handed to the TLS send in progress */
	ev_tstamp started;
	ev_tstamp last_rx;    /* when the server last sent anything */
	ev_tstamp last_active;  /* ready, the last query out or bytes in */
	ev_tstamp busy_since;   /* the first query after an idle spell went */
	ev_tstamp idle_from;    /* ... and that idle spell's start */
	int peer_closed;      /* it closed the session (EOF, close_notify) */
	int keepalive_ms;     /* the server's EDNS keepalive, -1 unknown */
	int failure;          /* stats_reason_t of a failure before READY, or -1 */
	dot_conn_stats_t stats;
};

static void close_conn(dot_conn_t *c, int failed, const char *why);

/* Per thread: a query lives and is resent within its thread. */
static _Thread_local uint64_t next_seq;

static void set_events(dot_conn_t *c, int events)
{
	if (events == c->events)
		return;
	ev_io_stop(c->loop, &c->io);
	c->events = events;
	if (events) {
		ev_io_set(&c->io, c->fd, events);
		ev_io_start(c->loop, &c->io);
	}
}

/* Interest follows state: reading always once connected; writing while
 * connecting, while TLS asks for it, or while queries wait to go out. */
static void update_events(dot_conn_t *c)
{
	int ev = 0;

	switch (c->state) {
	case DOT_CONNECTING:
		ev = EV_WRITE;
		break;
	case DOT_HANDSHAKE:
		ev = c->tls_wants_write ? EV_WRITE : EV_READ;
		break;
	case DOT_READY:
	case DOT_DRAINING:
		ev = EV_READ | (c->tls_wants_write ? EV_WRITE : 0);
		break;
	case DOT_CLOSED:
		break;
	}
	set_events(c, ev);
}

/* Idle close: ours, or sooner when the server announced a shorter EDNS
 * keepalive (RFC 7828); its 0 means "close when done". */
static void arm_idle(dot_conn_t *c)
{
	double secs = c->opts.idle_timeout_ms / 1000.0;

	ev_timer_stop(c->loop, &c->timer);
	if (idmap_count(c->ids) > 0)
		return;
	if (c->keepalive_ms >= 0 && (secs == 0 || c->keepalive_ms / 1000.0 < secs))
		secs = c->keepalive_ms > 0 ? c->keepalive_ms / 1000.0 : 0.001;
	if (secs > 0) {
		ev_timer_set(&c->timer, secs, 0.);
		ev_timer_start(c->loop, &c->timer);
	}
}

/* The one place the state changes. */
static void change_state(dot_conn_t *c, dot_conn_state_t state)
{
	c->state = state;
	if (state == DOT_READY) {
		c->last_active = ev_now(c->loop);
		arm_idle(c);
	}
	if (state == DOT_CLOSED) {
		ev_timer_stop(c->loop, &c->timer);
		ev_prepare_stop(c->loop, &c->flush);
	}
	update_events(c);
}

/* Hand queued bytes to TLS until it pushes back. Returns -1 when the
 * connection was closed. */
static int flush_writes(dot_conn_t *c)
{
	const uint8_t *data;
	size_t len, sent;

	ev_prepare_stop(c->loop, &c->flush);
	while ((len = frame_writer_data(c->wr, &data)) > 0) {
		if (!c->sending)
			c->sending = len;
		tls_status_t st = tls_session_send(c->tls, data, c->sending, &sent);
		if (st == TLS_AGAIN_INPUT || st == TLS_AGAIN_OUTPUT) {
			c->tls_wants_write = st == TLS_AGAIN_OUTPUT;
			update_events(c);
			return 0;
		}
		if (st != TLS_OK) {
			close_conn(c, 0, tls_session_error(c->tls));
			return -1;
		}
		c->sending = 0;
		frame_writer_consume(c->wr, sent);
	}
	c->tls_wants_write = 0;
	update_events(c);
	return 0;
}

static void on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
	dot_conn_t *c = w->data;

	(void)loop;
	(void)revents;
	if (c->state == DOT_READY || c->state == DOT_DRAINING)
		flush_writes(c);
}

static void schedule_flush(dot_conn_t *c)
{
	if (c->state == DOT_READY || c->state == DOT_DRAINING)
		ev_prepare_start(c->loop, &c->flush);
}

/* Servers that leave Nagle on hold their first answer behind the session
 * ticket segment until we ACK it, and a delayed ACK takes ~40 ms: ACK at
 * once until the first answer is in. (QUICKACK does not stick: set it
 * after every read.) */
static void quickack(dot_conn_t *c)
{
	int one = 1;

	if (c->stats.answered == 0)
		setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

/* One message from the upstream. */
static void handle_answer(dot_conn_t *c, const uint8_t *msg, size_t len)
{
	dot_req_t *req;

	if (len < DNSMSG_HEADER_LEN) {
		c->stats.unmatched++;
		log_debug("upstream %s: dropped a %zu-byte message", c->up->text, len);
		return;
	}
	req = idmap_get(c->ids, dnsmsg_get_id(msg));
	if (!req || !dnsmsg_answer_matches(msg, len, req->question,
					   req->question_len)) {
		c->stats.unmatched++;
		log_debug("upstream %s: dropped an answer with %s (id %u)",
			  c->up->text, req ? "the wrong question" : "an unknown ID",
			  dnsmsg_get_id(msg));
		return;
	}
	idmap_remove(c->ids, req->id);
	req->conn = NULL;
	c->stats.answered++;
	int ka = dnsmsg_answer_keepalive(msg, len);
	if (ka >= 0)   /* in units of 100 ms; keep a margin of a tenth */
		c->keepalive_ms = ka * 90;
	if (c->ev->on_rtt)
		c->ev->on_rtt(c->arg, (ev_now(c->loop) - req->sent_at) * 1000.0);
	req->on_answer(req, msg, len);
	if (c->ev->on_room)
		c->ev->on_room(c->arg, c);
}

/* Every ticket the server sent goes to the owner, each one once. */
static void pass_tickets(dot_conn_t *c)
{
	uint8_t *t;
	size_t tlen;

	while (tls_session_take_ticket(c->tls, &t, &tlen)) {
		if (c->ev->on_ticket)
			c->ev->on_ticket(c->arg, t, tlen);
		else
			free(t);
	}
}

/* A close this soon after the first query of a busy spell, with nothing
 * received since, is the server's idle timer that fired as the query was
 * on its way: the query was lost to the very race the learning avoids. */
#define IDLE_RACE_WINDOW 0.5

/* The server closed: when nothing was in flight or waiting to go, that
 * is its idle timeout, which the owner learns (a query written just as
 * the server closes would be lost). So is a close that crossed the first
 * query after an idle spell: the server was idle since before it. */
static void tell_idle_close(dot_conn_t *c)
{
	const uint8_t *data;
	ev_tstamp now = ev_now(c->loop);

	if (c->state != DOT_READY || !c->ev->on_idle_closed)
		return;
	if (idmap_count(c->ids) == 0 && frame_writer_data(c->wr, &data) == 0)
		c->ev->on_idle_closed(c->arg, c, now - c->last_active);
	else if (c->last_rx < c->busy_since && now - c->busy_since < IDLE_RACE_WINDOW)
		c->ev->on_idle_closed(c->arg, c, now - c->idle_from);
}

/* Read everything TLS has, GnuTLS's own buffer included (level-triggered
 * readiness does not see it). Returns -1 when the connection closed. */
static int read_answers(dot_conn_t *c)
{
	for (;;) {
		size_t avail, got;
		uint8_t *space = frame_reader_space(c->rd, &avail);
		tls_status_t st = tls_session_recv(c->tls, space, avail, &got);
		const uint8_t *msg;
		size_t len;

		if (st == TLS_AGAIN_INPUT || st == TLS_AGAIN_OUTPUT) {
			c->tls_wants_write = st == TLS_AGAIN_OUTPUT;
			break;
		}
		if (st != TLS_OK) {
			c->peer_closed = st == TLS_CLOSED;
			if (c->peer_closed)
				tell_idle_close(c);
			close_conn(c, 0, tls_session_error(c->tls));
			return -1;
		}
		c->last_rx = c->last_active = ev_now(c->loop);
		quickack(c);
		frame_reader_commit(c->rd, got);
		while (frame_reader_next(c->rd, &msg, &len))
			handle_answer(c, msg, len);
	}
	pass_tickets(c);
	quickack(c);
	if (c->state == DOT_DRAINING && idmap_count(c->ids) == 0) {
		close_conn(c, 0, NULL);
		return -1;
	}
	const uint8_t *data;
	if (frame_writer_data(c->wr, &data) > 0)
		schedule_flush(c);  /* a send that waited for input */
	arm_idle(c);
	update_events(c);
	return 0;
}

static int tls_reason(const tls_session_t *tls)
{
	switch (tls_session_failure(tls)) {
	case TLS_FAIL_NAME: return STATS_REASON_NAME;
	case TLS_FAIL_TRUST: return STATS_REASON_TRUST;
	case TLS_FAIL_PIN: return STATS_REASON_PIN;
	case TLS_FAIL_EKU: return STATS_REASON_EKU;
	case TLS_FAIL_EXPIRED: return STATS_REASON_EXPIRED;
	case TLS_FAIL_OTHER: break;
	}
	return STATS_REASON_TLS;
}

static void step_handshake(dot_conn_t *c)
{
	tls_status_t st = tls_session_handshake(c->tls);

	quickack(c);
	if (st == TLS_AGAIN_INPUT || st == TLS_AGAIN_OUTPUT) {
		c->tls_wants_write = st == TLS_AGAIN_OUTPUT;
		update_events(c);
		return;
	}
	if (st != TLS_OK) {
		c->failure = tls_reason(c->tls);
		close_conn(c, 1, tls_session_error(c->tls));
		return;
	}
	c->tls_wants_write = 0;
	double ms = (ev_now(c->loop) - c->started) * 1000.0;
	int resumed = tls_session_resumed(c->tls);
	log_debug("upstream %s: TLS ready in %.1f ms%s", c->up->text, ms,
		  resumed ? " (resumed)" : "");
	change_state(c, DOT_READY);
	if (c->ev->on_ready)
		c->ev->on_ready(c->arg, c, resumed, ms);
	if (c->state == DOT_READY)
		flush_writes(c);
	/* The last handshake read may have brought records too (tickets, an
	 * early answer): the socket will not say so again. */
	if (c->state == DOT_READY && tls_session_pending(c->tls) > 0)
		read_answers(c);
}

static void finish_connect(dot_conn_t *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		c->failure = STATS_REASON_CONNECT;
		close_conn(c, 1, strerror(err));
		return;
	}
	change_state(c, DOT_HANDSHAKE);
	step_handshake(c);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	dot_conn_t *c = w->data;

	(void)loop;
	switch (c->state) {
	case DOT_CONNECTING:
		finish_connect(c);
		break;
	case DOT_HANDSHAKE:
		step_handshake(c);
		break;
	case DOT_READY:
	case DOT_DRAINING:
		if ((revents & EV_WRITE) && flush_writes(c) < 0)
			return;
		if (revents & EV_READ)
			read_answers(c);
		break;
	case DOT_CLOSED:
		break;
	}
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	dot_conn_t *c = w->data;

	(void)loop;
	(void)revents;
	if (c->state == DOT_CONNECTING || c->state == DOT_HANDSHAKE) {
		c->failure = STATS_REASON_TIMEOUT;
		close_conn(c, 1, c->state == DOT_CONNECTING ? "connect timeout"
							    : "TLS handshake timeout");
	} else if (idmap_count(c->ids) == 0)
		close_conn(c, 0, NULL);  /* idle: close before the server does */
}

static int open_socket(dot_conn_t *c, char *err, size_t errlen)
{
	int one = 1;

	c->fd = socket(c->up->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		       SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Without it a query right behind the Finished message waits for
	 * the server's delayed ACK (~40 ms). */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The ClientHello rides on the SYN; resumed sessions save a round
	 * trip. Off by default: middleboxes still drop such SYNs. */
	if (c->opts.tcp_fastopen)
		setsockopt(c->fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one));
	/* Data the server does not acknowledge for this long ends the
	 * connection in the kernel (ETIMEDOUT), instead of ~15 minutes of
	 * retransmissions (tcp_retries2): a half-open connection whose queries
	 * were cancelled rather than timed out is then noticed too. */
	if (c->opts.user_timeout_ms)
		setsockopt(c->fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
			   &c->opts.user_timeout_ms, sizeof(c->opts.user_timeout_ms));
	if (connect(c->fd, (const struct sockaddr *)&c->up->addr,
		    c->up->addrlen) < 0 && errno != EINPROGRESS) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		return -1;
	}
	return 0;
}

dot_conn_t *dot_conn_create(struct ev_loop *loop, const config_upstream_t *u,
			    tls_ctx_t *tls, const dot_conn_opts_t *opts,
			    const uint8_t *ticket, size_t ticket_len,
			    const dot_conn_events_t *ev, void *arg,
			    char *err, size_t errlen)
{
	dot_conn_t *c = xcalloc(1, sizeof(*c));
	tls_peer_t peer = {
		.auth_name = u->name[0] ? u->name : NULL,
		.ip_text = u->ip_text,
		.pins = u->pins,
		.npins = u->npins,
	};

	c->loop = loop;
	c->up = u;
	c->opts = *opts;
	c->ev = ev;
	c->arg = arg;
	c->fd = -1;
	c->keepalive_ms = -1;
	c->failure = -1;
	c->state = DOT_CONNECTING;
	c->started = ev_now(loop);
	if (open_socket(c, err, errlen) < 0)
		goto fail;
	c->tls = tls_session_create(tls, c->fd, &peer, err, errlen);
	if (!c->tls)
		goto fail;
	if (ticket)
		tls_session_set_ticket(c->tls, ticket, ticket_len);
	c->ids = idmap_create(opts->max_inflight);
	c->rd = frame_reader_create();
	c->wr = frame_writer_create();
	ev_io_init(&c->io, on_io, c->fd, EV_WRITE);
	c->io.data = c;
	ev_timer_init(&c->timer, on_timer, opts->connect_timeout_ms / 1000.0, 0.);
	c->timer.data = c;
	ev_timer_start(loop, &c->timer);
	ev_prepare_init(&c->flush, on_flush);
	c->flush.data = c;
	update_events(c);
	return c;
fail:
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	return NULL;
}

static int by_seq(const void *a, const void *b)
{
	const dot_req_t *x = *(dot_req_t *const *)a, *y = *(dot_req_t *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Close and tell: the owner first, then every request still in flight
 * (which may resend elsewhere), oldest first: a server that closes after
 * every K queries then answers the oldest next, and no query is bounced
 * again and again by chance. `c` may be freed by the owner after. */
static void close_conn(dot_conn_t *c, int failed, const char *why)
{
	size_t n = idmap_count(c->ids), i = 0;
	dot_req_t **reqs = n ? xmalloc(n * sizeof(*reqs)) : NULL;
	uint16_t id;
	dot_req_t *req;

	if (why)
		log_msg(failed ? LOG_LVL_WARN : LOG_LVL_DEBUG, "upstream %s: %s%s",
			c->up->text, failed ? "connection failed: " : "connection closed: ",
			why);
	else
		log_debug("upstream %s: idle connection closed", c->up->text);
	change_state(c, DOT_CLOSED);
	if (!why && c->tls)
		tls_session_bye(c->tls);
	while ((req = idmap_pop(c->ids, &id)) != NULL) {
		req->conn = NULL;
		reqs[i++] = req;
	}
	if (i > 1)
		qsort(reqs, i, sizeof(*reqs), by_seq);
	char reason[300];
	snprintf(reason, sizeof(reason), "%s", why ? why : "closed");
	int counted = !(c->peer_closed && c->stats.answered > 0);
	if (c->ev->on_closed)
		c->ev->on_closed(c->arg, c, failed, reason);
	for (size_t k = 0; k < i; k++)
		reqs[k]->on_failed(reqs[k], counted, reason);
	free(reqs);
}

void dot_conn_destroy(dot_conn_t *c)
{
	dot_req_t *req;
	uint16_t id;

	if (!c)
		return;
	if (c->state != DOT_CLOSED) {
		set_events(c, 0);
		ev_timer_stop(c->loop, &c->timer);
		ev_prepare_stop(c->loop, &c->flush);
	}
	while ((req = idmap_pop(c->ids, &id)) != NULL)
		req->conn = NULL;
	tls_session_destroy(c->tls);
	if (c->fd >= 0)
		close(c->fd);
	idmap_destroy(c->ids);
	frame_reader_destroy(c->rd);
	frame_writer_destroy(c->wr);
	free(c);
}

int dot_conn_send(dot_conn_t *c, dot_req_t *req, uint8_t *msg, size_t len)
{
	uint16_t id;

	if (c->state == DOT_DRAINING || c->state == DOT_CLOSED)
		return -EPIPE;
	if (len < DNSMSG_HEADER_LEN || len > FRAME_MAX_MSG)
		return -EMSGSIZE;
	if (idmap_add(c->ids, req, &id) < 0)
		return -ENOSPC;
	dnsmsg_set_id(msg, id);
	frame_writer_put(c->wr, msg, len);
	if (idmap_count(c->ids) == 1) {   /* the first after an idle spell */
		c->busy_since = ev_now(c->loop);
		c->idle_from = c->last_active;
	}
	req->conn = c;
	req->id = id;
	req->sent_at = c->last_active = ev_now(c->loop);
	if (!req->seq)
		req->seq = ++next_seq;   /* a resend keeps its place */
	c->stats.sent++;
	if (req->on_sent)
		req->on_sent(req, c->up, msg, len);
	if (c->state == DOT_READY)
		ev_timer_stop(c->loop, &c->timer);   /* no longer idle */
	schedule_flush(c);
	return 0;
}

void dot_conn_cancel(dot_req_t *req)
{
	dot_conn_t *c = req->conn;

	if (!c)
		return;
	idmap_remove(c->ids, req->id);
	req->conn = NULL;
	if (c->state == DOT_DRAINING && idmap_count(c->ids) == 0) {
		close_conn(c, 0, NULL);
		return;
	}
	if (c->state == DOT_READY)
		arm_idle(c);
	if (c->ev->on_room)
		c->ev->on_room(c->arg, c);
}

void dot_conn_expire(dot_req_t *req)
{
	dot_conn_t *c = req->conn;
	char why[96];

	if (!c)
		return;
	int stalled = c->state != DOT_CLOSED && c->last_rx <= req->sent_at;
	snprintf(why, sizeof(why), "no answer for %.0f ms",
		 (ev_now(c->loop) - req->sent_at) * 1000.0);
	dot_conn_cancel(req);
	if (stalled && req->conn == NULL && dot_conn_state(c) != DOT_CLOSED) {
		if (c->state == DOT_CONNECTING || c->state == DOT_HANDSHAKE)
			c->failure = STATS_REASON_TIMEOUT;
		close_conn(c, 1, why);
	}
}

void dot_conn_set_idle_timeout(dot_conn_t *c, unsigned ms)
{
	c->opts.idle_timeout_ms = ms;
	if (c->state == DOT_READY)
		arm_idle(c);
}

void dot_conn_drain(dot_conn_t *c)
{
	if (c->state == DOT_CLOSED || c->state == DOT_DRAINING)
		return;
	if (idmap_count(c->ids) == 0) {
		close_conn(c, 0, NULL);
		return;
	}
	change_state(c, DOT_DRAINING);
}

dot_conn_state_t dot_conn_state(const dot_conn_t *c)
{
	return c->state;
}

ev_tstamp dot_conn_started(const dot_conn_t *c)
{
	return c->started;
}

unsigned dot_conn_inflight(const dot_conn_t *c)
{
	return (unsigned)idmap_count(c->ids);
}

int dot_conn_has_room(const dot_conn_t *c)
{
	return c->state != DOT_DRAINING && c->state != DOT_CLOSED &&
	       idmap_count(c->ids) < idmap_capacity(c->ids);
}

const dot_conn_stats_t *dot_conn_stats(const dot_conn_t *c)
{
	return &c->stats;
}

int dot_conn_failure(const dot_conn_t *c)
{
	return c->failure;
}

time_t dot_conn_peer_expiry(const dot_conn_t *c)
{
	return c->tls ? tls_session_peer_expiry(c->tls) : 0;
}
