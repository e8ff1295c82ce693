/* dot_peer: an in-process DNS-over-TLS server on the test's own libev loop,
 * for the unit suites of dot_conn, upstream and query. It listens on
 * 127.0.0.1 (a free port), speaks TLS 1.3/1.2 with ALPN "dot" and session
 * tickets (one ticket key for all its connections, so a ticket resumes),
 * reads length-framed queries and keeps each one it receives. What it does
 * with a query is the test's choice (dot_peer_set_mode), and held queries
 * are answered, in any order and in any way, when the test says so.
 *
 * Also the loop helpers the suites share: run the loop until a condition
 * holds, bounded by a timeout, never sleeping. */
#ifndef DOT_PEER_H
#define DOT_PEER_H

#include <check.h>
#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "dotstub/config.h"
#include "tls_fixture.h"

typedef struct dot_peer dot_peer_t;

typedef enum {
	PEER_ANSWER,          /* answer each query at once */
	PEER_HOLD,            /* keep queries until dot_peer_answer() */
	PEER_CLOSE_ON_QUERY,  /* close the connection (close_notify) on a query */
	PEER_REJECT,          /* close every new connection before the handshake */
	PEER_SILENT,          /* accept new connections, never speak (a TLS
			       * handshake that never completes); queries on
			       * open ones go unanswered */
} dot_peer_mode_t;

/* How dot_peer_answer() answers. */
typedef enum {
	ANSWER_OK,              /* same ID, question copied, one A record */
	ANSWER_WRONG_QUESTION,  /* the name's first letter changed */
	ANSWER_WRONG_ID,        /* ID + 1 */
	ANSWER_PADDED,          /* OK, with an OPT padded to 128-byte blocks */
} dot_peer_answer_t;

/* Start listening; crt and key are copied. */
dot_peer_t *dot_peer_start(struct ev_loop *loop, gnutls_x509_crt_t crt,
			   gnutls_x509_privkey_t key);
void dot_peer_stop(dot_peer_t *p);
void dot_peer_set_mode(dot_peer_t *p, dot_peer_mode_t mode);

/* "127.0.0.1@PORT#" FIXTURE_AUTH_NAME, parsed, anchored at ca_file
 * (which must outlive u). */
void dot_peer_upstream(const dot_peer_t *p, const char *ca_file,
		       config_upstream_t *u);

typedef struct {
	unsigned long connections;   /* accepted */
	unsigned long handshakes;    /* full ones */
	unsigned long resumed;
	unsigned long queries;       /* received */
	unsigned long answers;       /* sent */
	unsigned long closed;        /* connections that ended, either side */
} dot_peer_counts_t;
const dot_peer_counts_t *dot_peer_counts(const dot_peer_t *p);

/* Queries held (PEER_HOLD) and not answered yet, oldest first; a query of
 * a connection that closed is gone. */
size_t dot_peer_held(const dot_peer_t *p);
/* The i-th query received since the start (kept after it is answered),
 * as it came: *len set. */
const uint8_t *dot_peer_query(const dot_peer_t *p, size_t i, size_t *len);
/* Answer the i-th held query (0 = oldest) and forget it; a wrong answer
 * (ANSWER_WRONG_*) leaves it held, to be answered again. */
void dot_peer_answer(dot_peer_t *p, size_t i, dot_peer_answer_t how);
/* Close every connection: close_notify, then the socket. */
void dot_peer_close_all(dot_peer_t *p);

/* ---- the setting most cases start from -------------------------------- */

#define PEERS_MAX 2

/* A fresh loop, the test PKI, and n servers (A, B) as the upstreams of
 * cfg, in that order, with settings for tests: ordered policy (A while
 * it is healthy), one connection per upstream, 16 queries in flight, 16
 * waiting, 5 s timeouts, no idle close, 128-byte padding, no cache. */
typedef struct {
	struct ev_loop *loop;
	gnutls_x509_crt_t crt;
	gnutls_x509_privkey_t key;
	char ca_file[64];
	dot_peer_t *peer[PEERS_MAX];
	config_upstream_t ups[PEERS_MAX];
	config_t cfg;
} peer_fixture_t;

void peer_fixture_start(peer_fixture_t *pf, size_t n);
void peer_fixture_stop(peer_fixture_t *pf);

/* ---- running the loop ------------------------------------------------- */

/* A bound on a wait: ev_run(EVRUN_ONCE) wakes up by then at the latest. */
typedef struct {
	ev_timer timer;
	int expired;
} loop_bound_t;

void loop_bound_start(struct ev_loop *loop, loop_bound_t *b, double secs);
void loop_bound_stop(struct ev_loop *loop, loop_bound_t *b);

/* Run the loop until cond holds; fail the test when it does not within
 * secs (the bound is generous: only a broken module ever reaches it). */
#define RUN_UNTIL(loop, cond, secs)                                        \
	do {                                                               \
		loop_bound_t bound_;                                       \
		loop_bound_start((loop), &bound_, (secs));                 \
		while (!(cond) && !bound_.expired)                         \
			ev_run((loop), EVRUN_ONCE);                       \
		loop_bound_stop((loop), &bound_);                          \
		ck_assert_msg((cond), "not within %.1f s: %s",             \
			      (double)(secs), #cond);                      \
	} while (0)

/* Run the loop for secs of loop time (to see that something does NOT
 * happen within a span the module promises, e.g. before a timeout). */
void run_for(struct ev_loop *loop, double secs);

#endif
