/* listener_udp: one UDP socket on a listen address; each datagram is a
 * query, each answer a datagram back to its sender. */
#ifndef DOTSTUB_LISTENER_UDP_H
#define DOTSTUB_LISTENER_UDP_H

#include <ev.h>

#include "dotstub/config.h"
#include "dotstub/query.h"

typedef struct listener_udp listener_udp_t;

/* Bind and start reading; shared: SO_REUSEPORT, one socket per thread.
 * Returns NULL with err ("127.0.0.1@53: bind: Address already in use")
 * on failure. Answers of one loop pass leave together (sendmmsg) before
 * the loop sleeps. */
listener_udp_t *listener_udp_create(struct ev_loop *loop,
				    const config_listen_t *addr, int shared,
				    query_env_t *env, char *err, size_t errlen);
/* Stop reading new queries (shutdown); answers still go out. */
void listener_udp_stop(listener_udp_t *l);
void listener_udp_destroy(listener_udp_t *l);

#endif
