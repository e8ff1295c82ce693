/* metrics: a Prometheus text endpoint, http://ADDR:PORT/metrics. Minimal
 * HTTP/1.0: one request per connection, answered from the loop, then
 * closed. Everything else gets 404 (or 400 when unreadable). */
#ifndef DOTSTUB_METRICS_H
#define DOTSTUB_METRICS_H

#include <ev.h>
#include <stdio.h>

/* Scrapers served at once (a scraper or two, not a web server); more
 * are closed at once. Counted in the start-up descriptor budget. */
#define METRICS_MAX_CLIENTS 16

typedef struct metrics metrics_t;

/* Writes the current metrics in the Prometheus text format to out. */
typedef void (*metrics_render_fn)(void *arg, FILE *out);

/* Listen on addr ("ADDR@PORT"). Returns NULL with err on failure. */
metrics_t *metrics_create(struct ev_loop *loop, const char *addr,
			  metrics_render_fn render, void *arg,
			  char *err, size_t errlen);
void metrics_destroy(metrics_t *m);

#endif
