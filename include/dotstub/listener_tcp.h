/* listener_tcp: one listening TCP socket and its clients (RFC 7766): many
 * length-prefixed queries per connection, answered in any order, idle
 * connections closed after the client timeout. */
#ifndef DOTSTUB_LISTENER_TCP_H
#define DOTSTUB_LISTENER_TCP_H

#include <ev.h>

#include "dotstub/config.h"
#include "dotstub/query.h"

typedef struct listener_tcp listener_tcp_t;

/* Bind, listen and start accepting (shared: SO_REUSEPORT, one socket per
 * thread). Returns NULL with err on failure. Answers of one loop pass
 * leave in one send per client before the loop sleeps. */
listener_tcp_t *listener_tcp_create(struct ev_loop *loop,
				    const config_listen_t *addr,
				    int shared, const config_t *cfg,
				    query_env_t *env, char *err, size_t errlen);
/* Stop accepting and reading; clients get their open answers. */
void listener_tcp_stop(listener_tcp_t *l);
/* Close every client and the socket. Queries still open must be gone
 * (query_env_destroy) first. */
void listener_tcp_destroy(listener_tcp_t *l);

#endif
