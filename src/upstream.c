#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dotstub/log.h"
#include "dotstub/rand.h"
#include "dotstub/stats.h"
#include "dotstub/upstream.h"
#include "dotstub/xmalloc.h"

/* One query in this many goes to a random healthy upstream under the RTT
 * policy, so that a recovered or faster one is noticed. */
#define EXPLORE_ONE_IN 32

/* A server idle close shorter than this is taken for a one-off (a
 * restart), not its idle timeout. */
#define IDLE_LEARN_MIN_MS 1000
/* Ours closes this much before the server's learned one: the query we
 * write must reach it before it decides to close. */
#define IDLE_LEARN_MARGIN_MS 500

/* Tickets kept per upstream: servers send two or so per connection, and a
 * burst opens at most pool-size connections at once; a full handshake
 * when none is left costs one round trip. */
#define UPSTREAM_TICKETS_MAX 8

/* A verified certificate this close to its notAfter is worth a warning. */
#define CERT_WARN_DAYS 14

typedef struct upstream {
	upstream_set_t *set;
	const config_upstream_t *cfg;
	tls_ctx_t *tls;            /* shared with upstreams of the same anchors */
	dot_conn_t **conns;        /* pool_size slots, NULL = free */
	unsigned fails;            /* connection failures in a row */
	ev_tstamp down_until;      /* backoff: not chosen before this */
	ev_tstamp last_fail;
	double srtt_ms;            /* smoothed answer time; 0 = not measured */
	/* Its connection has taken longer than connection-race-delay and no
	 * other is ready: the next upstream races it (not chosen until the
	 * connection completes or fails). */
	int stalled;
	/* The server's idle close, learned (ms; 0 = not seen), and the
	 * connection options with the idle timeout it implies. */
	unsigned idle_close_ms;
	dot_conn_opts_t opts;
	/* Session tickets for the next connections, oldest first; each is
	 * offered once (RFC 8446 C.4: a reused ticket links connections). */
	struct ticket {
		uint8_t *data;
		size_t len;
	} tickets[UPSTREAM_TICKETS_MAX];
	size_t ntickets;
	int warned_expiry;         /* said once per set: at start-up, on reload */
	stats_upstream_t stats;    /* this thread's counts for it */
} upstream_t;

struct upstream_set {
	struct ev_loop *loop;
	tls_ctx_t **ctxs;          /* one per distinct ca-file */
	size_t nctxs;
	upstream_t *ups;
	size_t n;
	unsigned pool_size;
	int policy;
	size_t next_rr;            /* round-robin position */
	dot_conn_opts_t opts;
	/* Queries waiting for a connection with room, oldest first. */
	TAILQ_HEAD(upstream_waitq, upstream_req) waiting;
	size_t nwaiting, max_waiting;
	/* Closed connections are freed after the callbacks that closed
	 * them have returned: before the loop next waits (a prepare
	 * watcher; a check watcher started in a callback would run only
	 * after the next wake-up, and queries waiting for the closed
	 * connection would wait for some unrelated event). */
	dot_conn_t **dead;
	size_t ndead;
	ev_prepare reaper;
	/* Happy eyeballs (RFC 8305): queries wait for a connection; when it
	 * is not ready within race_delay, the next upstream starts too. */
	ev_timer race;
	ev_tstamp race_delay;      /* seconds; 0 = no race */
	stats_global_t *g;         /* the thread's counters */
	stats_global_t own;        /* g until upstream_set_use_stats() */
};

static void send_waiting(upstream_set_t *set);
static void arm_race(upstream_set_t *set);
static void on_race(struct ev_loop *loop, ev_timer *w, int revents);
static int all_down(upstream_set_t *set);
static void fail_waiting(upstream_set_t *set, const char *why);

/* A connection of u that is ready and has room, or NULL. */
static dot_conn_t *ready_conn(const upstream_t *u)
{
	for (unsigned i = 0; i < u->set->pool_size; i++) {
		dot_conn_t *c = u->conns[i];
		if (c && dot_conn_state(c) == DOT_READY && dot_conn_has_room(c))
			return c;
	}
	return NULL;
}

/* u's oldest connection still in its TCP connect or TLS handshake, or
 * NULL. */
static dot_conn_t *pending_conn(const upstream_t *u)
{
	dot_conn_t *oldest = NULL;

	for (unsigned i = 0; i < u->set->pool_size; i++) {
		dot_conn_t *c = u->conns[i];
		if (c && (dot_conn_state(c) == DOT_CONNECTING ||
			  dot_conn_state(c) == DOT_HANDSHAKE) &&
		    (!oldest || dot_conn_started(c) < dot_conn_started(oldest)))
			oldest = c;
	}
	return oldest;
}

/* A resumed session shows no certificate: the gauge keeps the last full
 * handshake's. */
static void note_expiry(upstream_t *u, time_t expiry)
{
	double days;

	if (expiry <= 0)
		return;
	stats_set(&u->stats, SU_CERT_EXPIRY, (double)expiry);
	days = difftime(expiry, time(NULL)) / 86400.0;
	if (days < CERT_WARN_DAYS && !u->warned_expiry) {
		u->warned_expiry = 1;
		log_warn("upstream %s: its certificate expires in %.1f days",
			 u->cfg->text, days);
	}
}

static void on_ready(void *arg, dot_conn_t *c, int resumed, double ms)
{
	upstream_t *u = arg;

	(void)ms;
	u->fails = 0;
	u->down_until = 0;
	u->stalled = 0;
	stats_inc_at(&u->stats, SU_HANDSHAKES,
		     resumed ? STATS_KIND_RESUMED : STATS_KIND_FULL);
	stats_inc(u->set->g, resumed ? SG_UP_RESUMED : SG_UP_HANDSHAKES);
	if (!resumed)
		note_expiry(u, dot_conn_peer_expiry(c));
	/* Queries wait for a ready connection: this one, if it is first. */
	if (!TAILQ_EMPTY(&u->set->waiting))
		send_waiting(u->set);
}

/* The newest are kept: the oldest is the nearest to the end of its
 * lifetime (and the server may have rotated its key since). */
static void on_ticket(void *arg, uint8_t *data, size_t len)
{
	upstream_t *u = arg;

	if (u->ntickets == UPSTREAM_TICKETS_MAX) {
		free(u->tickets[0].data);
		memmove(u->tickets, u->tickets + 1,
			--u->ntickets * sizeof(u->tickets[0]));
	}
	u->tickets[u->ntickets++] = (struct ticket){ data, len };
}

/* The newest ticket, taken out (the caller frees it); { NULL, 0 } if none. */
static struct ticket take_ticket(upstream_t *u)
{
	struct ticket none = { NULL, 0 };

	return u->ntickets ? u->tickets[--u->ntickets] : none;
}

static void drop_tickets(upstream_t *u)
{
	while (u->ntickets)
		free(u->tickets[--u->ntickets].data);
}

/* EWMA with gain 1/8, as TCP's SRTT. */
static void on_rtt(void *arg, double ms)
{
	upstream_t *u = arg;

	u->srtt_ms = u->srtt_ms == 0 ? ms : u->srtt_ms + (ms - u->srtt_ms) / 8;
	stats_inc(&u->stats, SU_ANSWERS);
	stats_observe(&u->stats, SU_ANSWER_SECONDS, 0, ms / 1000.0);
}

static void on_room(void *arg, dot_conn_t *c)
{
	upstream_t *u = arg;

	(void)c;
	if (!TAILQ_EMPTY(&u->set->waiting))
		send_waiting(u->set);
}

/* Back off exponentially, from UPSTREAM_BACKOFF_MIN_MS up to a few
 * seconds (not minutes: a network that comes back must be noticed). */
static void mark_failed(upstream_t *u)
{
	ev_tstamp now = ev_now(u->set->loop);
	unsigned ms = UPSTREAM_BACKOFF_MIN_MS;

	for (unsigned i = 0; i < u->fails && ms < UPSTREAM_BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > UPSTREAM_BACKOFF_MAX_MS)
		ms = UPSTREAM_BACKOFF_MAX_MS;
	u->fails++;
	u->last_fail = now;
	u->down_until = now + ms / 1000.0;
	stats_inc(u->set->g, SG_UP_FAILURES);
	/* A ticket from a server that now fails may be what fails. */
	drop_tickets(u);
}

static void on_closed(void *arg, dot_conn_t *c, int failed, const char *why)
{
	upstream_t *u = arg;
	upstream_set_t *set = u->set;

	(void)why;
	for (unsigned i = 0; i < set->pool_size; i++)
		if (u->conns[i] == c)
			u->conns[i] = NULL;
	if (failed)
		mark_failed(u);
	if (!pending_conn(u))
		u->stalled = 0;
	if (dot_conn_failure(c) >= 0)
		stats_inc_at(&u->stats, SU_HS_FAILURES, (unsigned)dot_conn_failure(c));
	set->g->v[SG_UP_UNMATCHED] += dot_conn_stats(c)->unmatched;
	set->dead = xrealloc(set->dead, (set->ndead + 1) * sizeof(*set->dead));
	set->dead[set->ndead++] = c;
	ev_prepare_start(set->loop, &set->reaper);
}

/* The server closed an idle connection after `secs`: ours close
 * IDLE_LEARN_MARGIN_MS sooner from now on (all of them, the open ones
 * too), so that no query is written into a connection it is closing. */
static void on_idle_closed(void *arg, dot_conn_t *c, double secs)
{
	upstream_t *u = arg;
	unsigned ms = (unsigned)(secs * 1000.0), ours;

	(void)c;
	stats_inc(u->set->g, SG_UP_IDLE_CLOSES);
	if (ms < IDLE_LEARN_MIN_MS || (u->idle_close_ms && ms >= u->idle_close_ms))
		return;
	u->idle_close_ms = ms;
	ours = ms - IDLE_LEARN_MARGIN_MS;
	if (u->opts.idle_timeout_ms && u->opts.idle_timeout_ms < ours)
		return;
	u->opts.idle_timeout_ms = ours;
	log_info("upstream %s: idle close after %.1f s (the server's); ours now "
		 "after %.1f s", u->cfg->text, ms / 1000.0, ours / 1000.0);
	for (unsigned i = 0; i < u->set->pool_size; i++)
		if (u->conns[i] && u->conns[i] != c)
			dot_conn_set_idle_timeout(u->conns[i], ours);
}

static const dot_conn_events_t CONN_EVENTS = {
	.on_ready = on_ready,
	.on_ticket = on_ticket,
	.on_rtt = on_rtt,
	.on_room = on_room,
	.on_closed = on_closed,
	.on_idle_closed = on_idle_closed,
};

static void reap_dead(upstream_set_t *set)
{
	for (size_t i = 0; i < set->ndead; i++)
		dot_conn_destroy(set->dead[i]);
	set->ndead = 0;
	ev_prepare_stop(set->loop, &set->reaper);
}

/* After a close: queries that waited for the closed connection try again
 * (another upstream, the failed one now backing off); when every upstream
 * has failed and none is connecting, they hear it (a counted failure: a
 * quick SERVFAIL when the network is gone, not one at the deadline). */
static void reap(struct ev_loop *loop, ev_prepare *w, int revents)
{
	upstream_set_t *set = w->data;

	(void)loop;
	(void)revents;
	reap_dead(set);
	if (TAILQ_EMPTY(&set->waiting))
		return;
	if (all_down(set)) {
		fail_waiting(set, "every upstream failed");
		return;
	}
	send_waiting(set);
	arm_race(set);
}

static int same_file(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* The context for upstream i: one of an earlier upstream with the same
 * anchors, or a new one. */
static tls_ctx_t *ctx_for(upstream_set_t *set, const config_t *cfg, size_t i,
			  char *err, size_t errlen)
{
	for (size_t k = 0; k < i; k++)
		if (same_file(cfg->upstreams[k].ca_file, cfg->upstreams[i].ca_file))
			return set->ups[k].tls;
	tls_ctx_t *ctx = tls_ctx_create(cfg->upstreams[i].ca_file, err, errlen);
	if (!ctx)
		return NULL;
	set->ctxs = xrealloc(set->ctxs, (set->nctxs + 1) * sizeof(*set->ctxs));
	set->ctxs[set->nctxs++] = ctx;
	return ctx;
}

upstream_set_t *upstream_set_create(struct ev_loop *loop, const config_t *cfg,
				    char *err, size_t errlen)
{
	upstream_set_t *set = xcalloc(1, sizeof(*set));

	set->loop = loop;
	set->g = &set->own;
	TAILQ_INIT(&set->waiting);
	set->n = cfg->nupstreams;
	set->pool_size = cfg->pool_size ? cfg->pool_size : 1;
	set->policy = cfg->policy;
	set->max_waiting = cfg->max_waiting;
	set->opts.connect_timeout_ms = cfg->connect_timeout_ms;
	set->opts.idle_timeout_ms = cfg->idle_timeout_ms;
	set->opts.max_inflight = cfg->max_inflight;
	set->opts.tcp_fastopen = cfg->tcp_fastopen;
	/* query-timeout: once data has gone unacknowledged that long, every
	 * query on the connection has had its SERVFAIL, so nothing is lost by
	 * giving up; anything shorter could kill a connection that a lossy
	 * link (TCP backing off, 0.2 + 0.4 + 0.8 + 1.6 s) would still carry.
	 * A silent connection with queries in flight goes sooner, at
	 * attempt-timeout (dot_conn_expire). */
	set->opts.user_timeout_ms = cfg->query_timeout_ms;
	set->ups = xcalloc(set->n, sizeof(upstream_t));
	for (size_t i = 0; i < set->n; i++) {
		set->ups[i].set = set;
		set->ups[i].cfg = &cfg->upstreams[i];
		set->ups[i].conns = xcalloc(set->pool_size, sizeof(dot_conn_t *));
		set->ups[i].opts = set->opts;
	}
	ev_prepare_init(&set->reaper, reap);
	set->reaper.data = set;
	ev_init(&set->race, on_race);
	set->race.data = set;
	set->race_delay = cfg->race_delay_ms / 1000.0;
	for (size_t i = 0; i < set->n; i++) {
		set->ups[i].tls = ctx_for(set, cfg, i, err, errlen);
		if (!set->ups[i].tls) {
			upstream_set_destroy(set);
			return NULL;
		}
	}
	return set;
}

void upstream_set_destroy(upstream_set_t *set)
{
	if (!set)
		return;
	reap_dead(set);
	ev_timer_stop(set->loop, &set->race);
	for (size_t i = 0; i < set->n; i++) {
		for (unsigned k = 0; k < set->pool_size; k++)
			dot_conn_destroy(set->ups[i].conns[k]);
		free(set->ups[i].conns);
		drop_tickets(&set->ups[i]);
	}
	for (size_t i = 0; i < set->nctxs; i++)
		tls_ctx_destroy(set->ctxs[i]);
	free(set->ctxs);
	free(set->ups);
	free(set->dead);
	free(set);
}

static int healthy(const upstream_t *u, ev_tstamp now)
{
	return u->down_until <= now && !u->stalled;
}

int upstream_set_all_down(const upstream_set_t *set, ev_tstamp now)
{
	for (size_t i = 0; i < set->n; i++)
		if (healthy(&set->ups[i], now))
			return 0;
	return set->n > 0;
}

/* Among the healthy upstreams but `avoid`, by policy. */
static upstream_t *choose_healthy(upstream_set_t *set, const upstream_t *avoid,
				  ev_tstamp now)
{
	upstream_t *best = NULL;
	size_t nhealthy = 0;

	for (size_t k = 0; k < set->n; k++) {
		size_t i = set->policy == POLICY_ROUND_ROBIN ? (set->next_rr + k) % set->n : k;
		upstream_t *u = &set->ups[i];
		if (u == avoid || !healthy(u, now))
			continue;
		nhealthy++;
		if (set->policy == POLICY_ROUND_ROBIN) {
			set->next_rr = i + 1;
			return u;
		}
		if (set->policy == POLICY_ORDERED)
			return u;
		/* RTT: unmeasured upstreams first (in configured order), then
		 * the fastest; now and then a random one, so that the choice
		 * can change. Not while one is unmeasured: trying it is the
		 * exploration, and the order stays the one the user wrote. */
		if (!best || u->srtt_ms < best->srtt_ms)
			best = u;
	}
	if (best && best->srtt_ms > 0 && nhealthy > 1 &&
	    rand_u32() % EXPLORE_ONE_IN == 0) {
		size_t pick = rand_u32() % nhealthy;
		for (size_t i = 0; i < set->n; i++) {
			upstream_t *u = &set->ups[i];
			if (u != avoid && healthy(u, now) && pick-- == 0)
				return u;
		}
	}
	return best;
}

/* A healthy upstream, else the one that failed longest ago (rather than
 * failing at once: it may be back). `avoid` only when nothing else is
 * left. */
static upstream_t *choose(upstream_set_t *set, const upstream_t *avoid)
{
	ev_tstamp now = ev_now(set->loop);
	upstream_t *u = choose_healthy(set, avoid, now), *oldest = NULL;

	if (u)
		return u;
	for (size_t i = 0; i < set->n; i++) {
		u = &set->ups[i];
		if (u != avoid && (!oldest || u->last_fail < oldest->last_fail))
			oldest = u;
	}
	return oldest ? oldest : (upstream_t *)avoid;
}

/* A connection with room, preferring ready ones; else a new one while
 * the pool has a free slot; else NULL. */
static dot_conn_t *conn_for(upstream_t *u)
{
	upstream_set_t *set = u->set;
	dot_conn_t *best = NULL;
	int free_slot = -1;
	char err[256];

	for (unsigned i = 0; i < set->pool_size; i++) {
		dot_conn_t *c = u->conns[i];
		if (!c) {
			if (free_slot < 0)
				free_slot = (int)i;
			continue;
		}
		if (!dot_conn_has_room(c))
			continue;
		if (dot_conn_state(c) == DOT_READY)
			return c;
		if (!best)
			best = c;
	}
	if (best || free_slot < 0)
		return best;
	struct ticket t = take_ticket(u);
	int resuming = t.data != NULL;
	dot_conn_t *c = dot_conn_create(set->loop, u->cfg, u->tls, &u->opts,
					t.data, t.len, &CONN_EVENTS,
					u, err, sizeof(err));
	free(t.data);  /* used up, whatever became of the connection */
	if (!c) {
		log_warn("upstream %s: %s", u->cfg->text, err);
		stats_inc_at(&u->stats, SU_HS_FAILURES, STATS_REASON_CONNECT);
		mark_failed(u);
		return NULL;
	}
	log_debug("upstream %s: connecting%s", u->cfg->text,
		  resuming ? " (with a session ticket)" : "");
	u->conns[free_slot] = c;
	return c;
}

static void wait_push(upstream_set_t *set, upstream_req_t *req)
{
	req->waiting = 1;
	TAILQ_INSERT_TAIL(&set->waiting, req, wait);
	set->nwaiting++;
}

static void wait_remove(upstream_set_t *set, upstream_req_t *req)
{
	TAILQ_REMOVE(&set->waiting, req, wait);
	req->waiting = 0;
	set->nwaiting--;
}

/* No upstream is healthy, and none has a connection, ready or not: a
 * waiting query has nothing left to wait for. */
static int all_down(upstream_set_t *set)
{
	ev_tstamp now = ev_now(set->loop);

	for (size_t i = 0; i < set->n; i++) {
		if (healthy(&set->ups[i], now))
			return 0;
		for (unsigned k = 0; k < set->pool_size; k++)
			if (set->ups[i].conns[k])
				return 0;
	}
	return 1;
}

/* Hand every waiting query back through on_failed (counted: it failed
 * for want of an upstream). A query resent from its callback queues
 * again behind the others and is not handed back twice: the loop stops
 * at the last one queued now (or after as many, should a callback have
 * cancelled that one). */
static void fail_waiting(upstream_set_t *set, const char *why)
{
	upstream_req_t *last = TAILQ_LAST(&set->waiting, upstream_waitq), *req;
	size_t n = set->nwaiting;

	while (n-- > 0 && (req = TAILQ_FIRST(&set->waiting)) != NULL) {
		int done = req == last;
		wait_remove(set, req);
		req->req.on_failed(&req->req, 1, why);
		if (done)
			break;
	}
}

/* The upstream with a ready connection with room and the lowest
 * smoothed RTT, other than `avoid`; NULL when none is ready. */
static upstream_t *choose_ready(upstream_set_t *set, const upstream_t *avoid)
{
	upstream_t *best = NULL;

	for (size_t i = 0; i < set->n; i++) {
		upstream_t *u = &set->ups[i];
		if (u != avoid && ready_conn(u) && (!best || u->srtt_ms < best->srtt_ms))
			best = u;
	}
	return best;
}

/* Try to put req on a ready connection: 0, -EAGAIN (it waits: pools full
 * or connections on their way), or another negative errno. A query never
 * rides on a connection still connecting: when the chosen upstream's is
 * not ready, a ready one of another upstream takes it, and otherwise it
 * waits for whichever becomes ready first (the chosen upstream's
 * connection goes on, a probe of its health). */
static int try_send(upstream_set_t *set, upstream_req_t *req)
{
	upstream_t *u = choose(set, req->upstream);
	dot_conn_t *c = u ? conn_for(u) : NULL;

	if (!u)
		return -ENETUNREACH;
	if (c && dot_conn_state(c) != DOT_READY) {
		u = choose_ready(set, req->upstream);
		c = u ? ready_conn(u) : NULL;
	}
	if (!c)
		return -EAGAIN;
	req->upstream = u;
	int rc = dot_conn_send(c, &req->req, req->msg, req->msg_len);
	if (rc == 0)
		stats_inc(&u->stats, SU_QUERIES);
	return rc;
}

/* When the race timer should next look: race_delay after the start of
 * the oldest pending connection of an upstream not yet raced; or, with
 * queries waiting and nothing on its way, race_delay from now (a retry:
 * a backoff may have ended). 0: nothing to wait for. */
static ev_tstamp race_due(upstream_set_t *set)
{
	ev_tstamp due = 0;
	int pending = 0;

	for (size_t i = 0; i < set->n; i++) {
		upstream_t *u = &set->ups[i];
		dot_conn_t *c = pending_conn(u);
		if (!c)
			continue;
		pending = 1;
		if (u->stalled || ready_conn(u))
			continue;
		ev_tstamp t = dot_conn_started(c) + set->race_delay;
		if (!due || t < due)
			due = t;
	}
	if (!due && !pending)
		due = ev_now(set->loop) + set->race_delay;
	return due;
}

static void arm_race(upstream_set_t *set)
{
	ev_tstamp due;

	if (set->race_delay <= 0 || ev_is_active(&set->race) ||
	    TAILQ_EMPTY(&set->waiting) || (due = race_due(set)) == 0)
		return;
	due -= ev_now(set->loop);
	ev_timer_set(&set->race, due > 0.001 ? due : 0.001, 0.);
	ev_timer_start(set->loop, &set->race);
}

/* Queries still wait: each upstream whose connection has taken
 * race_delay is set aside until it completes or fails, and the waiting
 * queries are tried again, which starts the next upstream's connection;
 * they go on whichever connection is ready first. */
static void on_race(struct ev_loop *loop, ev_timer *w, int revents)
{
	upstream_set_t *set = w->data;
	ev_tstamp now = ev_now(loop);

	(void)revents;
	if (TAILQ_EMPTY(&set->waiting))
		return;
	for (size_t i = 0; i < set->n; i++) {
		upstream_t *u = &set->ups[i];
		dot_conn_t *c = pending_conn(u);
		if (!c || u->stalled || ready_conn(u) ||
		    now - dot_conn_started(c) < set->race_delay - 0.001)
			continue;
		u->stalled = 1;
		log_info("upstream %s: not connected after %.0f ms; trying the next "
			 "upstream alongside", u->cfg->text,
			 (now - dot_conn_started(c)) * 1000.0);
	}
	send_waiting(set);
	arm_race(set);
}

static void send_waiting(upstream_set_t *set)
{
	upstream_req_t *req;

	while ((req = TAILQ_FIRST(&set->waiting)) != NULL) {
		if (try_send(set, req) == -EAGAIN)
			return;
		/* Sent, or failed for good: either way it leaves the queue. */
		wait_remove(set, req);
	}
}

/* An upstream of this set (a request resent after a reload names one of
 * the old set). */
static int of_set(const upstream_set_t *set, const void *u)
{
	return (const upstream_t *)u >= set->ups &&
	       (const upstream_t *)u < set->ups + set->n;
}

int upstream_send(upstream_set_t *set, upstream_req_t *req, uint8_t *msg,
		  size_t len)
{
	int rc;

	req->msg = msg;
	req->msg_len = len;
	if (req->upstream && of_set(set, req->upstream))
		stats_inc(&((upstream_t *)req->upstream)->stats, SU_RESENDS);
	/* Behind the queue, if there is one: keep the order. */
	rc = TAILQ_EMPTY(&set->waiting) ? try_send(set, req) : -EAGAIN;
	if (rc != -EAGAIN)
		return rc;
	if (set->nwaiting >= set->max_waiting)
		return -ENOBUFS;
	wait_push(set, req);
	arm_race(set);
	return 0;
}

void upstream_cancel(upstream_set_t *set, upstream_req_t *req)
{
	if (req->waiting)
		wait_remove(set, req);
	else
		dot_conn_cancel(&req->req);
}

void upstream_set_drain(upstream_set_t *set)
{
	for (size_t i = 0; i < set->n; i++)
		for (unsigned k = 0; k < set->pool_size; k++)
			if (set->ups[i].conns[k])
				dot_conn_drain(set->ups[i].conns[k]);
}

void upstream_set_retire(upstream_set_t *set)
{
	upstream_req_t *req;

	while ((req = TAILQ_FIRST(&set->waiting)) != NULL) {
		wait_remove(set, req);
		req->req.on_failed(&req->req, 0, "configuration reloaded");
	}
	upstream_set_drain(set);
}

int upstream_set_idle(const upstream_set_t *set)
{
	if (!TAILQ_EMPTY(&set->waiting) || set->ndead)
		return 0;
	for (size_t i = 0; i < set->n; i++)
		for (unsigned k = 0; k < set->pool_size; k++)
			if (set->ups[i].conns[k])
				return 0;
	return 1;
}

unsigned upstream_set_reset(upstream_set_t *set)
{
	unsigned closed = 0;

	for (size_t i = 0; i < set->n; i++) {
		upstream_t *u = &set->ups[i];
		u->fails = 0;
		u->down_until = 0;
		u->stalled = 0;   /* raced again if its connection still hangs */
		for (unsigned k = 0; k < set->pool_size; k++) {
			dot_conn_t *c = u->conns[k];
			if (c && dot_conn_state(c) == DOT_READY && dot_conn_inflight(c) == 0) {
				dot_conn_drain(c);   /* idle: closes now, on_closed frees the slot */
				closed++;
			}
		}
	}
	return closed;
}

void upstream_expire(upstream_set_t *set, upstream_req_t *req)
{
	if (req->upstream && of_set(set, req->upstream))
		stats_inc(&((upstream_t *)req->upstream)->stats, SU_TIMEOUTS);
	dot_conn_expire(&req->req);
}

void upstream_set_use_stats(upstream_set_t *set, stats_global_t *g)
{
	set->g = g;
}

const stats_global_t *upstream_set_stats(const upstream_set_t *set)
{
	return set->g;
}

/* The counters plus the gauges of the moment; answers dropped on open
 * connections are added to the global count. */
void upstream_set_gather(const upstream_set_t *set, stats_snapshot_t *out)
{
	stats_global_t g;

	memset(&g, 0, sizeof(g));
	for (size_t i = 0; i < set->n; i++) {
		const upstream_t *u = &set->ups[i];
		stats_upstream_t s = u->stats;
		unsigned open = 0;
		for (unsigned k = 0; k < set->pool_size; k++) {
			if (!u->conns[k])
				continue;
			open++;
			g.v[SG_UP_UNMATCHED] += dot_conn_stats(u->conns[k])->unmatched;
		}
		stats_set(&s, SU_CONNECTIONS, open);
		/* Not healthy(): after its backoff a dead upstream is
		 * "healthy" again until the next try fails. */
		stats_set(&s, SU_HEALTHY, u->fails == 0);
		stats_set(&s, SU_SRTT, u->srtt_ms / 1000.0);
		stats_snapshot_add_upstream(out, u->cfg->text, &s);
	}
	stats_snapshot_add_global(out, &g);
}
