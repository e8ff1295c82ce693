/* forward: which forward group serves a name, and each group's transport
 * in one worker.
 *
 * The configuration's zone table (zones.h) holds the domains of the
 * "[forward]" groups (and --forward) beside the local zones: a name at or
 * below a domain goes to its group, the most specific zone winning
 * (a.corp.example under both corp.example and example goes to
 * corp.example), on label boundaries (xcorp.example is not under
 * corp.example), letter case ignored; a forward zone overrides a local
 * one of the same name. Other names: NULL, the default upstreams. A DoT
 * group has an upstream set of its own (the same pools, pipelining,
 * verification and recovery as the upstreams); a plaintext group has
 * plain DNS channels (plain_dns), one for UDP clients, one for TCP
 * clients (made on first use). */
#ifndef DOTSTUB_FORWARD_H
#define DOTSTUB_FORWARD_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "dotstub/config.h"
#include "dotstub/dot_conn.h"
#include "dotstub/upstream.h"
#include "dotstub/zones.h"

typedef struct forward_set forward_set_t;
typedef struct forward_group forward_group_t;

/* Every group of cfg (which must outlive the set; its forward groups and
 * zone table are read, with the pool and timeout settings; group i is
 * cfg->forwards[i], the zone table's group number). Returns NULL with err
 * when a group's trust anchors or servers cannot be set up. */
forward_set_t *forward_set_create(struct ev_loop *loop, const config_t *cfg,
				  char *err, size_t errlen);
/* Pending plain queries end without a callback. */
void forward_set_destroy(forward_set_t *set);

/* The group serving `name` (wire form, uncompressed, as the question of
 * dnsmsg_query_t starts; at most len bytes read), or NULL. No allocation;
 * with no forward group, one test. */
forward_group_t *forward_lookup(const forward_set_t *set, const uint8_t *name,
				size_t len);

/* The group of a zones_lookup() match (m->kind ZONES_FORWARD) in the
 * zone table set was made with, or NULL: the default upstreams. */
forward_group_t *forward_group_of(const forward_set_t *set,
				  const zones_match_t *m);

/* A DoT group's upstream set (send with upstream_send), or NULL: plain. */
upstream_set_t *forward_upstreams(const forward_group_t *g);

/* Plain groups: send msg (its ID is replaced) for req over UDP, or TCP
 * when tcp. Returns a token for forward_cancel(), or NULL when it cannot
 * be sent (too many in flight). Exactly one of req's callbacks follows a
 * token, unless it is cancelled. */
void *forward_send_plain(forward_group_t *g, dot_req_t *req, uint8_t *msg,
			 size_t len, int tcp);
void forward_cancel(void *token);

/* Replaced by a reload: the DoT sets retire (upstream_set_retire); plain
 * queries finish. Destroy once forward_set_idle(). */
void forward_set_retire(forward_set_t *set);
int forward_set_idle(const forward_set_t *set);

/* The DoT groups' upstream sets count in g (upstream_set_use_stats) and
 * add their per-upstream series to out (upstream_set_gather). */
void forward_set_use_stats(forward_set_t *set, stats_global_t *g);
void forward_set_gather(const forward_set_t *set, stats_snapshot_t *out);
/* A network change: upstream_set_reset() on every DoT group. */
unsigned forward_set_reset(forward_set_t *set);

/* One warning per plaintext group: its traffic is not encrypted. */
void forward_warn_plaintext(const config_t *cfg);

#endif
