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
	double stored, expires;
	size_t keylen, msglen;
	uint8_t data[];              /* key, then message */
} entry_t;

struct cache {
	size_t max_bytes;
	uint32_t max_ttl;
	entry_t **buckets;
	size_t nbuckets;
	TAILQ_HEAD(entry_list, entry) lru;
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

cache_t *cache_create(size_t max_bytes, uint32_t max_ttl)
{
	cache_t *c = xcalloc(1, sizeof(*c));

	c->max_bytes = max_bytes;
	c->max_ttl = max_ttl;
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
	c->stats.bytes -= entry_size(e);
	c->stats.entries--;
	free(e);
}

void cache_destroy(cache_t *c)
{
	if (!c)
		return;
	while (!TAILQ_EMPTY(&c->lru))
		remove_entry(c, TAILQ_FIRST(&c->lru));
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

void cache_store(cache_t *c, const dnsmsg_query_t *q, const uint8_t *msg,
		 size_t len, double now)
{
	uint8_t key[KEY_MAX];
	size_t keylen;
	long ttl;
	entry_t *e;

	if (!c->max_bytes || !q->rd || (ttl = dnsmsg_cache_ttl(msg, len)) <= 0)
		return;
	if (ttl > (long)c->max_ttl)
		ttl = (long)c->max_ttl;
	keylen = make_key(q, key);
	uint32_t hash = hash_key(key, keylen);
	if ((e = find(c, key, keylen, hash)) != NULL)
		remove_entry(c, e);
	e = xmalloc(sizeof(*e) + keylen + len);
	e->hash = hash;
	e->stored = now;
	e->expires = now + (double)ttl;
	e->keylen = keylen;
	e->msglen = len;
	memcpy(e->data, key, keylen);
	memcpy(e->data + keylen, msg, len);
	/* Aged from here, the TTLs given out stay within the cap too. */
	dnsmsg_cap_ttls(e->data + keylen, len, c->max_ttl);
	if (entry_size(e) > c->max_bytes) {
		free(e);
		return;
	}
	while (c->stats.bytes + entry_size(e) > c->max_bytes) {
		remove_entry(c, TAILQ_LAST(&c->lru, entry_list));
		c->stats.evicted++;
	}
	e->hnext = c->buckets[hash & (c->nbuckets - 1)];
	c->buckets[hash & (c->nbuckets - 1)] = e;
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	c->stats.bytes += entry_size(e);
	c->stats.entries++;
	c->stats.stored++;
	if (c->stats.entries > c->nbuckets)
		grow(c);
}

int cache_lookup(cache_t *c, const dnsmsg_query_t *q, double now,
		 const uint8_t **msg, size_t *len, uint32_t *age)
{
	uint8_t key[KEY_MAX];
	size_t keylen;
	entry_t *e;

	if (!c->max_bytes)
		return 0;
	keylen = make_key(q, key);
	e = find(c, key, keylen, hash_key(key, keylen));
	if (e && e->expires <= now) {
		remove_entry(c, e);
		e = NULL;
	}
	if (!e) {
		c->stats.misses++;
		return 0;
	}
	TAILQ_REMOVE(&c->lru, e, lru);
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	c->stats.hits++;
	*msg = e->data + e->keylen;
	*len = e->msglen;
	*age = now > e->stored ? (uint32_t)(now - e->stored) : 0;
	return 1;
}

const cache_stats_t *cache_stats(const cache_t *c)
{
	return &c->stats;
}
