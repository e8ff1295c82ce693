/* upstream: the set of DoT upstreams, their health, the choice of one for
 * each query, and each upstream's pool of connections.
 *
 * Choice among the healthy upstreams by policy: lowest smoothed RTT (with
 * one query in 32 sent to a random one), round-robin, or ordered
 * (failover). An upstream whose connection failed is down for a backoff
 * that doubles per failure from UPSTREAM_BACKOFF_MIN_MS up to
 * UPSTREAM_BACKOFF_MAX_MS, then tried again. When all are down, the one
 * that failed longest ago is tried rather than failing at once. Within an upstream: a connection with room, preferring
 * ready ones; else a new connection while the pool has room.
 *
 * A query goes on a ready connection only. When the chosen upstream's
 * connection is still on its way, a ready connection of another upstream
 * takes the query; when none is ready, the query waits, and if the
 * connection is not ready within connection-race-delay the next healthy
 * upstream connects alongside (happy eyeballs, RFC 8305): waiting queries
 * go on whichever is ready first. The other connection stays in its pool
 * if it completes; a failed or timed-out one backs its upstream off. */
#ifndef DOTSTUB_UPSTREAM_H
#define DOTSTUB_UPSTREAM_H

#include <ev.h>
#include <sys/queue.h>

#include "dotstub/config.h"
#include "dotstub/dot_conn.h"
#include "dotstub/stats.h"
#include "dotstub/tls.h"

#define UPSTREAM_BACKOFF_MIN_MS 250
#define UPSTREAM_BACKOFF_MAX_MS 4000

typedef struct upstream_set upstream_set_t;

/* A query as the pool carries it: the request on the wire, and what the
 * pool keeps while the request waits for room or is resent. Embedded by
 * its owner, who fills req's question and callbacks; the rest is the
 * pool's (read `waiting`, never write it). */
typedef struct upstream_req {
	dot_req_t req;
	uint8_t *msg;              /* to send once a connection has room */
	size_t msg_len;
	void *upstream;            /* where it went last: avoided on a resend */
	TAILQ_ENTRY(upstream_req) wait;
	int waiting;               /* queued for room, not on the wire yet */
} upstream_req_t;

/* cfg (its upstreams array) must outlive the set. Loads each distinct
 * set of trust anchors once; returns NULL with err naming the file when
 * one cannot be loaded. */
upstream_set_t *upstream_set_create(struct ev_loop *loop, const config_t *cfg,
				    char *err, size_t errlen);
void upstream_set_destroy(upstream_set_t *set);

/* Send msg (kept by reference until answered or cancelled) for req on the
 * best connection, avoiding the upstream it went to last (the one that
 * just failed) when another exists. When every pool is full, req
 * waits (max-waiting at most) for a connection with room. Returns 0, or a
 * negative errno (-ENOBUFS: the wait queue is full). */
int upstream_send(upstream_set_t *set, upstream_req_t *req, uint8_t *msg,
		  size_t len);

/* 1 when every upstream of the set is known down at `now` (the loop's
 * time): each failed and is backing off, so a query sent now would only
 * go to one that failed last time. Serve-stale answers at once then. */
int upstream_set_all_down(const upstream_set_t *set, ev_tstamp now);

/* Withdraw req, queued or in flight; no callback follows. */
void upstream_cancel(upstream_set_t *set, upstream_req_t *req);

/* Stop taking queries: drain every connection (shutdown). */
void upstream_set_drain(upstream_set_t *set);

/* Replaced by a new set (reload): queries still waiting are handed back
 * through their on_failed (a free resend, which goes to the new set), and
 * connections drain. Destroy the set once upstream_set_idle(). */
void upstream_set_retire(upstream_set_t *set);
int upstream_set_idle(const upstream_set_t *set);

/* req's attempt timed out (counted against the upstream it is on); see
 * dot_conn_expire(). */
void upstream_expire(upstream_set_t *set, upstream_req_t *req);

/* The network changed or the machine slept (netwatch): close every idle
 * connection (its path or source address may be gone; a busy one proves
 * itself or times out) and end every backoff, so that the next query
 * tries each upstream at once. Session tickets are kept: the reconnect is
 * a resumption. Returns the number of connections closed. */
unsigned upstream_set_reset(upstream_set_t *set);

/* Count the set's global events (handshakes, failures, dropped answers)
 * in g, the thread's block, which must outlive the set. Until then the
 * set counts in a block of its own. */
void upstream_set_use_stats(upstream_set_t *set, stats_global_t *g);
/* That block (tests read it): handshakes, resumed, failures; answers
 * dropped on connections still open are not in it yet. */
const stats_global_t *upstream_set_stats(const upstream_set_t *set);
/* Add the set's per-upstream counters and gauges (connections, health,
 * smoothed RTT) to out, labelled with each upstream's text. */
void upstream_set_gather(const upstream_set_t *set, stats_snapshot_t *out);

#endif
