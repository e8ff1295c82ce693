#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "dotstub/cache.h"
#include "dotstub/xmalloc.h"

/* The key is the question in wire form, its name case-folded, plus one
 * byte for the DO bit (a DNSSEC-aware client gets signatures, others not)
 * and the CD bit (an answer that skipped validation must not reach
 * clients that rely on it). RD is not in it: only RD=1 answers are kept. */
#define KEY_MAX (DNSMSG_QUESTION_MAX + 1)
#define INITIAL_BUCKETS 1024

typedef struct entry {
	struct entry *hnext;         /* hash chain */
	TAILQ_ENTRY(entry) lru;      /* first is the most recent */
	uint32_t hash;
	uint32_t ttl;                /* its lifetime, bounds applied */
	size_t heap_at;              /* its place in the expiry heap */
	double stored, expires;
	int refreshing;              /* a prefetch was asked for */
	size_t keylen, msglen;
	uint8_t data[];              /* key, then message */
} entry_t;

struct cache {
	cache_limits_t lim;
	entry_t **buckets;
	size_t nbuckets;
	TAILQ_HEAD(entry_list, entry) lru;
	/* Every entry, soonest expiry on top: the expired (stale) ones are
	 * found there, longest expired first, for eviction before the LRU. */
	entry_t **heap;
	size_t heap_cap;
	cache_stats_t stats;
};

static size_t entry_size(const entry_t *e)
{
	return sizeof(*e) + e->keylen + e->msglen;
}

static size_t make_key(const dnsmsg_query_t *q, uint8_t *key)
{
	dnsmsg_fold_question(q->question, q->question_len, key);
	key[q->question_len] = (uint8_t)(q->edns_do | q->cd << 1);
	return q->question_len + 1;
}

/* FNV-1a: short keys, no adversary who can see the table. */
static uint32_t hash_key(const uint8_t *key, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

/* The expiry heap: a binary min-heap on `expires`, n = stats.entries. */
static void heap_set(cache_t *c, size_t i, entry_t *e)
{
	c->heap[i] = e;
	e->heap_at = i;
}

static void sift_up(cache_t *c, size_t i)
{
	entry_t *e = c->heap[i];

	while (i > 0 && c->heap[(i - 1) / 2]->expires > e->expires) {
		heap_set(c, i, c->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(c, i, e);
}

static void sift_down(cache_t *c, size_t i)
{
	size_t n = c->stats.entries;
	entry_t *e = c->heap[i];

	for (;;) {
		size_t k = 2 * i + 1;
		if (k >= n)
			break;
		if (k + 1 < n && c->heap[k + 1]->expires < c->heap[k]->expires)
			k++;
		if (c->heap[k]->expires >= e->expires)
			break;
		heap_set(c, i, c->heap[k]);
		i = k;
	}
	heap_set(c, i, e);
}

/* Call with stats.entries not yet counting e. */
static void heap_push(cache_t *c, entry_t *e)
{
	size_t n = c->stats.entries;

	if (n == c->heap_cap) {
		c->heap_cap = c->heap_cap ? 2 * c->heap_cap : INITIAL_BUCKETS;
		c->heap = xrealloc(c->heap, c->heap_cap * sizeof(*c->heap));
	}
	heap_set(c, n, e);
	sift_up(c, n);
}

/* Call with stats.entries still counting e. */
static void heap_remove(cache_t *c, entry_t *e)
{
	size_t i = e->heap_at, last = c->stats.entries - 1;

	if (i == last)
		return;
	heap_set(c, i, c->heap[last]);
	if (i > 0 && c->heap[(i - 1) / 2]->expires > c->heap[i]->expires)
		sift_up(c, i);
	else
		sift_down(c, i);
}

cache_t *cache_create(const cache_limits_t *lim)
{
	cache_t *c = xcalloc(1, sizeof(*c));

	c->lim = *lim;
	c->nbuckets = INITIAL_BUCKETS;
	c->buckets = xcalloc(c->nbuckets, sizeof(entry_t *));
	TAILQ_INIT(&c->lru);
	return c;
}

static void remove_entry(cache_t *c, entry_t *e)
{
	entry_t **p = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
	TAILQ_REMOVE(&c->lru, e, lru);
	heap_remove(c, e);
	c->stats.bytes -= entry_size(e);
	c->stats.entries--;
	free(e);
}

size_t cache_flush(cache_t *c)
{
	size_t n = c->stats.entries;

	while (!TAILQ_EMPTY(&c->lru))
		remove_entry(c, TAILQ_FIRST(&c->lru));
	return n;
}

void cache_destroy(cache_t *c)
{
	if (!c)
		return;
	cache_flush(c);
	free(c->heap);
	free(c->buckets);
	free(c);
}

static entry_t *find(cache_t *c, const uint8_t *key, size_t keylen,
		     uint32_t hash)
{
	for (entry_t *e = c->buckets[hash & (c->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == hash && e->keylen == keylen &&
		    memcmp(e->data, key, keylen) == 0)
			return e;
	return NULL;
}

/* Keep chains short: double the buckets when entries outnumber them. */
static void grow(cache_t *c)
{
	size_t n = c->nbuckets * 2;
	entry_t **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < c->nbuckets; i++)
		for (entry_t *e = c->buckets[i], *next; e; e = next) {
			next = e->hnext;
			e->hnext = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

/* Room for `need` more bytes: expired entries go first, the longest
 * expired first (stale answers are the least worth keeping), then the
 * least recently used. */
static void make_room(cache_t *c, size_t need, double now)
{
	while (c->stats.entries && c->stats.bytes + need > c->lim.max_bytes) {
		entry_t *e = c->heap[0]->expires <= now ? c->heap[0] :
			     TAILQ_LAST(&c->lru, entry_list);
		remove_entry(c, e);
		c->stats.evicted++;
	}
}

/* Entries past stale_max_age serve nobody: out, before they cost
 * a fresh entry its place. */
static void drop_dead(cache_t *c, double now)
{
	while (c->stats.entries &&
	       c->heap[0]->expires + c->lim.stale_max_age <= now)
		remove_entry(c, c->heap[0]);
}

/* How long the answer is kept: its TTL within the bounds (for negative
 * answers the lower maximum); 0 or less: not at all. *lo, *hi: the
 * bounds its TTLs are brought into. */
static long bounded_ttl(const cache_limits_t *lim, const uint8_t *msg,
			size_t len, uint32_t *lo, uint32_t *hi)
{
	long ttl = dnsmsg_cache_ttl(msg, len);

	/* An owner's TTL 0 says "do not cache": no minimum overrides it. */
	if (ttl <= 0)
		return 0;
	*hi = lim->max_ttl;
	if (dnsmsg_negative(msg) && lim->max_negative_ttl < *hi)
		*hi = lim->max_negative_ttl;
	*lo = lim->min_ttl < *hi ? lim->min_ttl : *hi;
	if (ttl > (long)*hi)
		ttl = (long)*hi;
	if (ttl < (long)*lo)
		ttl = (long)*lo;
	return ttl;
}

void cache_store(cache_t *c, const dnsmsg_query_t *q, const uint8_t *msg,
		 size_t len, double now)
{
	uint8_t key[KEY_MAX];
	size_t keylen;
	uint32_t lo, hi;
	long ttl;
	entry_t *e;

	if (!c->lim.max_bytes || !q->rd ||
	    (ttl = bounded_ttl(&c->lim, msg, len, &lo, &hi)) <= 0)
		return;
	keylen = make_key(q, key);
	uint32_t hash = hash_key(key, keylen);
	if ((e = find(c, key, keylen, hash)) != NULL)
		remove_entry(c, e);
	e = xmalloc(sizeof(*e) + keylen + len);
	e->hash = hash;
	e->ttl = (uint32_t)ttl;
	e->stored = now;
	e->expires = now + (double)ttl;
	e->refreshing = 0;
	e->keylen = keylen;
	e->msglen = len;
	memcpy(e->data, key, keylen);
	memcpy(e->data + keylen, msg, len);
	/* Aged from here, the TTLs given out stay within the bounds too. */
	dnsmsg_clamp_ttls(e->data + keylen, len, lo, hi);
	if (entry_size(e) > c->lim.max_bytes) {
		free(e);
		return;
	}
	drop_dead(c, now);
	make_room(c, entry_size(e), now);
	e->hnext = c->buckets[hash & (c->nbuckets - 1)];
	c->buckets[hash & (c->nbuckets - 1)] = e;
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	heap_push(c, e);
	c->stats.bytes += entry_size(e);
	c->stats.entries++;
	c->stats.stored++;
	if (c->stats.entries > c->nbuckets)
		grow(c);
}

/* In the last tenth of a long enough TTL, and the first hit there. */
static int wants_refresh(const cache_t *c, entry_t *e, double now)
{
	if (!c->lim.prefetch || e->refreshing || e->ttl < CACHE_PREFETCH_MIN_TTL ||
	    (e->expires - now) * CACHE_PREFETCH_TENTH > (double)e->ttl)
		return 0;
	e->refreshing = 1;
	return 1;
}

cache_state_t cache_lookup(cache_t *c, const dnsmsg_query_t *q, double now,
			   cache_hit_t *hit)
{
	uint8_t key[KEY_MAX];
	size_t keylen;
	entry_t *e;

	if (!c->lim.max_bytes)
		return CACHE_MISS;
	keylen = make_key(q, key);
	e = find(c, key, keylen, hash_key(key, keylen));
	if (e && e->expires + c->lim.stale_max_age <= now) {
		remove_entry(c, e);
		e = NULL;
	}
	if (!e) {
		c->stats.misses++;
		return CACHE_MISS;
	}
	TAILQ_REMOVE(&c->lru, e, lru);
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	hit->msg = e->data + e->keylen;
	hit->len = e->msglen;
	hit->age = now > e->stored ? (uint32_t)(now - e->stored) : 0;
	hit->refresh = 0;
	if (e->expires <= now) {
		c->stats.stale++;
		return CACHE_STALE;
	}
	c->stats.hits++;
	if ((hit->refresh = wants_refresh(c, e, now)) != 0)
		c->stats.refreshes++;
	return CACHE_FRESH;
}

void cache_set_limits(cache_t *c, const cache_limits_t *lim, double now)
{
	c->lim = *lim;
	make_room(c, 0, now);
}

const cache_stats_t *cache_stats(const cache_t *c)
{
	return &c->stats;
}
