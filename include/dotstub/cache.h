/* cache: answers by question, bounded in bytes. An entry is fresh for its
 * smallest TTL (for negative answers, the SOA's: RFC 2308) brought into
 * the configured bounds; then, with serve-stale (RFC 8767), it is kept
 * stale for stale_max_age more seconds, to be given out only when the
 * upstream cannot answer. A fresh hit comes back with its TTLs aged, and,
 * in the last tenth of its TTL, once with a request to refresh it
 * (prefetch). Full, the cache drops expired entries first (the longest
 * expired first), then the least recently used. Only NOERROR and NXDOMAIN
 * answers that are not truncated, to recursive (RD=1) queries, are kept.
 *
 * Every time is `now`, seconds of any monotonic clock, given by the
 * caller: the cache never reads a clock (tests inject theirs). */
#ifndef DOTSTUB_CACHE_H
#define DOTSTUB_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dotstub/dnsmsg.h"

typedef struct cache cache_t;

typedef struct {
	size_t max_bytes;           /* entries and their bookkeeping; 0: off */
	uint32_t min_ttl;           /* an answer is kept at least this long */
	uint32_t max_ttl;           /* ... and at most this long, */
	uint32_t max_negative_ttl;  /* ... or this, if negative (0: not kept) */
	uint32_t stale_max_age;     /* seconds kept past expiry; 0: none */
	int prefetch;               /* ask for refreshes of popular entries */
} cache_limits_t;

/* Prefetch: a hit in the last 1/CACHE_PREFETCH_TENTH of its TTL asks for
 * one refresh, for TTLs of at least CACHE_PREFETCH_MIN_TTL (shorter
 * ones are cheap to miss, and a refresh per few seconds is no saving). */
#define CACHE_PREFETCH_TENTH 10
#define CACHE_PREFETCH_MIN_TTL 10

/* A cache within `lim` (copied). max_bytes 0 makes every call a no-op
 * miss. */
cache_t *cache_create(const cache_limits_t *lim);
void cache_destroy(cache_t *c);

/* New limits (configuration reload), the entries kept: a smaller
 * max_bytes evicts (expired first, then least recently used) at once;
 * 0 empties the cache. TTL bounds apply to answers stored from now on. */
void cache_set_limits(cache_t *c, const cache_limits_t *lim, double now);

/* Drop every entry; returns how many there were. */
size_t cache_flush(cache_t *c);

/* Keep a copy of the upstream answer `msg` to q, seen at `now`. Does
 * nothing for answers not worth keeping, or to a query with RD=0: what
 * the upstream had at hand (a referral, say) is no answer for others'
 * recursive queries, while a recursive answer serves RD=0 queries well
 * (as resolvers do). Replaces the entry for q, fresh or stale. */
void cache_store(cache_t *c, const dnsmsg_query_t *q, const uint8_t *msg,
		 size_t len, double now);

typedef enum {
	CACHE_MISS = 0,
	CACHE_FRESH,   /* within its TTL: answer with TTLs aged by `age` */
	CACHE_STALE,   /* past it, within stale_max_age: RFC 8767 material */
} cache_state_t;

typedef struct {
	const uint8_t *msg;   /* valid until the next call on the cache */
	size_t len;
	uint32_t age;         /* whole seconds since it was stored */
	/* CACHE_FRESH in the prefetch window, and the first such hit since
	 * it was stored: the caller sends one refresh upstream. */
	int refresh;
} cache_hit_t;

/* The answer to q at `now`. A stale entry is returned as such (counted
 * apart from hits); one past stale_max_age is dropped: a miss. */
cache_state_t cache_lookup(cache_t *c, const dnsmsg_query_t *q, double now,
			   cache_hit_t *hit);

typedef struct {
	unsigned long hits, misses, stored, evicted;
	unsigned long stale;       /* lookups that found only a stale entry */
	unsigned long refreshes;   /* prefetch refreshes asked for */
	size_t bytes, entries;
} cache_stats_t;
const cache_stats_t *cache_stats(const cache_t *c);

#endif
