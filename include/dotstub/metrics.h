/* metrics: the Prometheus text endpoint, http://ADDR:PORT/metrics, on
 * libmicrohttpd driven by the caller's loop. GET and HEAD /metrics get the
 * page (Content-Type: text/plain; version=0.0.4); other paths 404, other
 * methods 405. Each connection has an idle timeout and a lifetime; when
 * all METRICS_MAX_CLIENTS slots are taken, a new connection pushes out
 * the oldest one that has not sent a request yet. */
#ifndef DOTSTUB_METRICS_H
#define DOTSTUB_METRICS_H

#include <ev.h>
#include <stdio.h>

/* Connections held at once (a scraper or two, not a web server).
 * Counted in the start-up descriptor budget (pushed-out ones close within
 * a loop pass; when descriptors run out, accepting pauses). */
#define METRICS_MAX_CLIENTS 16
#include "dotstub/acl.h"

typedef struct metrics metrics_t;

/* Writes the current metrics in the Prometheus text format to out. */
typedef void (*metrics_render_fn)(void *arg, FILE *out);

/* Listen on addr ("ADDR@PORT"). Connections from sources not in allow
 * (NULL: loopback only) are closed at once; allow must stay valid until
 * replaced or the endpoint is destroyed. Returns NULL with err on
 * failure. */
metrics_t *metrics_create(struct ev_loop *loop, const char *addr,
			  const acl_t *allow, metrics_render_fn render,
			  void *arg, char *err, size_t errlen);
/* A new allow list (reload); the old one may be freed afterwards. */
void metrics_set_allow(metrics_t *m, const acl_t *allow);
void metrics_destroy(metrics_t *m);

#endif
