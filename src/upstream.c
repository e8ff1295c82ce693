#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/log.h"
#include "dotstub/upstream.h"
#include "dotstub/xmalloc.h"

typedef struct upstream {
	upstream_set_t *set;
	const config_upstream_t *cfg;
	tls_ctx_t *tls;            /* shared with upstreams of the same anchors */
	dot_conn_t **conns;        /* pool_size slots, NULL = free */
	unsigned fails;            /* connection failures in a row */
	ev_tstamp down_until;      /* backoff: not chosen before this */
	ev_tstamp last_fail;
	uint8_t *ticket;           /* to resume the next connection */
	size_t ticket_len;
} upstream_t;

struct upstream_set {
	struct ev_loop *loop;
	tls_ctx_t **ctxs;          /* one per distinct ca-file */
	size_t nctxs;
	upstream_t *ups;
	size_t n;
	unsigned pool_size;
	dot_conn_opts_t opts;
	/* Closed connections are freed after the callbacks that closed
	 * them have returned. */
	dot_conn_t **dead;
	size_t ndead;
	ev_check reaper;
	upstream_stats_t stats;
};

static void on_ready(void *arg, dot_conn_t *c, int resumed, double ms)
{
	upstream_t *u = arg;

	(void)c;
	(void)ms;
	u->fails = 0;
	u->down_until = 0;
	if (resumed)
		u->set->stats.resumed++;
	else
		u->set->stats.handshakes++;
}

static void on_ticket(void *arg, const uint8_t *data, size_t len)
{
	upstream_t *u = arg;

	free(u->ticket);
	u->ticket = xmalloc(len);
	memcpy(u->ticket, data, len);
	u->ticket_len = len;
}

static void mark_failed(upstream_t *u)
{
	ev_tstamp now = ev_now(u->set->loop);
	unsigned ms = UPSTREAM_BACKOFF_MIN_MS;

	for (unsigned i = 1; i < u->fails && ms < UPSTREAM_BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > UPSTREAM_BACKOFF_MAX_MS)
		ms = UPSTREAM_BACKOFF_MAX_MS;
	u->fails++;
	u->last_fail = now;
	u->down_until = now + ms / 1000.0;
	u->set->stats.conn_failures++;
	/* A ticket from a server that now fails may be what fails. */
	free(u->ticket);
	u->ticket = NULL;
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
	set->stats.unmatched += dot_conn_stats(c)->unmatched;
	set->dead = xrealloc(set->dead, (set->ndead + 1) * sizeof(*set->dead));
	set->dead[set->ndead++] = c;
	ev_check_start(set->loop, &set->reaper);
}

static const dot_conn_events_t CONN_EVENTS = {
	.on_ready = on_ready,
	.on_ticket = on_ticket,
	.on_closed = on_closed,
};

static void reap(struct ev_loop *loop, ev_check *w, int revents)
{
	upstream_set_t *set = w->data;

	(void)revents;
	for (size_t i = 0; i < set->ndead; i++)
		dot_conn_destroy(set->dead[i]);
	set->ndead = 0;
	ev_check_stop(loop, w);
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
	set->n = cfg->nupstreams;
	set->pool_size = cfg->pool_size ? cfg->pool_size : 1;
	set->opts.connect_timeout_ms = cfg->connect_timeout_ms;
	set->opts.idle_timeout_ms = cfg->idle_timeout_ms;
	set->opts.max_inflight = cfg->max_inflight;
	set->ups = xcalloc(set->n, sizeof(upstream_t));
	for (size_t i = 0; i < set->n; i++) {
		set->ups[i].set = set;
		set->ups[i].cfg = &cfg->upstreams[i];
		set->ups[i].conns = xcalloc(set->pool_size, sizeof(dot_conn_t *));
	}
	ev_check_init(&set->reaper, reap);
	set->reaper.data = set;
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
	reap(set->loop, &set->reaper, 0);
	for (size_t i = 0; i < set->n; i++) {
		for (unsigned k = 0; k < set->pool_size; k++)
			dot_conn_destroy(set->ups[i].conns[k]);
		free(set->ups[i].conns);
		free(set->ups[i].ticket);
	}
	for (size_t i = 0; i < set->nctxs; i++)
		tls_ctx_destroy(set->ctxs[i]);
	free(set->ctxs);
	free(set->ups);
	free(set->dead);
	free(set);
}

/* The upstream to use: healthy ones in order, else the one that failed
 * longest ago. `avoid` is skipped when anything else is left. */
static upstream_t *choose(upstream_set_t *set, const upstream_t *avoid)
{
	ev_tstamp now = ev_now(set->loop);
	upstream_t *oldest = NULL;

	for (size_t i = 0; i < set->n; i++) {
		upstream_t *u = &set->ups[i];
		if (u == avoid)
			continue;
		if (u->down_until <= now)
			return u;
		if (!oldest || u->last_fail < oldest->last_fail)
			oldest = u;
	}
	return oldest ? oldest : (upstream_t *)avoid;
}

/* A connection with room, preferring ready ones; else a new one. */
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
	dot_conn_t *c = dot_conn_create(set->loop, u->cfg, u->tls, &set->opts,
					u->ticket, u->ticket_len, &CONN_EVENTS,
					u, err, sizeof(err));
	if (!c) {
		log_warn("upstream %s: %s", u->cfg->text, err);
		mark_failed(u);
		return NULL;
	}
	log_debug("upstream %s: connecting%s", u->cfg->text,
		  u->ticket ? " (with a session ticket)" : "");
	u->conns[free_slot] = c;
	return c;
}

int upstream_send(upstream_set_t *set, dot_req_t *req, uint8_t *msg,
		  size_t len)
{
	upstream_t *u = choose(set, req->upstream);
	dot_conn_t *c;

	if (!u)
		return -ENETUNREACH;
	c = conn_for(u);
	if (!c)
		return -EAGAIN;
	req->upstream = u;
	return dot_conn_send(c, req, msg, len);
}

const char *upstream_name(const void *upstream)
{
	const upstream_t *u = upstream;

	return u ? u->cfg->text : "(none)";
}

void upstream_set_drain(upstream_set_t *set)
{
	for (size_t i = 0; i < set->n; i++)
		for (unsigned k = 0; k < set->pool_size; k++)
			if (set->ups[i].conns[k])
				dot_conn_drain(set->ups[i].conns[k]);
}

void upstream_set_stats(const upstream_set_t *set, upstream_stats_t *out)
{
	*out = set->stats;
	for (size_t i = 0; i < set->n; i++)
		for (unsigned k = 0; k < set->pool_size; k++)
			if (set->ups[i].conns[k])
				out->unmatched += dot_conn_stats(set->ups[i].conns[k])->unmatched;
}
