#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/listener_tcp.h"
#include "dotstub/listener_udp.h"
#include "dotstub/log.h"
#include "dotstub/netwatch.h"
#include "dotstub/worker.h"
#include "dotstub/xmalloc.h"

/* An upstream set replaced by a reload, kept (with the configuration it
 * points into) until its last query is done. */
typedef struct retired {
	struct retired *next;
	shared_config_t *sc;
	upstream_set_t *ups;
	forward_set_t *fwd;
} retired_t;

struct worker {
	struct ev_loop *loop;
	int own_loop;             /* a thread of its own runs it */
	pthread_t thread;
	int started, joined;
	int stopping;
	shared_config_t *sc;      /* the running configuration */
	config_t cfg;             /* its copy that listeners and queries read */
	unsigned count;           /* workers in all: each caches 1/count */
	upstream_set_t *ups;
	forward_set_t *fwd;       /* the forward zones' groups */
	query_env_t *env;
	netwatch_t *nw;
	int announce;             /* the first worker: says what all do */
	listener_udp_t **udp;
	listener_tcp_t **tcp;
	size_t nlisten;
	retired_t *retired;
	ev_timer retire_timer;
	stats_global_t stats;     /* this thread's counters */
	stats_snapshot_t *archive;  /* per-upstream counts of freed sets */
	ev_timer drain;
	ev_tstamp drain_started;
	double drain_limit;
	ev_async wake;            /* the main thread has posted something */
	ev_prepare publish;       /* the stats snapshot, once a loop pass */
	stats_snapshot_t *scratch;  /* the thread's, gathered into */
	pthread_mutex_t lock;     /* guards the three below */
	shared_config_t *posted;  /* a reload to apply */
	int posted_flush;         /* SIGUSR2: empty the cache */
	double posted_stop;       /* > 0: stop, drain this long */
	stats_snapshot_t *snapshot;  /* swapped with scratch */
	atomic_int done;
};

shared_config_t *shared_config_new(config_t *cfg)
{
	shared_config_t *sc = xcalloc(1, sizeof(*sc));

	sc->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	atomic_init(&sc->refs, 1);
	return sc;
}

shared_config_t *shared_config_hold(shared_config_t *sc)
{
	atomic_fetch_add(&sc->refs, 1);
	return sc;
}

void shared_config_release(shared_config_t *sc)
{
	if (!sc || atomic_fetch_sub(&sc->refs, 1) != 1)
		return;
	config_free(&sc->cfg);
	free(sc);
}

static void use_config(worker_t *w, shared_config_t *sc)
{
	w->sc = sc;
	w->cfg = sc->cfg;   /* shallow: sc keeps the pointed-to parts */
	w->cfg.cache_size = sc->cfg.cache_size / w->count;
}

/* The global counts (handshakes and the like) are the thread's all
 * along; per-upstream counters of freed sets are in the archive, so that
 * a reload does not set a counter back. */
static void gather_stats(const worker_t *w, stats_snapshot_t *out)
{
	stats_global_t g = w->stats;

	query_env_fill_stats(w->env, &g);
	stats_snapshot_add_global(out, &g);
	if (w->archive)
		stats_snapshot_merge(out, w->archive);
	upstream_set_gather(w->ups, out);
	forward_set_gather(w->fwd, out);
	for (const retired_t *r = w->retired; r; r = r->next) {
		upstream_set_gather(r->ups, out);
		forward_set_gather(r->fwd, out);
	}
}

static void free_retired(worker_t *w, retired_t *r)
{
	stats_snapshot_t *last = stats_snapshot_new();

	upstream_set_gather(r->ups, last);
	forward_set_gather(r->fwd, last);
	if (!w->archive)
		w->archive = stats_snapshot_new();
	stats_snapshot_add_counters(w->archive, last);
	stats_snapshot_free(last);
	upstream_set_destroy(r->ups);
	forward_set_destroy(r->fwd);
	shared_config_release(r->sc);
	free(r);
}

static void on_retire_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	worker_t *wk = w->data;
	retired_t **p = &wk->retired;

	(void)revents;
	while (*p) {
		retired_t *r = *p;
		if (!upstream_set_idle(r->ups) || !forward_set_idle(r->fwd)) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		free_retired(wk, r);
	}
	if (!wk->retired)
		ev_timer_stop(loop, w);
}

/* The old set keeps its queries (and its configuration) until they are
 * done; new queries and resends go to the new one. The cache keeps its
 * answers under the new limits, unless the upstreams or the forward
 * groups changed: then it is emptied, all of it (the
 * simplest correct choice: answers from servers the configuration no
 * longer names, or trusts with other pins, or that now answer for
 * another zone, must not outlive it). */
static void apply_reload(worker_t *w, shared_config_t *sc)
{
	char err[512];
	upstream_set_t *ups = upstream_set_create(w->loop, &sc->cfg, err, sizeof(err));
	forward_set_t *fwd = ups ? forward_set_create(w->loop, &sc->cfg, err, sizeof(err))
				 : NULL;
	int same = config_same_upstreams(&w->sc->cfg, &sc->cfg);
	retired_t *r;

	if (!fwd) {
		log_error("reload: trust anchors: %s; keeping the running configuration", err);
		upstream_set_destroy(ups);
		shared_config_release(sc);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->sc = w->sc;
	r->ups = w->ups;
	r->fwd = w->fwd;
	r->next = w->retired;
	w->retired = r;
	use_config(w, sc);
	w->ups = ups;
	upstream_set_use_stats(ups, &w->stats);
	w->fwd = fwd;
	forward_set_use_stats(fwd, &w->stats);
	query_env_set_upstreams(w->env, ups);
	query_env_set_forward(w->env, fwd);
	query_env_reconfigure(w->env);
	if (!same)
		log_info("reload: the upstreams or forward zones changed: "
			 "%zu cached answers dropped",
			 query_env_flush_cache(w->env));
	upstream_set_retire(r->ups);
	forward_set_retire(r->fwd);
	ev_timer_again(w->loop, &w->retire_timer);
}

static void on_drain_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	worker_t *w = t->data;

	(void)revents;
	if (query_inflight(w->env) > 0 &&
	    ev_now(loop) - w->drain_started < w->drain_limit)
		return;
	ev_timer_stop(loop, t);
	atomic_store(&w->done, 1);
	if (w->own_loop)
		ev_break(loop, EVBREAK_ALL);
}

static void begin_drain(worker_t *w, double limit)
{
	for (size_t i = 0; i < w->nlisten; i++) {
		listener_udp_stop(w->udp[i]);
		listener_tcp_stop(w->tcp[i]);
	}
	w->drain_limit = limit;
	w->drain_started = ev_now(w->loop);
	ev_timer_init(&w->drain, on_drain_tick, 0., 0.05);
	w->drain.data = w;
	ev_timer_start(w->loop, &w->drain);
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	worker_t *w = a->data;
	shared_config_t *sc;
	double stop;
	int flush;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&w->lock);
	sc = w->posted;
	stop = w->posted_stop;
	flush = w->posted_flush;
	w->posted = NULL;
	w->posted_stop = 0;
	w->posted_flush = 0;
	pthread_mutex_unlock(&w->lock);
	if (flush)
		log_info("cache flushed: %zu answers dropped",
			 query_env_flush_cache(w->env));
	if (sc && !w->stopping)
		apply_reload(w, sc);
	else
		shared_config_release(sc);
	if (stop > 0 && !w->stopping++)
		begin_drain(w, stop);
}

static void on_publish(struct ev_loop *loop, ev_prepare *p, int revents)
{
	worker_t *w = p->data;
	stats_snapshot_t *s = w->scratch;

	(void)loop;
	(void)revents;
	stats_snapshot_clear(s);
	gather_stats(w, s);
	pthread_mutex_lock(&w->lock);
	w->scratch = w->snapshot;
	w->snapshot = s;
	pthread_mutex_unlock(&w->lock);
}

/* The network changed or the machine slept: stale connections go, every
 * upstream may be tried at once. Every worker resets its own pools; the
 * first one says so, once per event, at info. */
static void on_net_reset(void *arg, const char *why)
{
	worker_t *w = arg;
	unsigned closed = upstream_set_reset(w->ups) + forward_set_reset(w->fwd);

	log_msg(w->announce ? LOG_LVL_INFO : LOG_LVL_DEBUG,
		"%s: upstream connections reset (%u idle closed), "
		"every upstream tried again at once", why, closed);
}

/* The first worker says what it bound; the others bind the same. */
static int bind_listeners(worker_t *w, int shared, int announce, char *err,
			  size_t errlen)
{
	const config_t *cfg = &w->cfg;
	char why[256];

	w->udp = xcalloc(cfg->nlisten, sizeof(*w->udp));
	w->tcp = xcalloc(cfg->nlisten, sizeof(*w->tcp));
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const config_listen_t *l = &cfg->listen[i];
		listener_udp_t *u = listener_udp_create(w->loop, l, shared, w->env,
							why, sizeof(why));
		listener_tcp_t *t = u ? listener_tcp_create(w->loop, l, shared, cfg,
							    w->env, why, sizeof(why)) : NULL;
		if (!t) {
			listener_udp_destroy(u);
			if (!l->optional) {
				snprintf(err, errlen, "cannot listen on %s", why);
				return -1;
			}
			if (announce)
				log_warn("not listening on %s", why);
			continue;
		}
		w->udp[w->nlisten] = u;
		w->tcp[w->nlisten] = t;
		w->nlisten++;
		if (announce)
			log_info("listening on %s (udp, tcp%s)", l->text,
				 shared ? ", a socket per thread" : "");
	}
	if (w->nlisten == 0) {
		snprintf(err, errlen, "no listener could be bound");
		return -1;
	}
	return 0;
}

static void init_watchers(worker_t *w)
{
	ev_init(&w->retire_timer, on_retire_tick);
	w->retire_timer.repeat = 0.5;
	w->retire_timer.data = w;
	ev_init(&w->drain, on_drain_tick);
	ev_async_init(&w->wake, on_wake);
	w->wake.data = w;
	ev_async_start(w->loop, &w->wake);
	/* On the main loop the main thread reads the counts directly. */
	if (w->own_loop) {
		w->scratch = stats_snapshot_new();
		w->snapshot = stats_snapshot_new();
		ev_prepare_init(&w->publish, on_publish);
		w->publish.data = w;
		ev_prepare_start(w->loop, &w->publish);
	}
}

worker_t *worker_create(struct ev_loop *loop, shared_config_t *sc,
			unsigned index, unsigned count, char *err,
			size_t errlen)
{
	worker_t *w = xcalloc(1, sizeof(*w));

	pthread_mutex_init(&w->lock, NULL);
	w->own_loop = loop == NULL;
	w->loop = loop ? loop : ev_loop_new(EVFLAG_AUTO);
	w->count = count;
	use_config(w, shared_config_hold(sc));
	init_watchers(w);
	w->ups = upstream_set_create(w->loop, &w->cfg, err, errlen);
	if (!w->ups)
		goto fail;
	upstream_set_use_stats(w->ups, &w->stats);
	w->fwd = forward_set_create(w->loop, &w->cfg, err, errlen);
	if (!w->fwd)
		goto fail;
	forward_set_use_stats(w->fwd, &w->stats);
	w->env = query_env_create(w->loop, &w->cfg, w->ups);
	query_env_use_stats(w->env, &w->stats);
	query_env_set_forward(w->env, w->fwd);
	w->announce = index == 0;
	w->nw = netwatch_create(w->loop, on_net_reset, w, w->announce);
	if (bind_listeners(w, count > 1, index == 0, err, errlen) < 0)
		goto fail;
	return w;
fail:
	worker_destroy(w);
	return NULL;
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;

	ev_run(w->loop, 0);
	return NULL;
}

int worker_start(worker_t *w, char *err, size_t errlen)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(rc));
		return -1;
	}
	w->started = 1;
	return 0;
}

void worker_set_dnstap(worker_t *w, dnstap_queue_t *q)
{
	query_env_set_dnstap(w->env, q);
}

void worker_after_fork(worker_t *w)
{
	if (w->own_loop)
		ev_loop_fork(w->loop);
}

void worker_reload(worker_t *w, shared_config_t *sc)
{
	shared_config_t *old;

	pthread_mutex_lock(&w->lock);
	old = w->posted;   /* two reloads in a row: the last one wins */
	w->posted = shared_config_hold(sc);
	pthread_mutex_unlock(&w->lock);
	shared_config_release(old);
	ev_async_send(w->loop, &w->wake);
}

void worker_flush_cache(worker_t *w)
{
	pthread_mutex_lock(&w->lock);
	w->posted_flush = 1;
	pthread_mutex_unlock(&w->lock);
	ev_async_send(w->loop, &w->wake);
}

void worker_stop(worker_t *w, double drain)
{
	pthread_mutex_lock(&w->lock);
	w->posted_stop = drain > 0 ? drain : 1e-9;
	pthread_mutex_unlock(&w->lock);
	ev_async_send(w->loop, &w->wake);
}

int worker_done(const worker_t *w)
{
	return atomic_load(&w->done);
}

void worker_stats(worker_t *w, stats_snapshot_t *out)
{
	if (!w->started || w->joined) {
		gather_stats(w, out);
		return;
	}
	pthread_mutex_lock(&w->lock);
	stats_snapshot_merge(out, w->snapshot);
	pthread_mutex_unlock(&w->lock);
}

void worker_join(worker_t *w)
{
	if (!w->started || w->joined)
		return;
	if (!worker_done(w))
		worker_stop(w, 0);   /* a failed start-up: end at once */
	pthread_join(w->thread, NULL);
	w->joined = 1;
}

void worker_destroy(worker_t *w)
{
	if (!w)
		return;
	worker_join(w);
	/* Queries may point into retired sets and hold TCP clients. */
	query_env_destroy(w->env);
	while (w->retired) {
		retired_t *r = w->retired;
		w->retired = r->next;
		free_retired(w, r);
	}
	for (size_t i = 0; i < w->nlisten; i++) {
		listener_tcp_destroy(w->tcp[i]);
		listener_udp_destroy(w->udp[i]);
	}
	free(w->udp);
	free(w->tcp);
	netwatch_destroy(w->nw);
	upstream_set_destroy(w->ups);
	forward_set_destroy(w->fwd);
	ev_timer_stop(w->loop, &w->retire_timer);
	ev_timer_stop(w->loop, &w->drain);
	ev_async_stop(w->loop, &w->wake);
	if (w->own_loop) {
		ev_prepare_stop(w->loop, &w->publish);
		ev_loop_destroy(w->loop);
	}
	stats_snapshot_free(w->archive);
	stats_snapshot_free(w->scratch);
	stats_snapshot_free(w->snapshot);
	shared_config_release(w->posted);
	shared_config_release(w->sc);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
