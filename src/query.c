#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "dotstub/cache.h"
#include "dotstub/dnsmsg.h"
#include "dotstub/forward.h"
#include "dotstub/log.h"
#include "dotstub/netutil.h"
#include "dotstub/query.h"
#include "dotstub/sysclock.h"
#include "dotstub/xmalloc.h"
#include "dotstub/zones.h"

/* Counted failures (errors, timeouts) before SERVFAIL: the first try and
 * one resend elsewhere. */
#define MAX_FAILURES 2
/* All resends, free ones included. */
#define MAX_RESENDS 8
/* Upstream messages up to this size live in the query itself: padded to
 * 128-byte blocks, nearly all take one block or two. */
#define QUERY_INLINE_MSG 256
/* Finished queries kept for reuse, so that the hot path does not go
 * through malloc; past this many (after a burst) they are freed. */
#define QUERY_SPARE_MAX 256

/* The query that embeds a request the pool hands back. */
#define QUERY_OF(r) \
	((query_t *)((char *)(r) - offsetof(query_t, ureq.req)))

typedef struct query {
	upstream_req_t ureq;        /* what goes upstream */
	query_env_t *env;
	TAILQ_ENTRY(query) link;    /* open (for shutdown), or spare */
	query_client_t client;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	dnsmsg_query_t q;
	uint8_t *upmsg;
	size_t uplen;
	ev_timer deadline;          /* the whole query: then SERVFAIL */
	ev_timer attempt;           /* one upstream's turn: then resend */
	ev_timer stale;             /* serve-stale: the client waits no longer */
	upstream_set_t *ups;        /* where it was last sent (reloads swap) */
	const struct sockaddr_storage *sent_to;  /* dnstap: the upstream */
	forward_group_t *fwd;       /* the forward group of its name, or NULL */
	forward_set_t *fwd_set;     /* the zone table fwd was looked up in */
	void *fwd_token;            /* in flight to a plain DNS group */
	ev_tstamp started;
	unsigned failures;          /* attempts that failed (counted) */
	unsigned resends;
	/* No client waits (it got a stale answer, or this is a prefetch):
	 * the answer only refreshes the cache, a failure ends it quietly. */
	int answered;
	unsigned long flushes;      /* the cache's flushes when it started */
	uint8_t inline_msg[QUERY_INLINE_MSG];  /* last: not cleared on reuse */
} query_t;

struct query_env {
	struct ev_loop *loop;
	const config_t *cfg;
	upstream_set_t *ups;
	forward_set_t *fwd;         /* the zone table; NULL: none */
	cache_t *cache;
	TAILQ_HEAD(query_list, query) open, spare;  /* spare: for reuse */
	size_t nopen;
	size_t nspare;
	stats_global_t *stats;      /* the thread's counters */
	stats_global_t own;         /* stats until query_env_use_stats() */
	unsigned long flushes;      /* of the cache, so far */
	dnstap_queue_t *tap;        /* NULL: dnstap off */
	uint8_t out[DNSMSG_MAX];    /* one answer at a time: the loop is ours */
	uint8_t plain[DNSMSG_MAX];  /* an upstream answer, padding removed */
	uint8_t tap_msg[DNSMSG_MAX];  /* an upstream message for dnstap */
};

/* The cache ages on boot time: an answer cached before a suspend has aged
 * by the time asleep (ev_now() is wall-clock time, which jumps with NTP
 * and the user; monotonic time stands still while asleep). */
static double cache_now(void)
{
	return sysclock_boot();
}

static cache_limits_t cache_limits(const config_t *cfg)
{
	cache_limits_t lim = {
		.max_bytes = cfg->cache_size,
		.min_ttl = cfg->cache_min_ttl,
		.max_ttl = cfg->cache_max_ttl,
		.max_negative_ttl = cfg->cache_max_negative_ttl,
		.stale_max_age = cfg->serve_stale ? cfg->stale_max_age : 0,
		.prefetch = cfg->prefetch,
	};

	return lim;
}

query_env_t *query_env_create(struct ev_loop *loop, const config_t *cfg,
			      upstream_set_t *upstreams)
{
	query_env_t *env = xcalloc(1, sizeof(*env));

	env->loop = loop;
	env->cfg = cfg;
	env->ups = upstreams;
	env->stats = &env->own;
	cache_limits_t lim = cache_limits(cfg);

	env->cache = cache_create(&lim);
	TAILQ_INIT(&env->open);
	TAILQ_INIT(&env->spare);
	return env;
}

static query_t *get_query(query_env_t *env)
{
	query_t *qr = TAILQ_FIRST(&env->spare);

	if (!qr)
		return xmalloc(sizeof(*qr));
	TAILQ_REMOVE(&env->spare, qr, link);
	env->nspare--;
	return qr;
}

static void put_query(query_env_t *env, query_t *qr)
{
	if (qr->upmsg != qr->inline_msg)
		free(qr->upmsg);
	if (env->nspare >= QUERY_SPARE_MAX) {
		free(qr);
		return;
	}
	TAILQ_INSERT_HEAD(&env->spare, qr, link);
	env->nspare++;
}

static void query_free(query_t *qr)
{
	query_env_t *env = qr->env;

	ev_timer_stop(env->loop, &qr->deadline);
	ev_timer_stop(env->loop, &qr->attempt);
	ev_timer_stop(env->loop, &qr->stale);
	if (qr->ups)
		upstream_cancel(qr->ups, &qr->ureq);
	forward_cancel(qr->fwd_token);
	TAILQ_REMOVE(&env->open, qr, link);
	env->nopen--;
	if (qr->client.release)
		qr->client.release(qr->client.owner);
	put_query(env, qr);
}

void query_env_destroy(query_env_t *env)
{
	if (!env)
		return;
	query_t *qr;

	while ((qr = TAILQ_FIRST(&env->open)) != NULL)
		query_free(qr);
	while ((qr = TAILQ_FIRST(&env->spare)) != NULL) {
		TAILQ_REMOVE(&env->spare, qr, link);
		free(qr);
	}
	cache_destroy(env->cache);
	free(env);
}

/* Every reply to a client leaves here; `asked`: when its query came. */
static void to_client(query_env_t *env, const query_client_t *client,
		      const struct sockaddr_storage *addr, socklen_t addrlen,
		      double asked, const uint8_t *msg, size_t len)
{
	if (env->tap)
		dnstap_client_response(env->tap, addr, !client->udp, asked,
				       ev_now(env->loop), msg, len);
	client->reply(client->owner, addr, addrlen, msg, len);
}

static void send_error(query_env_t *env, const query_client_t *client,
		       const struct sockaddr_storage *addr, socklen_t addrlen,
		       const dnsmsg_query_t *q, const uint8_t *msg, size_t len,
		       int rcode)
{
	size_t n = dnsmsg_error_reply(q, msg, len, rcode, env->out,
				      sizeof(env->out));
	if (!n)
		return;
	stats_inc_at(env->stats, SG_RESPONSES, stats_rcode_label((unsigned)rcode));
	to_client(env, client, addr, addrlen, ev_now(env->loop), env->out, n);
}

static int answer_stale(query_t *qr);

static void log_failure(const query_t *qr, const char *what, const char *why)
{
	char name[256];

	if (log_get_level() >= LOG_LVL_DEBUG) {
		dnsmsg_query_name(&qr->q, name, sizeof(name));
		log_debug("query %s type %u: %s (%s)", name, qr->q.qtype, what, why);
	}
}

/* No answer from upstream: a stale one when the cache has it (RFC 8767),
 * else SERVFAIL; nothing when no client waits. */
static void fail_query(query_t *qr, stats_cause_t cause, const char *why)
{
	if (qr->answered) {
		log_failure(qr, "refresh failed", why);
		query_free(qr);
		return;
	}
	if (answer_stale(qr)) {
		log_failure(qr, "answered from the cache", why);
		query_free(qr);
		return;
	}
	log_failure(qr, "SERVFAIL", why);
	stats_inc(qr->env->stats, SG_SERVFAIL);
	stats_inc_at(qr->env->stats, SG_SERVFAIL_CAUSE, cause);
	send_error(qr->env, &qr->client, &qr->addr, qr->addrlen, &qr->q,
		   qr->upmsg, qr->uplen, DNSMSG_RCODE_SERVFAIL);
	query_free(qr);
}

/* An answer (from `source`: upstream or cache, `age` seconds old; stale:
 * past its TTL, RFC 8767) rebuilt for the client, counted and sent `secs`
 * after the query came. Returns 0, sending nothing, when the answer
 * cannot be read. */
static int send_answer(query_env_t *env, const dnsmsg_query_t *q,
		       const query_client_t *client,
		       const struct sockaddr_storage *addr, socklen_t addrlen,
		       const uint8_t *msg, size_t len, uint32_t age, int stale,
		       unsigned source, double secs)
{
	size_t max = client->udp ? q->udp_max : 0;
	size_t n = stale ?
		dnsmsg_build_stale_answer(msg, len, q, max, env->cfg->stale_ttl,
					  env->out, sizeof(env->out)) :
		dnsmsg_build_client_answer(msg, len, q, max, env->out,
					   sizeof(env->out));

	if (n == 0)
		return 0;
	if (stale)
		stats_inc(env->stats, SG_STALE_ANSWERS);
	else
		dnsmsg_age_ttls(env->out, n, age);
	if (client->udp && n < len && dnsmsg_truncated(env->out))
		stats_inc(env->stats, SG_TRUNCATED);
	stats_inc(env->stats, SG_ANSWERED);
	stats_inc_at(env->stats, SG_RESPONSES,
		     stats_rcode_label((unsigned)dnsmsg_rcode(env->out)));
	stats_observe(env->stats, SG_ANSWER_SECONDS, 0, secs);
	stats_observe(env->stats, SG_CLIENT_SECONDS, source, secs);
	to_client(env, client, addr, addrlen, ev_now(env->loop) - secs, env->out, n);
	return 1;
}

/* The upstream's answer (env->plain, n bytes; 0: unreadable) into the
 * cache, unless the cache was flushed since the query started: a reload
 * that changes the upstreams empties the cache, and their last answers
 * must not creep back in. */
static void store(query_t *qr, size_t n)
{
	query_env_t *env = qr->env;

	if (n && qr->flushes == env->flushes)
		cache_store(env->cache, &qr->q, env->plain, n, cache_now());
}

/* dnstap logs upstream messages without their padding: it hides lengths
 * on the wire, and would be most of the log's bytes, and of its cost.
 * *msg, *len become env->tap_msg's copy, or stay (nothing to remove). */
static void tap_unpad(query_env_t *env, const uint8_t **msg, size_t *len)
{
	size_t n = dnsmsg_unpad(*msg, *len, env->tap_msg, sizeof(env->tap_msg));

	if (n) {
		*msg = env->tap_msg;
		*len = n;
	}
}

static void tap_forwarder_response(query_t *qr, const dot_req_t *req,
				   const uint8_t *msg, size_t len)
{
	query_env_t *env = qr->env;

	tap_unpad(env, &msg, &len);
	dnstap_forwarder_response(env->tap, qr->sent_to, req->sent_at,
				  ev_now(env->loop), msg, len);
}

/* The answer is kept and rebuilt for each client without the upstream's
 * padding: a 468-byte block (RFC 8467) around a typical 70-byte answer. */
static void on_answer(dot_req_t *req, const uint8_t *msg, size_t len)
{
	query_t *qr = QUERY_OF(req);
	query_env_t *env = qr->env;
	size_t n = dnsmsg_strip_answer(msg, len, env->plain, sizeof(env->plain));

	if (env->tap && qr->sent_to)
		tap_forwarder_response(qr, req, msg, len);
	if (qr->answered) {
		store(qr, n);
		query_free(qr);
		return;
	}
	/* RFC 8767: a stale answer beats the upstream's SERVFAIL. */
	if (n && dnsmsg_rcode(env->plain) == DNSMSG_RCODE_SERVFAIL &&
	    answer_stale(qr)) {
		query_free(qr);
		return;
	}
	if (n == 0 ||
	    !send_answer(env, &qr->q, &qr->client, &qr->addr, qr->addrlen,
			 env->plain, n, 0, 0, STATS_SOURCE_UPSTREAM,
			 ev_now(env->loop) - qr->started)) {
		fail_query(qr, STATS_CAUSE_BAD_ANSWER, "unreadable answer");
		return;
	}
	store(qr, n);
	query_free(qr);
}

/* dnstap: the message as it went to upstream u (its ID is the wire's),
 * less its padding (tap_unpad()). */
static void on_sent(dot_req_t *req, const config_upstream_t *u,
		    const uint8_t *msg, size_t len)
{
	query_t *qr = QUERY_OF(req);

	qr->sent_to = &u->addr;
	tap_unpad(qr->env, &msg, &len);
	dnstap_forwarder_query(qr->env->tap, &u->addr, req->sent_at, msg, len);
}

/* A plain DNS forward group: c-ares keeps its own time per server, so no
 * attempt timer; the deadline still holds. 0, or -1 when it failed and
 * has ended. */
static int dispatch_plain(query_t *qr)
{
	ev_timer_stop(qr->env->loop, &qr->attempt);
	qr->ups = NULL;
	qr->fwd_token = forward_send_plain(qr->fwd, &qr->ureq.req, qr->upmsg,
					   qr->uplen, !qr->client.udp);
	if (qr->fwd_token)
		return 0;
	fail_query(qr, STATS_CAUSE_QUEUE_FULL, "too many plain DNS queries in flight");
	return -1;
}

/* Send (or resend) the query: 0, or -1 when it failed and has ended. */
static int dispatch(query_t *qr)
{
	query_env_t *env = qr->env;
	upstream_set_t *ups;
	int rc;

	forward_cancel(qr->fwd_token);   /* a resend ends the plain one */
	qr->fwd_token = NULL;
	/* Asked again after a reload: it may have changed the zones. */
	if (qr->fwd_set != env->fwd) {
		qr->fwd = forward_lookup(env->fwd, qr->q.question, qr->q.question_len);
		qr->fwd_set = env->fwd;
	}
	if (qr->fwd && !forward_upstreams(qr->fwd))
		return dispatch_plain(qr);
	ups = qr->fwd ? forward_upstreams(qr->fwd) : env->ups;
	qr->ups = ups;
	rc = upstream_send(ups, &qr->ureq, qr->upmsg, qr->uplen);

	if (rc < 0) {
		if (rc == -ENOBUFS)
			fail_query(qr, STATS_CAUSE_QUEUE_FULL, "too many queries waiting");
		else
			fail_query(qr, STATS_CAUSE_NO_CONNECTION,
				   "no upstream connection can take it");
		return -1;
	}
	ev_timer_stop(env->loop, &qr->attempt);
	ev_timer_set(&qr->attempt, env->cfg->attempt_timeout_ms / 1000.0, 0.);
	ev_timer_start(env->loop, &qr->attempt);
	return 0;
}

/* A failed attempt: once more, elsewhere when there is an elsewhere. A
 * server that closed cleanly after answering others did not fail us:
 * that resend is free (up to a bound), or a server closing after every
 * K queries would starve pipelined ones. */
static void retry(query_t *qr, int counted, const char *why)
{
	if ((counted && ++qr->failures >= MAX_FAILURES) ||
	    ++qr->resends > MAX_RESENDS) {
		fail_query(qr, STATS_CAUSE_UPSTREAM, why);
		return;
	}
	stats_inc(qr->env->stats, SG_RESENT);
	dispatch(qr);
}

/* The connection died with the query on it. */
static void on_failed(dot_req_t *req, int counted, const char *why)
{
	retry(QUERY_OF(req), counted, why);
}

/* No answer in the attempt's time: resend (on a waiting query, keep
 * waiting: it was never sent). */
static void on_attempt_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	query_t *qr = w->data;

	(void)loop;
	(void)revents;
	if (qr->ureq.waiting) {
		/* Never sent yet: its turn starts when it is. */
		ev_timer_set(w, qr->env->cfg->attempt_timeout_ms / 1000.0, 0.);
		ev_timer_start(qr->env->loop, w);
		return;
	}
	/* The client has its stale answer, or gets it at stale-answer-timeout
	 * (RFC 8767): a resend would throw away the slow answer on its way,
	 * the one that refreshes the cache. It may take until the deadline;
	 * a connection that dies still makes it resend. */
	if (qr->answered || ev_is_active(&qr->stale))
		return;
	upstream_expire(qr->ups, &qr->ureq);
	retry(qr, 1, "attempt timed out");
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	query_t *qr = w->data;

	(void)loop;
	(void)revents;
	fail_query(qr, STATS_CAUSE_DEADLINE, "deadline passed");
}

/* What the cache has for a query already open, fresh (another query
 * refreshed it meanwhile) or stale, to its client, who then waits no
 * more: 1, or 0 when the cache has nothing. */
static int answer_stale(query_t *qr)
{
	query_env_t *env = qr->env;
	cache_hit_t hit;
	cache_state_t st = cache_lookup(env->cache, &qr->q, cache_now(), &hit);

	if (st == CACHE_MISS ||
	    !send_answer(env, &qr->q, &qr->client, &qr->addr, qr->addrlen,
			 hit.msg, hit.len, hit.age, st == CACHE_STALE,
			 STATS_SOURCE_CACHE, ev_now(env->loop) - qr->started))
		return 0;
	if (st == CACHE_FRESH)
		stats_inc(env->stats, SG_CACHE_HITS);
	qr->answered = 1;
	if (qr->client.release)
		qr->client.release(qr->client.owner);
	qr->client.release = NULL;
	return 1;
}

/* stale-answer-timeout has passed without an answer: the stale one now;
 * the query goes on to refresh the cache with the upstream's. */
static void on_stale_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	query_t *qr = w->data;

	(void)loop;
	(void)revents;
	answer_stale(qr);
}

/* Every upstream that could answer is known down (failed, backing off):
 * those of DoT forward group g, or the default set's when g is NULL. A
 * plain DNS group keeps no such state: never known down. */
static int all_down(query_env_t *env, const forward_group_t *g)
{
	upstream_set_t *ups = g ? forward_upstreams(g) : env->ups;

	return ups && upstream_set_all_down(ups, ev_now(env->loop));
}

static query_t *start_query(query_env_t *env, const dnsmsg_query_t *q,
			    const uint8_t *msg, size_t len,
			    const query_client_t *client,
			    const struct sockaddr_storage *addr,
			    socklen_t addrlen, forward_group_t *g, int stale);

/* The cache's part of a new query: 1 when the client has its answer (a
 * fresh one, with a refresh sent behind it in the prefetch window; or a
 * stale one when no upstream can be reached), else 0 and *stale set when
 * a stale answer waits for the upstream to fail or be slow. */
static int answer_from_cache(query_env_t *env, const dnsmsg_query_t *q,
			     const uint8_t *msg, size_t len,
			     const query_client_t *client,
			     const struct sockaddr_storage *addr, socklen_t addrlen,
			     forward_group_t *g, int *stale)
{
	cache_hit_t hit;

	switch (cache_lookup(env->cache, q, cache_now(), &hit)) {
	case CACHE_FRESH:
		/* The time since the loop woke up (and read the query, or
		 * the batch it came in): a cache hit takes microseconds. */
		if (!send_answer(env, q, client, addr, addrlen, hit.msg, hit.len,
				 hit.age, 0, STATS_SOURCE_CACHE,
				 ev_time() - ev_now(env->loop)))
			return 0;
		stats_inc(env->stats, SG_CACHE_HITS);
		/* After the answer: a refresh never delays the hit. */
		if (hit.refresh && start_query(env, q, msg, len, NULL, NULL, 0, g, 0))
			stats_inc(env->stats, SG_PREFETCHES);
		return 1;
	case CACHE_STALE:
		*stale = 1;
		/* Every upstream failed and backs off: the wait would end in a
		 * failure, the client gets the stale answer now. The query
		 * still goes upstream, nobody waiting for it: the first
		 * upstream back refreshes the answer. */
		if (!all_down(env, g) ||
		    !send_answer(env, q, client, addr, addrlen, hit.msg, hit.len,
				 0, 1, STATS_SOURCE_CACHE,
				 ev_time() - ev_now(env->loop)))
			return 0;
		start_query(env, q, msg, len, NULL, NULL, 0, g, 0);
		return 1;
	case CACHE_MISS:
	default:
		return 0;
	}
}

/* A name of a local zone (RFC 6761, 6303) is answered here, never sent
 * upstream; not cached either: building the answer costs no more than a
 * cache lookup. m: the local zone zones_lookup() found. */
static void answer_locally(query_env_t *env, const dnsmsg_query_t *q,
			   const zones_match_t *m, const query_client_t *client,
			   const struct sockaddr_storage *addr, socklen_t addrlen)
{
	size_t n;

	if (log_get_level() >= LOG_LVL_DEBUG) {
		char name[DNSMSG_NAME_TEXT_MAX];
		dnsmsg_query_name(q, name, sizeof(name));
		log_debug("query %s type %u: local zone, not sent upstream", name,
			  q->qtype);
	}
	n = dnsmsg_local_answer(q, m->local, m->apex, env->out, sizeof(env->out));
	if (n) {
		stats_inc(env->stats, SG_LOCAL_ANSWERS);
		stats_inc(env->stats, SG_ANSWERED);
		stats_inc_at(env->stats, SG_RESPONSES,
			     stats_rcode_label((unsigned)dnsmsg_rcode(env->out)));
		stats_observe(env->stats, SG_ANSWER_SECONDS, 0, 0);
		stats_observe(env->stats, SG_CLIENT_SECONDS, STATS_SOURCE_LOCAL, 0);
		to_client(env, client, addr, addrlen, ev_now(env->loop), env->out, n);
	}
}

/* Build the upstream message for g (NULL: the default upstreams);
 * returns 0 or -1 (FORMERR material). */
static int build_upstream(query_t *qr, forward_group_t *g, const uint8_t *msg,
			  size_t len)
{
	int plain = g && !forward_upstreams(g);
	size_t pad = plain ? 0 : qr->env->cfg->padding_block;
	size_t cap = dnsmsg_padded_size(len, pad);

	qr->fwd = g;
	qr->fwd_set = qr->env->fwd;
	qr->upmsg = cap <= QUERY_INLINE_MSG ? qr->inline_msg : xmalloc(cap);
	qr->uplen = plain ? dnsmsg_build_plain(msg, len, &qr->q, qr->upmsg, cap)
			  : dnsmsg_build_upstream(msg, len, &qr->q, 0, pad,
						  qr->upmsg, cap);
	return qr->uplen ? 0 : -1;
}

/* A client not in the allow list: REFUSED, header and question only, never
 * longer than its message (no amplifier for a spoofed source); nothing
 * when even that cannot be read. The allow list is checked before
 * anything else, so no cache or upstream work is done for it. */
static void refuse(query_env_t *env, const query_client_t *client,
		   const struct sockaddr_storage *addr, socklen_t addrlen,
		   const uint8_t *msg, size_t len)
{
	dnsmsg_query_t q;
	size_t n;

	stats_inc(env->stats, SG_REFUSED);
	if (log_get_level() >= LOG_LVL_DEBUG) {
		char peer[64];
		net_format(addr, peer, sizeof(peer));
		log_debug("client %s: REFUSED, not in the allow list", peer);
	}
	if (dnsmsg_parse_query(msg, len, &q) == DNSMSG_DROP)
		return;
	n = dnsmsg_refused_reply(&q, msg, len, env->out, sizeof(env->out));
	if (!n)
		return;
	stats_inc_at(env->stats, SG_RESPONSES, DNSMSG_RCODE_REFUSED);
	to_client(env, client, addr, addrlen, ev_now(env->loop), env->out, n);
}

void query_submit(query_env_t *env, const uint8_t *msg, size_t len,
		  const query_client_t *client,
		  const struct sockaddr_storage *addr, socklen_t addrlen)
{
	dnsmsg_query_t q;
	zones_match_t m;
	forward_group_t *g;
	int stale = 0;

	stats_inc(env->stats, SG_QUERIES);
	stats_inc_at(env->stats, SG_BY_TRANSPORT,
		     client->udp ? STATS_TRANSPORT_UDP : STATS_TRANSPORT_TCP);
	if (env->tap)
		dnstap_client_query(env->tap, addr, !client->udp, ev_now(env->loop),
				    msg, len);
	if (!acl_allows(env->cfg->allow, addr)) {
		refuse(env, client, addr, addrlen, msg, len);
		return;
	}
	switch (dnsmsg_parse_query(msg, len, &q)) {
	case DNSMSG_OK:
		break;
	case DNSMSG_DROP:
		stats_inc(env->stats, SG_DROPPED);
		return;
	case DNSMSG_FORMERR:
		stats_inc(env->stats, SG_FORMERR);
		send_error(env, client, addr, addrlen, &q, msg, len,
			   DNSMSG_RCODE_FORMERR);
		return;
	case DNSMSG_NOTIMP:
		stats_inc(env->stats, SG_NOTIMP);
		send_error(env, client, addr, addrlen, &q, msg, len,
			   DNSMSG_RCODE_NOTIMP);
		return;
	}
	/* One look at the zone table: a local zone's name is answered here,
	 * a forward zone's goes to its group (and only its group's health
	 * decides whether a stale answer is served at once). */
	if (zones_lookup(env->cfg->zones, q.question, q.question_len, &m) ==
	    ZONES_LOCAL) {
		answer_locally(env, &q, &m, client, addr, addrlen);
		return;
	}
	g = forward_group_of(env->fwd, &m);
	if (answer_from_cache(env, &q, msg, len, client, addr, addrlen, g, &stale))
		return;
	start_query(env, &q, msg, len, client, addr, addrlen, g, stale);
}

/* An open query for q, sent upstream to g (NULL: the default upstreams);
 * client NULL: a refresh nobody waits for. stale: the cache holds a stale
 * answer for the client after stale-answer-timeout. Returns the query, or
 * NULL when it could not be built (FORMERR sent) or sent (ended at once). */
static query_t *start_query(query_env_t *env, const dnsmsg_query_t *q,
			    const uint8_t *msg, size_t len,
			    const query_client_t *client,
			    const struct sockaddr_storage *addr,
			    socklen_t addrlen, forward_group_t *g, int stale)
{
	query_t *qr = get_query(env);

	memset(qr, 0, offsetof(query_t, inline_msg));
	qr->env = env;
	qr->started = ev_now(env->loop);
	qr->q = *q;
	qr->flushes = env->flushes;
	if (client) {
		qr->client = *client;
		memcpy(&qr->addr, addr, addrlen);
		qr->addrlen = addrlen;
	} else {
		qr->answered = 1;
	}
	if (build_upstream(qr, g, msg, len) < 0) {
		if (client) {
			stats_inc(env->stats, SG_FORMERR);
			send_error(env, client, addr, addrlen, q, msg, len,
				   DNSMSG_RCODE_FORMERR);
		}
		put_query(env, qr);
		return NULL;
	}
	qr->ureq.req.question = qr->q.question;
	qr->ureq.req.question_len = qr->q.question_len;
	qr->ureq.req.on_answer = on_answer;
	qr->ureq.req.on_failed = on_failed;
	qr->ureq.req.on_sent = env->tap ? on_sent : NULL;
	TAILQ_INSERT_HEAD(&env->open, qr, link);
	env->nopen++;
	if (client && client->hold)
		client->hold(client->owner);
	ev_timer_init(&qr->deadline, on_deadline,
		      env->cfg->query_timeout_ms / 1000.0, 0.);
	qr->deadline.data = qr;
	ev_timer_start(env->loop, &qr->deadline);
	ev_init(&qr->attempt, on_attempt_timeout);
	qr->attempt.data = qr;
	ev_timer_init(&qr->stale, on_stale_timeout,
		      env->cfg->stale_answer_timeout_ms / 1000.0, 0.);
	qr->stale.data = qr;
	if (stale && client)
		ev_timer_start(env->loop, &qr->stale);
	/* Last: a send that fails at once ends the query. */
	return dispatch(qr) < 0 ? NULL : qr;
}

void query_drop(query_env_t *env)
{
	stats_inc(env->stats, SG_QUERIES);
	stats_inc_at(env->stats, SG_BY_TRANSPORT, STATS_TRANSPORT_UDP);
	stats_inc(env->stats, SG_DROPPED);
}

void query_env_set_upstreams(query_env_t *env, upstream_set_t *ups)
{
	env->ups = ups;
}

void query_env_set_dnstap(query_env_t *env, dnstap_queue_t *q)
{
	env->tap = q;
}

void query_env_set_forward(query_env_t *env, forward_set_t *fwd)
{
	env->fwd = fwd;
}

void query_env_reconfigure(query_env_t *env)
{
	cache_limits_t lim = cache_limits(env->cfg);

	cache_set_limits(env->cache, &lim, cache_now());
}

size_t query_env_flush_cache(query_env_t *env)
{
	env->flushes++;
	stats_inc(env->stats, SG_CACHE_FLUSHES);
	return cache_flush(env->cache);
}

size_t query_inflight(const query_env_t *env)
{
	return env->nopen;
}

void query_env_use_stats(query_env_t *env, stats_global_t *g)
{
	env->stats = g;
}

const stats_global_t *query_env_stats(const query_env_t *env)
{
	return env->stats;
}

void query_env_fill_stats(const query_env_t *env, stats_global_t *g)
{
	const cache_stats_t *c = cache_stats(env->cache);

	stats_set(g, SG_OPEN, env->nopen);
	stats_set(g, SG_CACHE_MISSES, c->misses);
	stats_set(g, SG_CACHE_EVICTIONS, c->evicted);
	stats_set(g, SG_CACHE_ENTRIES, c->entries);
	stats_set(g, SG_CACHE_BYTES, c->bytes);
	stats_set(g, SG_DNSTAP_DROPPED, env->tap ? dnstap_queue_dropped(env->tap) : 0);
}
