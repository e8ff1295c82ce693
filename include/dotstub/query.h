/* query: one query's life, client -> upstream -> client: validation, the
 * upstream message, a deadline, one resend elsewhere when a connection
 * dies, and the answer (or SERVFAIL, FORMERR, NOTIMP) back to the client
 * with its own ID. */
#ifndef DOTSTUB_QUERY_H
#define DOTSTUB_QUERY_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dotstub/config.h"
#include "dotstub/upstream.h"

typedef struct query_env query_env_t;

/* How an answer gets back to the client that asked. The query module
 * calls hold(owner) when it keeps the client past query_submit() and
 * release(owner) when done with it (both may be NULL: UDP listeners live
 * as long as the loop). */
typedef struct {
	void (*reply)(void *owner, const struct sockaddr_storage *addr,
		      socklen_t addrlen, const uint8_t *msg, size_t len);
	void (*hold)(void *owner);
	void (*release)(void *owner);
	void *owner;
	int udp;   /* answers must fit the client's UDP size */
} query_client_t;

/* Upper bounds (seconds) of the answer-time histogram's buckets; a last,
 * implicit bucket takes the rest. */
#define QUERY_LATENCY_BUCKETS 12
extern const double query_latency_bounds[QUERY_LATENCY_BUCKETS];

typedef struct {
	unsigned long received;
	unsigned long dropped;     /* no reply: short, QR=1 */
	unsigned long formerr;
	unsigned long notimp;
	unsigned long answered;
	unsigned long servfail;
	unsigned long truncated;
	unsigned long resent;
	unsigned long cache_hits;  /* answered from the cache (in answered) */
	/* Expired answers given out (RFC 8767; in answered): the upstream
	 * was down, slow, or said SERVFAIL. */
	unsigned long stale_answers;
	unsigned long prefetches;  /* refreshes sent for popular answers */
	unsigned long local_answers;  /* from a local zone (in answered) */
	/* From sources not in the allow list: REFUSED, or no reply when the
	 * message has no readable header (or QR=1). */
	unsigned long refused;
	/* Time from query to answer of answered queries. */
	unsigned long latency[QUERY_LATENCY_BUCKETS + 1];
	double latency_sum;
} query_stats_t;

/* cfg and upstreams must outlive the environment. */
query_env_t *query_env_create(struct ev_loop *loop, const config_t *cfg,
			      upstream_set_t *upstreams);
/* Ends every query still open (no reply) and frees the environment. */
void query_env_destroy(query_env_t *env);

/* Handle one message from a client (addr: the client's address, where a
 * UDP answer goes; a source not in cfg->allow gets REFUSED). The reply may
 * be sent before this returns. */
void query_submit(query_env_t *env, const uint8_t *msg, size_t len,
		  const query_client_t *client,
		  const struct sockaddr_storage *addr, socklen_t addrlen);

/* A client message dropped before it could be read (too long). */
void query_drop(query_env_t *env);

/* New queries (and resends) go to ups from now on (configuration
 * reload); queries on the old set finish there. */
void query_env_set_upstreams(query_env_t *env, upstream_set_t *ups);

/* The configuration the environment reads changed in place (reload):
 * the cache keeps its answers under the new limits (a smaller size
 * evicts at once). */
void query_env_reconfigure(query_env_t *env);
/* Drop every cached answer; returns how many there were. */
size_t query_env_flush_cache(query_env_t *env);

size_t query_inflight(const query_env_t *env);
const query_stats_t *query_stats(const query_env_t *env);
/* Add from's counts to to's (the threads' totals). */
void query_stats_add(query_stats_t *to, const query_stats_t *from);

#endif
