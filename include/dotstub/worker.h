/* worker: one event loop's share of the daemon: its listeners, query
 * environment (with its cache) and upstream pools, and what crosses
 * between it and the main thread: reloads, the stop, statistics.
 *
 * With threads = 1 the one worker runs on the main thread's loop. With
 * more, each runs a loop of its own in a thread of its own, on sockets of
 * its own bound with SO_REUSEPORT; nothing in a worker is shared with
 * another but the read-only configuration. */
#ifndef DOTSTUB_WORKER_H
#define DOTSTUB_WORKER_H

#include <ev.h>
#include <stdatomic.h>

#include "dotstub/config.h"
#include "dotstub/dnstap.h"
#include "dotstub/query.h"
#include "dotstub/stats.h"
#include "dotstub/upstream.h"

/* A configuration shared by the main thread and the workers; freed with
 * its last reference (a reload may leave old queries on an old one). */
typedef struct {
	config_t cfg;
	atomic_uint refs;
} shared_config_t;

/* Takes over cfg's contents (cfg is left empty); one reference. */
shared_config_t *shared_config_new(config_t *cfg);
shared_config_t *shared_config_hold(shared_config_t *sc);
void shared_config_release(shared_config_t *sc);

typedef struct worker worker_t;

/* Worker `index` of `count`: bind its listeners (now: before privileges
 * are dropped), SO_REUSEPORT when count > 1; its cache gets 1/count of
 * cache-size. loop NULL: a loop of its own, run in a thread by
 * worker_start(); else it runs on loop. Returns NULL with err ("cannot
 * listen on 127.0.0.1@53 (udp): bind: ...") on failure. */
worker_t *worker_create(struct ev_loop *loop, shared_config_t *sc,
			unsigned index, unsigned count, char *err,
			size_t errlen);
/* Start the thread of a worker with a loop of its own, signals blocked
 * (the main thread takes them). Returns 0, or -1 with err. */
int worker_start(worker_t *w, char *err, size_t errlen);
/* Log this worker's queries to q (dnstap; NULL: off). Before
 * worker_start(); q must outlive the worker's loop. */
void worker_set_dnstap(worker_t *w, dnstap_queue_t *q);
/* After fork (-d): every worker loop must be told. */
void worker_after_fork(worker_t *w);

/* From any thread: */
/* New queries go to sc's upstreams from now on (a reference is taken);
 * the cache keeps its answers (resized to sc's cache-size share), all
 * dropped when the upstreams changed. */
void worker_reload(worker_t *w, shared_config_t *sc);
/* Empty the cache (SIGUSR2); logged by the worker when done. */
void worker_flush_cache(worker_t *w);
/* Stop reading, let open queries finish (at most drain seconds). */
void worker_stop(worker_t *w, double drain);
/* Drained (or out of time) after worker_stop(). */
int worker_done(const worker_t *w);
/* Add the worker's counters and gauges to out: from its last loop pass
 * (a thread of its own), or as they are (on the caller's loop, or
 * joined). */
void worker_stats(worker_t *w, stats_snapshot_t *out);

/* Wait for the thread, if any (asking it to stop first if need be); the
 * counts are then exact. */
void worker_join(worker_t *w);
/* worker_join(), then free everything. */
void worker_destroy(worker_t *w);

#endif
