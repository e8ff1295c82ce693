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
#include "dotstub/dnstap.h"
#include "dotstub/stats.h"
#include "dotstub/forward.h"
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
/* Drop every cached answer (counted); returns how many there were.
 * Answers to queries sent before are not cached when they come. */
size_t query_env_flush_cache(query_env_t *env);
/* Log client and upstream messages to q (dnstap; NULL: off). */
void query_env_set_dnstap(query_env_t *env, dnstap_queue_t *q);

/* Names of forward zones go to fwd's groups from now on (NULL: none;
 * start-up and reload, like query_env_set_upstreams). */
void query_env_set_forward(query_env_t *env, forward_set_t *fwd);

size_t query_inflight(const query_env_t *env);
/* Count in g, the thread's block, which must outlive the environment.
 * Until then the environment counts in a block of its own. */
void query_env_use_stats(query_env_t *env, stats_global_t *g);
/* The block it counts in (tests read it). */
const stats_global_t *query_env_stats(const query_env_t *env);
/* The gauges of the moment into g: queries open, and the cache's counts
 * (misses, evictions, entries, bytes). */
void query_env_fill_stats(const query_env_t *env, stats_global_t *g);

#endif
