/* query: one query's life from a client's message to the reply, through
 * the real cache, upstream pool and connections, on a real libev loop,
 * against two in-process DoT servers (dot_peer) over loopback, A first in
 * order. The client is a callback that keeps each reply. Nothing sleeps:
 * waits run the loop until a condition holds, within a generous bound. */
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include "dotstub/dnsmsg.h"
#include "dotstub/query.h"
#include "dotstub/sysclock.h"
#include "dotstub/zones.h"

#include "check_main.h"
#include "dot_peer.h"

#define WAIT 10.0
#define CLIENT_ID 0x1234

static struct {
	peer_fixture_t P;
	upstream_set_t *set;
	query_env_t *env;
	struct sockaddr_storage client;
	/* The client's replies. */
	unsigned nreplies;
	uint8_t reply[DNSMSG_MAX];
	size_t reply_len;
} F;

#define A 0
#define B 1

static void on_reply(void *owner, const struct sockaddr_storage *addr,
		     socklen_t addrlen, const uint8_t *msg, size_t len)
{
	(void)owner;
	ck_assert_int_eq(addrlen, sizeof(struct sockaddr_in));
	ck_assert_int_eq(memcmp(addr, &F.client, addrlen), 0);
	memcpy(F.reply, msg, len);
	F.reply_len = len;
	F.nreplies++;
}

static const query_client_t CLIENT = { .reply = on_reply, .udp = 1 };

static void setup(void)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&F.client;

	memset(&F, 0, sizeof(F));
	peer_fixture_start(&F.P, 2);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(5353);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static void teardown(void)
{
	query_env_destroy(F.env);
	upstream_set_destroy(F.set);
	peer_fixture_stop(&F.P);
}

/* The environment over the fixture's configuration as it is now. */
static void start(void)
{
	char err[256] = "";

	F.set = upstream_set_create(F.P.loop, &F.P.cfg, err, sizeof(err));
	ck_assert_msg(F.set != NULL, "upstream_set_create: %s", err);
	F.env = query_env_create(F.P.loop, &F.P.cfg, F.set);
}

/* A client's query for name, type A, with EDNS (a bare OPT). */
static size_t client_query(const char *name, uint16_t id, uint8_t *msg, size_t cap)
{
	size_t len = dnsmsg_build_probe(name, 1, id, msg, cap);

	ck_assert_uint_gt(len, 0);
	return len;
}

static void submit(const uint8_t *msg, size_t len)
{
	query_submit(F.env, msg, len, &CLIENT, &F.client, sizeof(struct sockaddr_in));
}

/* Submit a query for name and run until the client has a reply. */
static void ask(const char *name, uint16_t id)
{
	uint8_t msg[512];
	size_t len = client_query(name, id, msg, sizeof(msg));
	unsigned n = F.nreplies;

	submit(msg, len);
	RUN_UNTIL(F.P.loop, F.nreplies > n, WAIT);
}

/* The last reply: for the client's ID and its question exactly as it
 * asked (letter case too), with rcode. */
static void assert_reply(const char *name, uint16_t id, int rcode)
{
	uint8_t msg[512];
	dnsmsg_query_t q;
	size_t len = client_query(name, id, msg, sizeof(msg));

	ck_assert_int_eq(dnsmsg_parse_query(msg, len, &q), DNSMSG_OK);
	ck_assert_uint_ge(F.reply_len, DNSMSG_HEADER_LEN);
	ck_assert_uint_eq(dnsmsg_get_id(F.reply), id);
	ck_assert_int_eq(dnsmsg_rcode(F.reply), rcode);
	ck_assert_msg(dnsmsg_answer_matches(F.reply, F.reply_len, q.question,
					    q.question_len),
		      "the reply is not for %s", name);
	ck_assert_int_eq(memcmp(F.reply + DNSMSG_HEADER_LEN, q.question, q.question_len), 0);
}

static unsigned long queries(int i)
{
	return dot_peer_counts(F.P.peer[i])->queries;
}

/* ---- cases ------------------------------------------------------------- */

/* The upstream gets the query padded to 128-byte blocks under an ID of
 * the connection's; its padded answer reaches the client with the
 * client's ID and an OPT without options (padding stripped). */
START_TEST(test_answer_reaches_client)
{
	static const uint8_t bare_opt[] = { 0, 0x00, 0x29 };
	uint8_t msg[512];
	size_t len, mlen = client_query("www.example", CLIENT_ID, msg, sizeof(msg));

	start();
	dot_peer_set_mode(F.P.peer[A], PEER_HOLD);
	submit(msg, mlen);
	RUN_UNTIL(F.P.loop, dot_peer_held(F.P.peer[A]) == 1, WAIT);
	dot_peer_query(F.P.peer[A], 0, &len);
	ck_assert_uint_eq(len % 128, 0);
	ck_assert_uint_gt(len, mlen);
	ck_assert_uint_eq(F.nreplies, 0);
	dot_peer_answer(F.P.peer[A], 0, ANSWER_PADDED);
	RUN_UNTIL(F.P.loop, F.nreplies == 1, WAIT);
	assert_reply("www.example", CLIENT_ID, DNSMSG_RCODE_NOERROR);
	ck_assert_uint_eq(F.reply[11], 1);    /* ARCOUNT: the OPT */
	ck_assert_uint_lt(F.reply_len, 128);
	/* Last record: OPT owned by the root with RDLENGTH 0. */
	ck_assert_int_eq(memcmp(F.reply + F.reply_len - 11, bare_opt, sizeof(bare_opt)), 0);
	ck_assert_uint_eq(F.reply[F.reply_len - 2], 0);
	ck_assert_uint_eq(F.reply[F.reply_len - 1], 0);
	/* The A record came through. */
	ck_assert_uint_eq(F.reply[7], 1);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_ANSWERED], 1);
	ck_assert_uint_eq(query_inflight(F.env), 0);
}
END_TEST

/* An upstream that never answers: SERVFAIL with the client's ID when the
 * query's deadline passes, not before. */
START_TEST(test_silence_servfail_at_deadline)
{
	ev_tstamp t0;

	F.P.cfg.query_timeout_ms = 300;
	F.P.cfg.attempt_timeout_ms = 60000;
	start();
	dot_peer_set_mode(F.P.peer[A], PEER_HOLD);
	ev_now_update(F.P.loop);
	t0 = ev_now(F.P.loop);
	ask("www.example", CLIENT_ID);
	ck_assert_msg(ev_now(F.P.loop) - t0 >= 0.29, "SERVFAIL after %.3f s, deadline 0.3 s",
		      ev_now(F.P.loop) - t0);
	assert_reply("www.example", CLIENT_ID, DNSMSG_RCODE_SERVFAIL);
	ck_assert_uint_eq(queries(A), 1);
	ck_assert_uint_eq(queries(B), 0);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_SERVFAIL], 1);
	ck_assert_uint_eq(query_inflight(F.env), 0);
}
END_TEST

/* A does `mode` with the query: it is sent once more, to B, and B's
 * answer reaches the client. */
static void assert_resent_to_b(dot_peer_mode_t mode)
{
	start();
	dot_peer_set_mode(F.P.peer[A], mode);
	ask("www.example", CLIENT_ID);
	assert_reply("www.example", CLIENT_ID, DNSMSG_RCODE_NOERROR);
	ck_assert_uint_eq(queries(A), 1);
	ck_assert_uint_eq(queries(B), 1);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_RESENT], 1);
}

/* A's connection dies with the query on it. */
START_TEST(test_resend_elsewhere_when_conn_dies)
{
	assert_resent_to_b(PEER_CLOSE_ON_QUERY);
}
END_TEST

/* Both die on it: one resend only, then SERVFAIL, long before the
 * deadline. */
START_TEST(test_one_resend_only)
{
	start();
	dot_peer_set_mode(F.P.peer[A], PEER_CLOSE_ON_QUERY);
	dot_peer_set_mode(F.P.peer[B], PEER_CLOSE_ON_QUERY);
	ask("www.example", CLIENT_ID);
	assert_reply("www.example", CLIENT_ID, DNSMSG_RCODE_SERVFAIL);
	ck_assert_uint_eq(queries(A) + queries(B), 2);
	ck_assert_uint_eq(queries(B), 1);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_RESENT], 1);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_SERVFAIL], 1);
}
END_TEST

/* A silent upstream's attempt times out: the query goes to B in time. */
START_TEST(test_attempt_timeout_resends)
{
	F.P.cfg.attempt_timeout_ms = 200;
	assert_resent_to_b(PEER_HOLD);
}
END_TEST

/* Another opcode: NOTIMP; two questions: FORMERR; both with the client's
 * ID, at once, and nothing goes upstream. */
START_TEST(test_formerr_notimp_local)
{
	uint8_t msg[512];
	size_t len;

	start();
	len = client_query("www.example", CLIENT_ID, msg, sizeof(msg));
	msg[2] |= 2 << 3;                   /* opcode STATUS */
	submit(msg, len);
	ck_assert_uint_eq(F.nreplies, 1);
	ck_assert_uint_eq(dnsmsg_get_id(F.reply), CLIENT_ID);
	ck_assert_int_eq(dnsmsg_rcode(F.reply), DNSMSG_RCODE_NOTIMP);

	len = client_query("www.example", CLIENT_ID + 1, msg, sizeof(msg));
	msg[5] = 2;                         /* QDCOUNT 2, one given */
	submit(msg, len);
	ck_assert_uint_eq(F.nreplies, 2);
	ck_assert_uint_eq(dnsmsg_get_id(F.reply), CLIENT_ID + 1);
	ck_assert_int_eq(dnsmsg_rcode(F.reply), DNSMSG_RCODE_FORMERR);

	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_NOTIMP], 1);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_FORMERR], 1);
	ck_assert_uint_eq(query_inflight(F.env), 0);
	ck_assert_uint_eq(dot_peer_counts(F.P.peer[A])->connections +
			  dot_peer_counts(F.P.peer[B])->connections, 0);
}
END_TEST

/* The second ask for a name is answered from the cache, at once, with the
 * second client's ID; the upstream hears of it once. */
START_TEST(test_cache_hit_without_upstream)
{
	uint8_t msg[512];
	size_t len;

	F.P.cfg.cache_size = 65536;
	start();
	ask("www.example", CLIENT_ID);
	assert_reply("www.example", CLIENT_ID, DNSMSG_RCODE_NOERROR);
	len = client_query("WWW.example", CLIENT_ID + 7, msg, sizeof(msg));
	submit(msg, len);
	ck_assert_uint_eq(F.nreplies, 2);   /* before submit returned */
	assert_reply("WWW.example", CLIENT_ID + 7, DNSMSG_RCODE_NOERROR);
	ck_assert_uint_eq(F.reply[7], 1);
	ck_assert_uint_eq(queries(A), 1);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_CACHE_HITS], 1);
}
END_TEST

/* The machine asleep, as sysclock sees it: boot time runs on, monotonic
 * time does not. */
static double fake_boot = 1000, fake_mono = 500;

static int fake_clock(clockid_t id, struct timespec *ts)
{
	ts->tv_sec = (time_t)(id == CLOCK_BOOTTIME ? fake_boot : fake_mono);
	ts->tv_nsec = 0;
	return 0;
}

/* The cache ages on boot time: an answer (TTL 60) served from the cache
 * 30 s on is asked upstream again after an hour's suspend, though the
 * loop's clocks saw no time pass. */
START_TEST(test_cache_ages_across_a_suspend)
{
	sysclock_set_source(fake_clock);
	F.P.cfg.cache_size = 65536;
	start();
	ask("www.example", CLIENT_ID);
	ck_assert_uint_eq(queries(A), 1);
	fake_boot += 30;
	fake_mono += 30;
	ask("www.example", CLIENT_ID);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_CACHE_HITS], 1);
	fake_boot += 3600;
	ask("www.example", CLIENT_ID);
	assert_reply("www.example", CLIENT_ID, DNSMSG_RCODE_NOERROR);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_CACHE_HITS], 1);
	ck_assert_uint_eq(queries(A), 2);
	sysclock_set_source(NULL);
}
END_TEST

/* Names of local zones are answered at once, with the client's ID and
 * question, and no upstream connection is opened for them; other names
 * still go upstream. */
START_TEST(test_local_zone_without_upstream)
{
	static const struct { const char *name; int rcode; } local[] = {
		{ "LocalHost", DNSMSG_RCODE_NOERROR },
		{ "printer.local", DNSMSG_RCODE_NXDOMAIN },
		{ "1.1.168.192.in-addr.arpa", DNSMSG_RCODE_NXDOMAIN },
	};
	uint8_t msg[512];
	size_t len;

	F.P.cfg.zones = zones_create();
	zones_add_local_defaults(F.P.cfg.zones);
	start();
	for (unsigned i = 0; i < 3; i++) {
		len = client_query(local[i].name, CLIENT_ID + i, msg, sizeof(msg));
		submit(msg, len);
		ck_assert_uint_eq(F.nreplies, i + 1);   /* before submit returned */
		assert_reply(local[i].name, CLIENT_ID + i, local[i].rcode);
	}
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_LOCAL_ANSWERS], 3);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_ANSWERED], 3);
	ck_assert_uint_eq(query_inflight(F.env), 0);
	ck_assert_uint_eq(dot_peer_counts(F.P.peer[A])->connections +
			  dot_peer_counts(F.P.peer[B])->connections, 0);
	ask("www.example", CLIENT_ID);
	assert_reply("www.example", CLIENT_ID, DNSMSG_RCODE_NOERROR);
	ck_assert_uint_eq(queries(A), 1);
	ck_assert_uint_eq(query_env_stats(F.env)->v[SG_LOCAL_ANSWERS], 3);
	zones_destroy(F.P.cfg.zones);
}
END_TEST

static Suite *query_suite(void)
{
	Suite *s = suite_create("query");
	TCase *tc = tcase_create("loopback");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_answer_reaches_client);
	tcase_add_test(tc, test_silence_servfail_at_deadline);
	tcase_add_test(tc, test_resend_elsewhere_when_conn_dies);
	tcase_add_test(tc, test_one_resend_only);
	tcase_add_test(tc, test_attempt_timeout_resends);
	tcase_add_test(tc, test_formerr_notimp_local);
	tcase_add_test(tc, test_cache_hit_without_upstream);
	tcase_add_test(tc, test_cache_ages_across_a_suspend);
	tcase_add_test(tc, test_local_zone_without_upstream);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(query_suite)
