/* dot_conn: one DoT connection driven by the real libev loop against a real
 * TLS server over loopback (dot_peer, in process, on the same loop), which
 * holds, answers, misanswers or closes as each case needs. Nothing sleeps:
 * every wait runs the loop until a condition holds, within a generous
 * bound that only a broken module reaches. */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/dnsmsg.h"
#include "dotstub/dot_conn.h"
#include "dotstub/stats.h"

#include "check_main.h"
#include "dot_peer.h"
#include "tls_fixture.h"
#include "treq.h"

#define WAIT 10.0   /* seconds; a loaded CI machine still does it in < 1 */

static struct {
	peer_fixture_t P;          /* one server */
	tls_ctx_t *tls;
	dot_conn_opts_t opts;
	dot_conn_t *conns[2];
	/* What the owner heard. */
	int ready, resumed, closed, closed_failed, rooms;
	unsigned closed_at;        /* in treq_events */
	struct bytes tickets[TLS_TICKETS_MAX];
	size_t ntickets;
} F;

/* ---- the owner's events ------------------------------------------------ */

static void ev_ready(void *arg, dot_conn_t *c, int resumed, double ms)
{
	(void)arg;
	(void)c;
	ck_assert(ms >= 0);
	F.ready++;
	F.resumed += resumed;
}

static void ev_ticket(void *arg, uint8_t *data, size_t len)
{
	(void)arg;
	if (F.ntickets < TLS_TICKETS_MAX)
		bytes_add(&F.tickets[F.ntickets++], data, len);
	free(data);
}

static void ev_room(void *arg, dot_conn_t *c)
{
	(void)arg;
	(void)c;
	F.rooms++;
}

static void ev_closed(void *arg, dot_conn_t *c, int failed, const char *why)
{
	(void)arg;
	(void)why;
	ck_assert_int_eq(dot_conn_state(c), DOT_CLOSED);
	F.closed++;
	F.closed_failed += failed;
	F.closed_at = ++treq_events;
}

static const dot_conn_events_t EVENTS = {
	.on_ready = ev_ready,
	.on_ticket = ev_ticket,
	.on_room = ev_room,
	.on_closed = ev_closed,
};

/* ---- fixture ----------------------------------------------------------- */

static void setup(void)
{
	memset(&F, 0, sizeof(F));
	treq_events = 0;
	peer_fixture_start(&F.P, 1);
	F.tls = fixture_client_ctx(F.P.crt);
	F.opts.connect_timeout_ms = F.P.cfg.connect_timeout_ms;
	F.opts.idle_timeout_ms = 0;      /* never, unless a case sets it */
	F.opts.max_inflight = F.P.cfg.max_inflight;
}

static void teardown(void)
{
	for (size_t i = 0; i < 2; i++)
		dot_conn_destroy(F.conns[i]);
	tls_ctx_destroy(F.tls);
	for (size_t i = 0; i < F.ntickets; i++)
		bytes_free(&F.tickets[i]);
	peer_fixture_stop(&F.P);
}

/* Connection i, with a ticket or not, run until ready. */
static dot_conn_t *open_ready(size_t i, const struct bytes *ticket)
{
	char err[256] = "";
	int ready = F.ready;

	F.conns[i] = dot_conn_create(F.P.loop, &F.P.ups[0], F.tls, &F.opts,
				     ticket ? ticket->data : NULL,
				     ticket ? ticket->len : 0,
				     &EVENTS, NULL, err, sizeof(err));
	ck_assert_msg(F.conns[i] != NULL, "dot_conn_create: %s", err);
	RUN_UNTIL(F.P.loop, F.ready > ready || F.closed, WAIT);
	ck_assert_int_eq(F.closed, 0);
	ck_assert_int_eq(dot_conn_state(F.conns[i]), DOT_READY);
	return F.conns[i];
}

static void send_ok(dot_conn_t *c, struct treq *t, const char *name)
{
	treq_init(t, name);
	ck_assert_int_eq(dot_conn_send(c, &t->u.req, t->msg, t->len), 0);
}

static const char *const NAMES[] = {
	"a.example", "b.example", "c.example", "d.example",
	"e.example", "f.example", "g.example", "h.example",
};
#define NNAMES (sizeof(NAMES) / sizeof(NAMES[0]))

/* A ready connection with n queries (NAMES) in flight, held by the
 * server. */
static dot_conn_t *n_held(struct treq *t, size_t n)
{
	dot_conn_t *c = open_ready(0, NULL);

	dot_peer_set_mode(F.P.peer[0], PEER_HOLD);
	for (size_t i = 0; i < n; i++)
		send_ok(c, &t[i], NAMES[i]);
	RUN_UNTIL(F.P.loop, dot_peer_held(F.P.peer[0]) == n, WAIT);
	return c;
}

/* The server answers its i-th held query, which is t's: run until t has
 * the answer. */
static void answer_held(size_t i, struct treq *t)
{
	dot_peer_answer(F.P.peer[0], i, ANSWER_OK);
	RUN_UNTIL(F.P.loop, t->answered, WAIT);
}

/* The ID the peer saw on its i-th query. */
static uint16_t peer_id(size_t i)
{
	size_t len;
	const uint8_t *q = dot_peer_query(F.P.peer[0], i, &len);

	return dnsmsg_get_id(q);
}

/* ---- cases ------------------------------------------------------------- */

START_TEST(test_handshake_to_ready)
{
	char err[256] = "";

	F.conns[0] = dot_conn_create(F.P.loop, &F.P.ups[0], F.tls, &F.opts, NULL, 0,
				     &EVENTS, NULL, err, sizeof(err));
	ck_assert_msg(F.conns[0] != NULL, "dot_conn_create: %s", err);
	ck_assert_int_lt(dot_conn_state(F.conns[0]), DOT_READY);
	RUN_UNTIL(F.P.loop, F.ready == 1 || F.closed, WAIT);
	ck_assert_int_eq(dot_conn_state(F.conns[0]), DOT_READY);
	ck_assert_int_eq(F.resumed, 0);
	ck_assert(dot_conn_has_room(F.conns[0]));
	/* In TLS 1.3 the server is done one flight after the client. */
	RUN_UNTIL(F.P.loop, dot_peer_counts(F.P.peer[0])->handshakes == 1, WAIT);
}
END_TEST

/* Three queries in flight, answered last, first, second: each request gets
 * the answer to its own question, in the order the answers came. */
START_TEST(test_pipelined_out_of_order)
{
	struct treq t[3];
	dot_conn_t *c = n_held(t, 3);

	ck_assert(peer_id(0) != peer_id(1) && peer_id(1) != peer_id(2) &&
		  peer_id(0) != peer_id(2));
	dot_peer_answer(F.P.peer[0], 2, ANSWER_OK);   /* c */
	dot_peer_answer(F.P.peer[0], 0, ANSWER_OK);   /* a */
	dot_peer_answer(F.P.peer[0], 0, ANSWER_OK);   /* b */
	RUN_UNTIL(F.P.loop, t[0].answered && t[1].answered && t[2].answered, WAIT);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(dnsmsg_answer_matches(t[i].answer, t[i].answer_len,
						    t[i].q.question, t[i].q.question_len),
			      "%s got another question's answer", NAMES[i]);
		ck_assert_uint_eq(dnsmsg_get_id(t[i].answer), peer_id((size_t)i));
		ck_assert_ptr_null(t[i].u.req.conn);
	}
	ck_assert_uint_eq(t[2].done_at, 1);
	ck_assert_uint_eq(t[0].done_at, 2);
	ck_assert_uint_eq(t[1].done_at, 3);
	ck_assert_uint_eq(dot_conn_stats(c)->sent, 3);
	ck_assert_uint_eq(dot_conn_stats(c)->answered, 3);
	ck_assert_uint_eq(dot_conn_stats(c)->unmatched, 0);
}
END_TEST

/* An answer with our ID but another question, or with an ID we did not
 * give, is dropped and counted; the request waits for its real answer. */
START_TEST(test_wrong_answers_dropped)
{
	dot_conn_t *c = open_ready(0, NULL);
	struct treq t;

	dot_peer_set_mode(F.P.peer[0], PEER_HOLD);
	send_ok(c, &t, "www.example");
	RUN_UNTIL(F.P.loop, dot_peer_held(F.P.peer[0]) == 1, WAIT);
	dot_peer_answer(F.P.peer[0], 0, ANSWER_WRONG_QUESTION);
	RUN_UNTIL(F.P.loop, dot_conn_stats(c)->unmatched == 1, WAIT);
	ck_assert(!t.answered && !t.failed);
	dot_peer_answer(F.P.peer[0], 0, ANSWER_WRONG_ID);
	RUN_UNTIL(F.P.loop, dot_conn_stats(c)->unmatched == 2, WAIT);
	ck_assert(!t.answered && !t.failed);
	ck_assert_ptr_eq(t.u.req.conn, c);
	answer_held(0, &t);
	ck_assert_uint_eq(dot_conn_stats(c)->answered, 1);
	ck_assert_uint_eq(dot_conn_stats(c)->unmatched, 2);
	ck_assert_int_eq(dot_conn_state(c), DOT_READY);
}
END_TEST

/* max_inflight queries in flight: the next one is refused with -ENOSPC
 * until an answer frees a slot (and the owner hears of the room). */
START_TEST(test_max_inflight)
{
	dot_conn_t *c;
	struct treq t[3];

	F.opts.max_inflight = 2;
	c = open_ready(0, NULL);
	dot_peer_set_mode(F.P.peer[0], PEER_HOLD);
	send_ok(c, &t[0], "a.example");
	send_ok(c, &t[1], "b.example");
	ck_assert(!dot_conn_has_room(c));
	treq_init(&t[2], "c.example");
	ck_assert_int_eq(dot_conn_send(c, &t[2].u.req, t[2].msg, t[2].len), -ENOSPC);
	ck_assert_ptr_null(t[2].u.req.conn);
	RUN_UNTIL(F.P.loop, dot_peer_held(F.P.peer[0]) == 2, WAIT);
	answer_held(0, &t[0]);
	ck_assert_int_ge(F.rooms, 1);
	ck_assert(dot_conn_has_room(c));
	ck_assert_int_eq(dot_conn_send(c, &t[2].u.req, t[2].msg, t[2].len), 0);
	ck_assert(!dot_conn_has_room(c));
}
END_TEST

/* The server closes with queries in flight and no answer given:
 * the owner hears first, then each request fails once, oldest first, and
 * counts as a failed attempt. */
START_TEST(test_peer_close_fails_inflight)
{
	/* Eight: their IDs are random, so the ID map gives them back in
	 * send order only by rare chance, and a lost sort shows. */
	struct treq t[NNAMES];
	dot_conn_t *c = n_held(t, NNAMES);

	dot_peer_close_all(F.P.peer[0]);
	RUN_UNTIL(F.P.loop, t[NNAMES - 1].failed, WAIT);
	ck_assert_int_eq(F.closed, 1);
	ck_assert_int_eq(F.closed_failed, 0);   /* it was ready: not a failure */
	ck_assert_uint_eq(F.closed_at, 1);
	for (size_t i = 0; i < NNAMES; i++) {
		ck_assert(t[i].failed && !t[i].answered);
		ck_assert_int_eq(t[i].counted, 1);
		ck_assert_uint_eq(t[i].done_at, i + 2);
		ck_assert_ptr_null(t[i].u.req.conn);
	}
	ck_assert_int_eq(dot_conn_state(c), DOT_CLOSED);
	treq_init(&t[0], "a.example");
	ck_assert_int_eq(dot_conn_send(c, &t[0].u.req, t[0].msg, t[0].len), -EPIPE);
}
END_TEST

/* A server that answered on this connection and then closes cleanly is
 * done with it, not failing: the requests left are handed back uncounted. */
START_TEST(test_clean_close_after_answers_is_free)
{
	struct treq t[2];

	n_held(t, 2);
	answer_held(0, &t[0]);
	dot_peer_close_all(F.P.peer[0]);
	RUN_UNTIL(F.P.loop, t[1].failed, WAIT);
	ck_assert_int_eq(t[1].counted, 0);
}
END_TEST

/* Nothing in flight for idle_timeout_ms: the connection closes (not a
 * failure) and the server sees it go; a query in flight holds it open. */
START_TEST(test_idle_close)
{
	dot_conn_t *c;
	struct treq t;
	ev_tstamp answered_at;

	F.opts.idle_timeout_ms = 200;
	c = open_ready(0, NULL);
	dot_peer_set_mode(F.P.peer[0], PEER_HOLD);
	send_ok(c, &t, "a.example");
	RUN_UNTIL(F.P.loop, dot_peer_held(F.P.peer[0]) == 1, WAIT);
	run_for(F.P.loop, 0.5);            /* > idle timeout, query in flight */
	ck_assert_int_eq(dot_conn_state(c), DOT_READY);
	ck_assert_int_eq(F.closed, 0);
	answer_held(0, &t);
	answered_at = ev_now(F.P.loop);
	RUN_UNTIL(F.P.loop, F.closed == 1, WAIT);
	ck_assert_msg(ev_now(F.P.loop) - answered_at >= 0.19,
		      "closed %.3f s after the last answer, idle timeout 0.2 s",
		      ev_now(F.P.loop) - answered_at);
	ck_assert_int_eq(F.closed_failed, 0);
	ck_assert_int_eq(dot_conn_state(c), DOT_CLOSED);
	RUN_UNTIL(F.P.loop, dot_peer_counts(F.P.peer[0])->closed == 1, WAIT);
}
END_TEST

/* A request's attempt expires on a server that has sent nothing since it
 * went out: the connection is taken for dead (a failure); the expired
 * request hears nothing, the other one is handed back, counted. */
START_TEST(test_expire_silent_peer_closes)
{
	struct treq t[2];
	dot_conn_t *c = n_held(t, 2);

	dot_conn_expire(&t[0].u.req);
	ck_assert_int_eq(dot_conn_state(c), DOT_CLOSED);
	ck_assert_int_eq(F.closed, 1);
	ck_assert_int_eq(F.closed_failed, 1);
	ck_assert(!t[0].answered && !t[0].failed);
	ck_assert(t[1].failed && t[1].counted);
	/* The owner frees it; the socket goes with it. */
	dot_conn_destroy(c);
	F.conns[0] = NULL;
	RUN_UNTIL(F.P.loop, dot_peer_counts(F.P.peer[0])->closed == 1, WAIT);
}
END_TEST

/* The same on a server that answered something after the request went
 * out: it is alive, only that query is lost; the connection stays. */
START_TEST(test_expire_live_peer_keeps_conn)
{
	struct treq t[2];
	dot_conn_t *c = n_held(t, 2);

	answer_held(1, &t[1]);
	dot_conn_expire(&t[0].u.req);
	ck_assert_int_eq(dot_conn_state(c), DOT_READY);
	ck_assert_int_eq(F.closed, 0);
	ck_assert(!t[0].answered && !t[0].failed);
	ck_assert_ptr_null(t[0].u.req.conn);
	/* Its late answer is dropped as unknown. */
	dot_peer_answer(F.P.peer[0], 0, ANSWER_OK);
	RUN_UNTIL(F.P.loop, dot_conn_stats(c)->unmatched == 1, WAIT);
	ck_assert(!t[0].answered && !t[0].failed);
}
END_TEST

/* Draining takes no new query, answers the ones in flight, and closes
 * after the last answer, cleanly. */
START_TEST(test_drain_closes_after_last_answer)
{
	struct treq t[3];
	dot_conn_t *c = n_held(t, 2);
	dot_conn_drain(c);
	ck_assert_int_eq(dot_conn_state(c), DOT_DRAINING);
	ck_assert(!dot_conn_has_room(c));
	treq_init(&t[2], "c.example");
	ck_assert_int_eq(dot_conn_send(c, &t[2].u.req, t[2].msg, t[2].len), -EPIPE);
	answer_held(1, &t[1]);
	ck_assert_int_eq(dot_conn_state(c), DOT_DRAINING);
	ck_assert_int_eq(F.closed, 0);
	answer_held(0, &t[0]);
	RUN_UNTIL(F.P.loop, F.closed == 1, WAIT);
	ck_assert_int_eq(F.closed_failed, 0);
	ck_assert(!t[0].failed && !t[1].failed);
	RUN_UNTIL(F.P.loop, dot_peer_counts(F.P.peer[0])->closed == 1, WAIT);
}
END_TEST

/* The server's session ticket reaches the owner; a second connection
 * offering it resumes (no certificate exchange) and works. */
START_TEST(test_ticket_resumes)
{
	dot_conn_t *c;
	struct treq t;

	open_ready(0, NULL);
	RUN_UNTIL(F.P.loop, F.ntickets >= 1, WAIT);
	ck_assert_int_eq(F.resumed, 0);
	c = open_ready(1, &F.tickets[0]);
	ck_assert_int_eq(F.resumed, 1);
	RUN_UNTIL(F.P.loop, dot_peer_counts(F.P.peer[0])->resumed == 1, WAIT);
	ck_assert_uint_eq(dot_peer_counts(F.P.peer[0])->handshakes, 1);
	send_ok(c, &t, "a.example");
	RUN_UNTIL(F.P.loop, t.answered, WAIT);
}
END_TEST

/* What the metrics count: the verified leaf's notAfter once ready, and
 * the reason of a failure before ready. */
START_TEST(test_ready_reports_expiry)
{
	dot_conn_t *c = open_ready(0, NULL);

	ck_assert_int_eq(dot_conn_failure(c), -1);
	ck_assert_int_eq(dot_conn_peer_expiry(c),
			 gnutls_x509_crt_get_expiration_time(F.P.crt));
}
END_TEST

/* Create, run until closed; returns the failure reason. */
static int failure_of(const config_upstream_t *u, tls_ctx_t *tls)
{
	char err[256] = "";

	F.conns[0] = dot_conn_create(F.P.loop, u, tls, &F.opts, NULL, 0,
				     &EVENTS, NULL, err, sizeof(err));
	ck_assert_msg(F.conns[0] != NULL, "dot_conn_create: %s", err);
	RUN_UNTIL(F.P.loop, F.closed || F.ready, WAIT);
	ck_assert_int_eq(F.ready, 0);
	ck_assert_int_eq(F.closed_failed, 1);
	ck_assert_int_eq(dot_conn_peer_expiry(F.conns[0]), 0);
	return dot_conn_failure(F.conns[0]);
}

START_TEST(test_failure_reason_name)
{
	config_upstream_t u = F.P.ups[0];

	snprintf(u.name, sizeof(u.name), "wrong.example");
	ck_assert_int_eq(failure_of(&u, F.tls), STATS_REASON_NAME);
}
END_TEST

START_TEST(test_failure_reason_pin)
{
	config_upstream_t u = F.P.ups[0];
	tls_pin_t pin;

	memset(&pin, 0x5a, sizeof(pin));
	u.pins = &pin;
	u.npins = 1;
	ck_assert_int_eq(failure_of(&u, F.tls), STATS_REASON_PIN);
}
END_TEST

START_TEST(test_failure_reason_trust)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t other;
	tls_ctx_t *tls;

	fixture_make_cert(&key, &other);
	tls = fixture_client_ctx(other);   /* anchors the server's is not */
	ck_assert_int_eq(failure_of(&F.P.ups[0], tls), STATS_REASON_TRUST);
	dot_conn_destroy(F.conns[0]);
	F.conns[0] = NULL;
	tls_ctx_destroy(tls);
	gnutls_x509_crt_deinit(other);
	gnutls_x509_privkey_deinit(key);
}
END_TEST

static Suite *dot_conn_suite(void)
{
	Suite *s = suite_create("dot_conn");
	TCase *tc = tcase_create("loopback");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_handshake_to_ready);
	tcase_add_test(tc, test_pipelined_out_of_order);
	tcase_add_test(tc, test_wrong_answers_dropped);
	tcase_add_test(tc, test_ready_reports_expiry);
	tcase_add_test(tc, test_failure_reason_name);
	tcase_add_test(tc, test_failure_reason_pin);
	tcase_add_test(tc, test_failure_reason_trust);
	tcase_add_test(tc, test_max_inflight);
	tcase_add_test(tc, test_peer_close_fails_inflight);
	tcase_add_test(tc, test_clean_close_after_answers_is_free);
	tcase_add_test(tc, test_idle_close);
	tcase_add_test(tc, test_expire_silent_peer_closes);
	tcase_add_test(tc, test_expire_live_peer_keeps_conn);
	tcase_add_test(tc, test_drain_closes_after_last_answer);
	tcase_add_test(tc, test_ticket_resumes);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dot_conn_suite)
