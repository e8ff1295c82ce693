/* dot_conn: one DNS-over-TLS client connection. A state machine
 *
 *   CONNECTING -> HANDSHAKE -> READY -> (DRAINING) -> CLOSED
 *
 * with one place that changes state and sets read/write interest. Many
 * queries are in flight at once (pipelining), each under an ID unique on
 * the connection; answers may come in any order and are matched by ID and
 * question. Queries submitted in one loop pass leave in one TLS record. */
#ifndef DOTSTUB_DOT_CONN_H
#define DOTSTUB_DOT_CONN_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "dotstub/config.h"
#include "dotstub/tls.h"

typedef struct dot_conn dot_conn_t;

typedef enum {
	DOT_CONNECTING,
	DOT_HANDSHAKE,
	DOT_READY,
	DOT_DRAINING,  /* takes no new query; closes when the last answers */
	DOT_CLOSED,
} dot_conn_state_t;

/* One query on the wire, embedded by its owner (through upstream_req_t).
 * The owner fills question and the callbacks; conn, id, sent_at and seq
 * belong to dot_conn (conn is NULL while no connection carries it).
 * Exactly one callback ends a submitted request, unless the owner cancels
 * it first. */
typedef struct dot_req {
	const uint8_t *question;   /* wire form, as dnsmsg_query_t has it */
	size_t question_len;
	void (*on_answer)(struct dot_req *req, const uint8_t *msg, size_t len);
	/* The connection went away before the answer: resend elsewhere.
	 * `counted` is 0 when the server closed cleanly after answering on
	 * this connection (it is done with it, not failing): such resends
	 * need not count against the query's attempts. */
	void (*on_failed)(struct dot_req *req, int counted, const char *why);
	/* Optional (NULL: none): msg, as queued for upstream u under its
	 * wire ID, at sent_at (for the query log). */
	void (*on_sent)(struct dot_req *req, const config_upstream_t *u,
			const uint8_t *msg, size_t len);
	dot_conn_t *conn;
	uint16_t id;
	ev_tstamp sent_at;         /* when it was queued on conn */
	uint64_t seq;              /* queue order, across connections */
} dot_req_t;

/* What the owner (the upstream pool) hears about the connection. */
typedef struct {
	/* Handshake complete; `resumed` when a ticket saved a full one. */
	void (*on_ready)(void *arg, dot_conn_t *c, int resumed,
			 double handshake_ms);
	/* A session ticket for one later connection; `data` (malloc'd) is
	 * the callee's. Called once per ticket the server sends. */
	void (*on_ticket)(void *arg, uint8_t *data, size_t len);
	/* An answer came back after `ms` (for the smoothed RTT). */
	void (*on_rtt)(void *arg, double ms);
	/* A query slot freed up: queries waiting for room may go. */
	void (*on_room)(void *arg, dot_conn_t *c);
	/* The connection is closed; `failed` when it never became ready.
	 * Called before the in-flight requests are failed, so that a resend
	 * sees the new health. The owner destroys `c` (later, not here). */
	void (*on_closed)(void *arg, dot_conn_t *c, int failed, const char *why);
	/* The server closed the connection (FIN or close_notify) while it
	 * was idle: nothing in flight, nothing to send, `secs` after the
	 * last query or answer; or within moments of the first query after
	 * an idle spell, nothing received since (the close crossed it),
	 * `secs` after that spell began. Called just before on_closed; may
	 * be NULL. */
	void (*on_idle_closed)(void *arg, dot_conn_t *c, double secs);
} dot_conn_events_t;

typedef struct {
	unsigned connect_timeout_ms;  /* TCP connect + TLS handshake */
	unsigned idle_timeout_ms;     /* close when nothing is in flight */
	unsigned max_inflight;
	int tcp_fastopen;             /* TCP_FASTOPEN_CONNECT */
	unsigned user_timeout_ms;     /* TCP_USER_TIMEOUT; 0: the kernel's */
} dot_conn_opts_t;

/* Start connecting to u (which, like tls and ev, must outlive the
 * connection). `ticket` (may be NULL; copied, so the caller may free it
 * at once) resumes an earlier session. Returns
 * NULL with err filled when no socket could be made. */
dot_conn_t *dot_conn_create(struct ev_loop *loop, const config_upstream_t *u,
			    tls_ctx_t *tls, const dot_conn_opts_t *opts,
			    const uint8_t *ticket, size_t ticket_len,
			    const dot_conn_events_t *ev, void *arg,
			    char *err, size_t errlen);

/* Free a closed connection (closing it first, silently, if it is not). */
void dot_conn_destroy(dot_conn_t *c);

/* Queue msg (its ID is overwritten with a fresh one) for req. Returns 0,
 * -ENOSPC when max_inflight queries are in flight, -EPIPE when the
 * connection is draining or closed, -EMSGSIZE when msg is too long. */
int dot_conn_send(dot_conn_t *c, dot_req_t *req, uint8_t *msg, size_t len);

/* Forget req (its deadline passed); no callback follows. A late answer
 * for its ID is dropped. */
void dot_conn_cancel(dot_req_t *req);

/* req's attempt timed out: forget it like dot_conn_cancel(), and when the
 * connection has received nothing at all since req went out, take the
 * connection for dead and close it (a failure: its other queries are
 * resent, the upstream backs off). */
void dot_conn_expire(dot_req_t *req);

/* Change when an idle connection closes (0: never); an idle one re-arms
 * from now. */
void dot_conn_set_idle_timeout(dot_conn_t *c, unsigned ms);

/* Stop taking queries; close once the in-flight ones are answered. */
void dot_conn_drain(dot_conn_t *c);

dot_conn_state_t dot_conn_state(const dot_conn_t *c);
/* When the connection was created (loop time). */
ev_tstamp dot_conn_started(const dot_conn_t *c);
/* Queries in flight (sent or queued, not yet answered). */
unsigned dot_conn_inflight(const dot_conn_t *c);
/* 1 when dot_conn_send would take another query. */
int dot_conn_has_room(const dot_conn_t *c);

/* Counters of this connection, for stats and tests. */
typedef struct {
	unsigned long sent;
	unsigned long answered;
	unsigned long unmatched;   /* unknown ID, or question mismatch */
} dot_conn_stats_t;
const dot_conn_stats_t *dot_conn_stats(const dot_conn_t *c);
/* Why the connection failed before it was ready (a stats_reason_t), or -1
 * when it did not (it is open, or failed later). */
int dot_conn_failure(const dot_conn_t *c);
/* The verified leaf certificate's notAfter (0: resumed, or not verified). */
time_t dot_conn_peer_expiry(const dot_conn_t *c);

#endif
