#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dotstub/forward.h"
#include "dotstub/log.h"
#include "dotstub/plain_dns.h"
#include "dotstub/xmalloc.h"
#include "dotstub/zones.h"

struct forward_group {
	const config_forward_t *cfg;
	struct ev_loop *loop;
	/* The worker's settings with this group's servers as the upstreams:
	 * what upstream_set_create() reads, kept as long as the set. */
	config_t set_cfg;
	upstream_set_t *ups;          /* DoT */
	plain_channel_t *plain[2];    /* plain: [0] UDP, [1] TCP (on first use) */
};

struct forward_set {
	forward_group_t *groups;      /* never moved: sets point into them */
	size_t ngroups;
	const zones_t *zones;         /* the configuration's zone table */
};

static int group_init(forward_group_t *g, struct ev_loop *loop, const config_t *cfg,
		      const config_forward_t *f, char *err, size_t errlen)
{
	char why[400];

	g->cfg = f;
	g->loop = loop;
	g->set_cfg = *cfg;
	g->set_cfg.upstreams = f->upstreams;
	g->set_cfg.nupstreams = f->nupstreams;
	if (f->plaintext) {
		g->plain[0] = plain_channel_create(loop, f->upstreams, f->nupstreams, 0,
						   cfg->attempt_timeout_ms, why, sizeof(why));
	} else {
		g->ups = upstream_set_create(loop, &g->set_cfg, why, sizeof(why));
	}
	if (!g->ups && !g->plain[0]) {
		snprintf(err, errlen, "[forward %s]: %s", f->tls.label, why);
		return -1;
	}
	return 0;
}

forward_set_t *forward_set_create(struct ev_loop *loop, const config_t *cfg,
				  char *err, size_t errlen)
{
	forward_set_t *set = xcalloc(1, sizeof(*set));

	set->groups = xcalloc(cfg->nforwards ? cfg->nforwards : 1,
			      sizeof(forward_group_t));
	for (size_t i = 0; i < cfg->nforwards; i++) {
		if (group_init(&set->groups[i], loop, cfg, &cfg->forwards[i],
			       err, errlen) < 0) {
			forward_set_destroy(set);
			return NULL;
		}
		set->ngroups++;
	}
	set->zones = cfg->zones;
	return set;
}

void forward_set_destroy(forward_set_t *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->ngroups; i++) {
		upstream_set_destroy(set->groups[i].ups);
		plain_channel_destroy(set->groups[i].plain[0]);
		plain_channel_destroy(set->groups[i].plain[1]);
	}
	free(set->groups);
	free(set);
}

/* The zone table (zones.c) holds the forward domains with the local
 * ones: a forward zone there is group number m.group of the
 * configuration, and ours at the same index. */
forward_group_t *forward_lookup(const forward_set_t *set, const uint8_t *name,
				size_t len)
{
	zones_match_t m;

	if (!set || set->ngroups == 0)
		return NULL;
	zones_lookup(set->zones, name, len, &m);
	return forward_group_of(set, &m);
}

forward_group_t *forward_group_of(const forward_set_t *set,
				  const zones_match_t *m)
{
	if (!set || m->kind != ZONES_FORWARD || m->group >= set->ngroups)
		return NULL;
	return &set->groups[m->group];
}

upstream_set_t *forward_upstreams(const forward_group_t *g)
{
	return g->ups;
}

void *forward_send_plain(forward_group_t *g, dot_req_t *req, uint8_t *msg,
			 size_t len, int tcp)
{
	char err[300];

	if (tcp && !g->plain[1]) {
		g->plain[1] = plain_channel_create(g->loop, g->cfg->upstreams,
						   g->cfg->nupstreams, 1,
						   g->set_cfg.attempt_timeout_ms,
						   err, sizeof(err));
		if (!g->plain[1]) {
			log_warn("forward %s: %s", g->cfg->tls.label, err);
			return NULL;
		}
	}
	return plain_send(g->plain[tcp ? 1 : 0], req, msg, len);
}

void forward_cancel(void *token)
{
	plain_cancel(token);
}

void forward_set_retire(forward_set_t *set)
{
	for (size_t i = 0; i < set->ngroups; i++)
		if (set->groups[i].ups)
			upstream_set_retire(set->groups[i].ups);
}

int forward_set_idle(const forward_set_t *set)
{
	for (size_t i = 0; i < set->ngroups; i++) {
		const forward_group_t *g = &set->groups[i];
		if ((g->ups && !upstream_set_idle(g->ups)) ||
		    (g->plain[0] && plain_pending(g->plain[0])) ||
		    (g->plain[1] && plain_pending(g->plain[1])))
			return 0;
	}
	return 1;
}

void forward_set_use_stats(forward_set_t *set, stats_global_t *g)
{
	for (size_t i = 0; i < set->ngroups; i++)
		if (set->groups[i].ups)
			upstream_set_use_stats(set->groups[i].ups, g);
}

void forward_set_gather(const forward_set_t *set, stats_snapshot_t *out)
{
	for (size_t i = 0; set && i < set->ngroups; i++)
		if (set->groups[i].ups)
			upstream_set_gather(set->groups[i].ups, out);
}

unsigned forward_set_reset(forward_set_t *set)
{
	unsigned closed = 0;

	for (size_t i = 0; i < set->ngroups; i++)
		if (set->groups[i].ups)
			closed += upstream_set_reset(set->groups[i].ups);
	return closed;
}

void forward_warn_plaintext(const config_t *cfg)
{
	for (size_t i = 0; i < cfg->nforwards; i++) {
		const config_forward_t *f = &cfg->forwards[i];
		if (!f->plaintext)
			continue;
		log_warn("forward %s: %s%s and below go to %s%s in plain DNS, "
			 "unencrypted and unauthenticated (plaintext = yes)",
			 f->tls.label, f->domains[0], f->ndomains > 1 ? " (and more)" : "",
			 f->upstreams[0].text, f->nupstreams > 1 ? " (and more)" : "");
	}
}
