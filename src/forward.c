#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dotstub/forward.h"
#include "dotstub/log.h"
#include "dotstub/plain_dns.h"
#include "dotstub/xmalloc.h"

/* Labels of a name walked at most (a wire name has at most 127). */
#define NAME_LABELS_MAX 128

struct forward_group {
	const config_forward_t *cfg;
	struct ev_loop *loop;
	/* The worker's settings with this group's servers as the upstreams:
	 * what upstream_set_create() reads, kept as long as the set. */
	config_t set_cfg;
	upstream_set_t *ups;          /* DoT */
	plain_channel_t *plain[2];    /* plain: [0] UDP, [1] TCP (on first use) */
};

/* One domain of the zone table, in wire form, lower case. */
typedef struct {
	uint8_t *wire;                /* NULL: a free slot */
	size_t len;
	forward_group_t *g;
} zone_t;

struct forward_set {
	forward_group_t *groups;      /* never moved: sets point into them */
	size_t ngroups;
	zone_t *slots;                /* open addressing, linear probing */
	size_t mask;
	size_t nzones;
	size_t max_labels;            /* of any domain: longer suffixes skip */
	uint8_t lengths[32];          /* bit per wire length some domain has */
};

static uint8_t fold(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* FNV-1a over the name with ASCII letters folded. */
static uint32_t hash_name(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ fold(p[i])) * 16777619u;
	return h;
}

static int same_name(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (fold(a[i]) != fold(b[i]))
			return 0;
	return 1;
}

/* "corp.example" (validated by the configuration) into wire form. */
static size_t to_wire(const char *text, uint8_t *out, size_t *labels)
{
	size_t n = 0;

	*labels = 0;
	while (*text) {
		size_t l = strcspn(text, ".");
		out[n++] = (uint8_t)l;
		memcpy(out + n, text, l);
		n += l;
		text += l;
		if (*text == '.')
			text++;
		(*labels)++;
	}
	out[n++] = 0;
	return n;
}

static void add_zone(forward_set_t *set, const char *domain, forward_group_t *g)
{
	uint8_t wire[CONFIG_NAME_MAX + 3];
	size_t labels, len = to_wire(domain, wire, &labels);
	size_t i = hash_name(wire, len) & set->mask;

	while (set->slots[i].wire)
		i = (i + 1) & set->mask;
	set->slots[i].wire = xmalloc(len);
	memcpy(set->slots[i].wire, wire, len);
	set->slots[i].len = len;
	set->slots[i].g = g;
	set->nzones++;
	if (labels > set->max_labels)
		set->max_labels = labels;
	set->lengths[len / 8] |= (uint8_t)(1u << (len % 8));
}

static void build_table(forward_set_t *set, const config_t *cfg)
{
	size_t n = 0, cap = 8;

	for (size_t i = 0; i < cfg->nforwards; i++)
		n += cfg->forwards[i].ndomains;
	while (cap < 2 * n)
		cap *= 2;
	set->slots = xcalloc(cap, sizeof(zone_t));
	set->mask = cap - 1;
	for (size_t i = 0; i < cfg->nforwards; i++)
		for (size_t k = 0; k < cfg->forwards[i].ndomains; k++)
			add_zone(set, cfg->forwards[i].domains[k], &set->groups[i]);
}

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
	build_table(set, cfg);
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
	for (size_t i = 0; set->slots && i <= set->mask; i++)
		free(set->slots[i].wire);
	free(set->slots);
	free(set->groups);
	free(set);
}

static forward_group_t *find(const forward_set_t *set, const uint8_t *name,
			     size_t len)
{
	size_t i;

	if (!(set->lengths[len / 8] & (1u << (len % 8))))
		return NULL;
	for (i = hash_name(name, len) & set->mask; set->slots[i].wire;
	     i = (i + 1) & set->mask)
		if (set->slots[i].len == len && same_name(set->slots[i].wire, name, len))
			return set->slots[i].g;
	return NULL;
}

/* Suffixes from the longest that some domain could match down to the
 * last label: the first hit is the most specific domain. */
forward_group_t *forward_lookup(const forward_set_t *set, const uint8_t *name,
				size_t len)
{
	size_t offs[NAME_LABELS_MAX], n = 0, pos = 0, end;

	if (!set || set->nzones == 0)
		return NULL;
	while (pos < len && name[pos] != 0 && n < NAME_LABELS_MAX) {
		if (name[pos] > 63)
			return NULL;   /* compressed or odd: not ours to route */
		offs[n++] = pos;
		pos += name[pos] + 1u;
	}
	if (pos >= len || name[pos] != 0)
		return NULL;
	end = pos + 1;
	for (size_t i = n > set->max_labels ? n - set->max_labels : 0; i < n; i++) {
		forward_group_t *g = find(set, name + offs[i], end - offs[i]);
		if (g)
			return g;
	}
	return NULL;
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

void forward_set_add_stats(const forward_set_t *set, upstream_stats_t *to)
{
	upstream_stats_t u;

	for (size_t i = 0; set && i < set->ngroups; i++)
		if (set->groups[i].ups) {
			upstream_set_stats(set->groups[i].ups, &u);
			upstream_stats_add(to, &u);
		}
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
