/* cache: answers by question, bounded in bytes, least recently used out
 * first. An entry lives as long as its smallest TTL (for negative answers,
 * the SOA's: RFC 2308), at most max_ttl; a hit comes back with its TTLs
 * aged. Only NOERROR and NXDOMAIN answers that are not truncated, to
 * recursive (RD=1) queries, are kept. */
#ifndef DOTSTUB_CACHE_H
#define DOTSTUB_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dotstub/dnsmsg.h"

typedef struct cache cache_t;

/* A cache of at most max_bytes (entries and their bookkeeping) that keeps
 * an answer at most max_ttl seconds, its TTLs capped to that. max_bytes 0
 * makes every call a no-op miss. */
cache_t *cache_create(size_t max_bytes, uint32_t max_ttl);
void cache_destroy(cache_t *c);

/* Keep a copy of the upstream answer `msg` to q, seen at time `now`
 * (seconds, any monotonic clock). Does nothing for answers not worth
 * keeping, or to a query with RD=0: what the upstream had at hand (a
 * referral, say) is no answer for others' recursive queries, while a
 * recursive answer serves RD=0 queries well (as resolvers do). */
void cache_store(cache_t *c, const dnsmsg_query_t *q, const uint8_t *msg,
		 size_t len, double now);

/* The answer to q when one is cached and fresh: returns 1, *msg and *len
 * (valid until the next call on c) and *age, the whole seconds since it
 * was stored (subtract from its TTLs). 0 on a miss. */
int cache_lookup(cache_t *c, const dnsmsg_query_t *q, double now,
		 const uint8_t **msg, size_t *len, uint32_t *age);

typedef struct {
	unsigned long hits, misses, stored, evicted;
	size_t bytes, entries;
} cache_stats_t;
const cache_stats_t *cache_stats(const cache_t *c);

#endif
