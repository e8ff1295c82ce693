/* cache: hits and misses, TTL expiry and aging, negative answers, the DO
 * bit in the key, byte-bounded LRU eviction; serve-stale retention and
 * eviction order, the prefetch window, TTL bounds, resizing and flushing.
 * The clock is the tests': every call takes `now`. */
#include <ares.h>
#include <ares_dns.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/cache.h"
#include "dotstub/dnsmsg.h"

#include "check_main.h"

static size_t make_query_type(uint8_t *out, const char *name, int type,
			      int edns_do, dnsmsg_query_t *q)
{
	unsigned char *buf;
	int len;

	ck_assert_int_eq(ares_create_query(name, 1, type, 7, 1, &buf, &len, 1232), 0);
	memcpy(out, buf, (size_t)len);
	ares_free_string(buf);
	if (edns_do)
		out[len - 4] |= 0x80;   /* the OPT's DO bit: flags, high byte */
	ck_assert_int_eq(dnsmsg_parse_query(out, (size_t)len, q), DNSMSG_OK);
	return (size_t)len;
}

static size_t make_query(uint8_t *out, const char *name, int edns_do,
			 dnsmsg_query_t *q)
{
	return make_query_type(out, name, 1, edns_do, q);
}

/* An answer to the query in m: one A record with `ttl`, or (rcode 3) an
 * SOA in the authority section with TTL `ttl` and MINIMUM `minimum`. */
static size_t make_answer(uint8_t *out, const uint8_t *m, size_t n,
			  int rcode, uint32_t ttl, uint32_t minimum)
{
	size_t qend = n - 11, len;   /* the query ends with an 11-byte OPT */

	memcpy(out, m, qend);
	out[2] |= 0x80;
	out[3] = (uint8_t)rcode;
	len = qend;
	out[len++] = 0xc0;
	out[len++] = 12;
	if (rcode == 0) {
		const uint8_t rr[] = { 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 192, 0, 2, 1 };
		memcpy(out + len, rr, sizeof(rr));
		DNS__SET32BIT(out + len + 4, ttl);
		len += sizeof(rr);
		DNS_HEADER_SET_ANCOUNT(out, 1);
		DNS_HEADER_SET_NSCOUNT(out, 0);
	} else {
		/* mname ".", rname ".", then serial .. minimum */
		uint8_t rr[10 + 22] = { 0, 6, 0, 1, 0, 0, 0, 0, 0, 22 };
		DNS__SET32BIT(rr + 4, ttl);
		DNS__SET32BIT(rr + 10 + 2 + 16, minimum);
		memcpy(out + len, rr, sizeof(rr));
		len += sizeof(rr);
		DNS_HEADER_SET_ANCOUNT(out, 0);
		DNS_HEADER_SET_NSCOUNT(out, 1);
	}
	DNS_HEADER_SET_ARCOUNT(out, 0);
	return len;
}

/* A cache as before serve-stale: no minimum, one maximum for all, no
 * stale entries, no prefetch. */
static cache_t *new_cache(size_t bytes, uint32_t max_ttl)
{
	cache_limits_t lim = { bytes, 0, max_ttl, max_ttl, 0, 0 };

	return cache_create(&lim);
}

/* 1 and the answer on a fresh hit, else 0. */
static int lookup(cache_t *c, const dnsmsg_query_t *q, double now,
		  const uint8_t **msg, size_t *len, uint32_t *age)
{
	cache_hit_t h;

	if (cache_lookup(c, q, now, &h) != CACHE_FRESH)
		return 0;
	*msg = h.msg;
	*len = h.len;
	*age = h.age;
	return 1;
}

START_TEST(test_hit_miss_expiry_aging)
{
	cache_t *c = new_cache(1 << 20, 86400);
	uint8_t m[512], a[512], copy[512];
	dnsmsg_query_t q;
	const uint8_t *msg;
	size_t len, n = make_query(m, "www.example.test", 0, &q);
	size_t alen = make_answer(a, m, n, 0, 300, 0);
	uint32_t age;

	ck_assert_int_eq(dnsmsg_cache_ttl(a, alen), 300);
	ck_assert_int_eq(lookup(c, &q, 100.0, &msg, &len, &age), 0);
	cache_store(c, &q, a, alen, 100.0);
	ck_assert_int_eq(lookup(c, &q, 160.5, &msg, &len, &age), 1);
	ck_assert_uint_eq(len, alen);
	ck_assert_uint_eq(age, 60);
	memcpy(copy, msg, len);
	dnsmsg_age_ttls(copy, len, age);
	ck_assert_int_eq(dnsmsg_cache_ttl(copy, len), 240);
	/* The same question in other letters is the same question. */
	dnsmsg_query_t upper;
	make_query(m, "WWW.Example.TEST", 0, &upper);
	ck_assert_int_eq(lookup(c, &upper, 161.0, &msg, &len, &age), 1);
	/* With DO set it is another entry. */
	dnsmsg_query_t dnssec;
	make_query(m, "www.example.test", 1, &dnssec);
	ck_assert_int_eq(dnssec.edns_do, 1);
	ck_assert_int_eq(lookup(c, &dnssec, 161.0, &msg, &len, &age), 0);
	/* And with CD set (validation skipped) another again. */
	dnsmsg_query_t cd;
	size_t cn = make_query(m, "www.example.test", 0, &cd);
	m[3] |= 0x10;
	ck_assert_int_eq(dnsmsg_parse_query(m, cn, &cd), DNSMSG_OK);
	ck_assert_int_eq(cd.cd, 1);
	ck_assert_int_eq(lookup(c, &cd, 161.0, &msg, &len, &age), 0);
	/* Gone once the TTL has run out. */
	ck_assert_int_eq(lookup(c, &q, 400.0, &msg, &len, &age), 0);
	ck_assert_uint_eq(cache_stats(c)->entries, 0);
	cache_destroy(c);
}
END_TEST

START_TEST(test_negative_and_uncacheable)
{
	cache_t *c = new_cache(1 << 20, 86400);
	uint8_t m[512], a[512];
	dnsmsg_query_t q;
	const uint8_t *msg;
	size_t len, n = make_query(m, "nx.example.test", 0, &q);
	uint32_t age;

	/* NXDOMAIN: the SOA's TTL capped by its MINIMUM. */
	size_t alen = make_answer(a, m, n, 3, 3600, 60);
	ck_assert_int_eq(dnsmsg_cache_ttl(a, alen), 60);
	cache_store(c, &q, a, alen, 0.0);
	ck_assert_int_eq(lookup(c, &q, 59.0, &msg, &len, &age), 1);
	ck_assert_int_eq(lookup(c, &q, 61.0, &msg, &len, &age), 0);
	/* SERVFAIL, truncated, TTL 0: not kept. */
	alen = make_answer(a, m, n, 0, 300, 0);
	a[3] = 2;
	ck_assert_int_eq(dnsmsg_cache_ttl(a, alen), -1);
	a[3] = 0;
	a[2] |= 0x02;
	ck_assert_int_eq(dnsmsg_cache_ttl(a, alen), -1);
	alen = make_answer(a, m, n, 0, 0, 0);
	cache_store(c, &q, a, alen, 0.0);
	ck_assert_int_eq(lookup(c, &q, 0.0, &msg, &len, &age), 0);
	ck_assert_int_eq(dnsmsg_cache_ttl(a, alen - 1), -1);
	cache_destroy(c);
}
END_TEST

START_TEST(test_lru_eviction_by_bytes)
{
	cache_t *c = new_cache(2000, 86400);
	uint8_t m[512], a[512];
	dnsmsg_query_t q[40];
	const uint8_t *msg;
	size_t len;
	uint32_t age;
	char name[64];

	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "n%d.example.test", i);
		size_t n = make_query(m, name, 0, &q[i]);
		size_t alen = make_answer(a, m, n, 0, 300, 0);
		cache_store(c, &q[i], a, alen, 0.0);
		/* Keep touching the first: it must survive. */
		ck_assert_int_eq(lookup(c, &q[0], 0.0, &msg, &len, &age), 1);
		ck_assert_uint_le(cache_stats(c)->bytes, 2000);
	}
	ck_assert_uint_gt(cache_stats(c)->evicted, 0);
	ck_assert_int_eq(lookup(c, &q[1], 0.0, &msg, &len, &age), 0);
	ck_assert_int_eq(lookup(c, &q[39], 0.0, &msg, &len, &age), 1);
	cache_destroy(c);
	/* Size 0: no cache. */
	c = new_cache(0, 86400);
	cache_store(c, &q[0], a, 40, 0.0);
	ck_assert_int_eq(lookup(c, &q[0], 0.0, &msg, &len, &age), 0);
	cache_destroy(c);
}
END_TEST

/* The key folds the name's case only: QTYPE 97 ('a') and 65 ('A') are
 * two questions. */
START_TEST(test_key_folds_only_the_name)
{
	cache_t *c = new_cache(1 << 20, 86400);
	uint8_t m[512], a[512];
	dnsmsg_query_t q65, q97, upper;
	const uint8_t *msg;
	size_t len, n = make_query_type(m, "www.example.test", 65, 0, &q65);
	uint32_t age;

	cache_store(c, &q65, a, make_answer(a, m, n, 0, 300, 0), 0.0);
	make_query_type(m, "WWW.EXAMPLE.TEST", 65, 0, &upper);
	ck_assert_int_eq(lookup(c, &upper, 1.0, &msg, &len, &age), 1);
	make_query_type(m, "www.example.test", 97, 0, &q97);
	ck_assert_int_eq(lookup(c, &q97, 1.0, &msg, &len, &age), 0);
	cache_destroy(c);
}
END_TEST

/* An answer to an RD=0 query is whatever the upstream had at hand (a
 * referral, say): not an answer for the recursive queries of others. */
START_TEST(test_rd0_answers_not_kept)
{
	cache_t *c = new_cache(1 << 20, 86400);
	uint8_t m[512], a[512];
	dnsmsg_query_t q, norec;
	const uint8_t *msg;
	size_t len, n = make_query(m, "www.example.test", 0, &q);
	size_t alen = make_answer(a, m, n, 0, 300, 0);
	uint32_t age;

	m[2] &= (uint8_t)~0x01;   /* RD=0 */
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &norec), DNSMSG_OK);
	a[2] &= (uint8_t)~0x01;
	cache_store(c, &norec, a, alen, 0.0);
	ck_assert_uint_eq(cache_stats(c)->stored, 0);
	ck_assert_int_eq(lookup(c, &q, 1.0, &msg, &len, &age), 0);
	/* An RD=1 answer is kept, and serves RD=0 questions too. */
	a[2] |= 0x01;
	cache_store(c, &q, a, alen, 0.0);
	ck_assert_int_eq(lookup(c, &norec, 1.0, &msg, &len, &age), 1);
	cache_destroy(c);
}
END_TEST

/* A TTL of 2^31-1 is kept for the cap (86400 by default), and the copy
 * given out carries TTLs no higher. */
START_TEST(test_ttl_capped)
{
	cache_t *c = new_cache(1 << 20, 86400);
	uint8_t m[512], a[512], copy[512];
	dnsmsg_query_t q;
	const uint8_t *msg;
	size_t len, n = make_query(m, "www.example.test", 0, &q);
	size_t alen = make_answer(a, m, n, 0, 0x7fffffff, 0);
	uint32_t age;

	cache_store(c, &q, a, alen, 0.0);
	ck_assert_int_eq(lookup(c, &q, 10.0, &msg, &len, &age), 1);
	memcpy(copy, msg, len);
	dnsmsg_age_ttls(copy, len, age);
	ck_assert_int_eq(dnsmsg_cache_ttl(copy, len), 86400 - 10);
	ck_assert_int_eq(lookup(c, &q, 86400.5, &msg, &len, &age), 0);
	cache_destroy(c);
	/* Another cap, and an answer below it kept as it is. */
	c = new_cache(1 << 20, 100);
	cache_store(c, &q, a, alen, 0.0);
	ck_assert_int_eq(lookup(c, &q, 0.0, &msg, &len, &age), 1);
	ck_assert_int_eq(dnsmsg_cache_ttl(msg, len), 100);
	ck_assert_int_eq(lookup(c, &q, 100.5, &msg, &len, &age), 0);
	alen = make_answer(a, m, n, 0, 60, 0);
	cache_store(c, &q, a, alen, 200.0);
	ck_assert_int_eq(lookup(c, &q, 200.0, &msg, &len, &age), 1);
	ck_assert_int_eq(dnsmsg_cache_ttl(msg, len), 60);
	cache_destroy(c);
}
END_TEST

/* Store an A answer with `ttl` for name at `now`; q gets the question. */
static void put_name(cache_t *c, const char *name, uint32_t ttl, double now,
		     dnsmsg_query_t *q)
{
	uint8_t m[512], a[512];
	size_t n = make_query(m, name, 0, q);

	cache_store(c, q, a, make_answer(a, m, n, 0, ttl, 0), now);
}

static cache_limits_t limits(size_t bytes, uint32_t stale_max_age, int prefetch)
{
	cache_limits_t lim = { bytes, 0, 86400, 3600, stale_max_age, prefetch };

	return lim;
}

/* Past its TTL an entry is stale for stale_max_age more seconds, then
 * gone; without serve-stale (0) it is gone at expiry. */
START_TEST(test_stale_retention_and_max_age)
{
	cache_limits_t lim = limits(1 << 20, 100, 0);
	cache_t *c = cache_create(&lim);
	dnsmsg_query_t q;
	cache_hit_t h;

	put_name(c, "www.example.test", 60, 0.0, &q);
	ck_assert_int_eq(cache_lookup(c, &q, 59.5, &h), CACHE_FRESH);
	ck_assert_int_eq(cache_lookup(c, &q, 60.0, &h), CACHE_STALE);
	ck_assert_uint_gt(h.len, 0);
	ck_assert_int_eq(dnsmsg_cache_ttl(h.msg, h.len), 60);
	ck_assert_int_eq(cache_lookup(c, &q, 159.9, &h), CACHE_STALE);
	ck_assert_uint_eq(cache_stats(c)->stale, 2);
	ck_assert_int_eq(cache_lookup(c, &q, 160.0, &h), CACHE_MISS);
	ck_assert_uint_eq(cache_stats(c)->entries, 0);
	/* A new answer replaces a stale one. */
	put_name(c, "www.example.test", 60, 200.0, &q);
	ck_assert_int_eq(cache_lookup(c, &q, 261.0, &h), CACHE_STALE);
	put_name(c, "www.example.test", 60, 262.0, &q);
	ck_assert_int_eq(cache_lookup(c, &q, 263.0, &h), CACHE_FRESH);
	ck_assert_uint_eq(cache_stats(c)->entries, 1);
	/* A negative answer goes stale the same way. */
	uint8_t m[512], a[512];
	dnsmsg_query_t nx;
	size_t n = make_query(m, "nx.example.test", 0, &nx);
	cache_store(c, &nx, a, make_answer(a, m, n, 3, 3600, 60), 300.0);
	ck_assert_int_eq(cache_lookup(c, &nx, 359.0, &h), CACHE_FRESH);
	ck_assert_int_eq(cache_lookup(c, &nx, 360.0, &h), CACHE_STALE);
	ck_assert_int_eq(dnsmsg_rcode(h.msg), 3);
	ck_assert_int_eq(cache_lookup(c, &nx, 460.0, &h), CACHE_MISS);
	cache_destroy(c);

	lim.stale_max_age = 0;
	c = cache_create(&lim);
	put_name(c, "www.example.test", 60, 0.0, &q);
	ck_assert_int_eq(cache_lookup(c, &q, 60.0, &h), CACHE_MISS);
	ck_assert_uint_eq(cache_stats(c)->entries, 0);
	cache_destroy(c);
}
END_TEST

/* Full, the cache drops stale entries first, the longest expired first,
 * even a stale entry used a moment ago; fresh ones then go LRU-first. */
START_TEST(test_stale_evicted_first)
{
	cache_limits_t lim = limits(0, 86400, 0);
	cache_t *c;
	dnsmsg_query_t s1, s2, f[40];
	cache_hit_t h;
	char name[64];
	size_t one;

	/* Measure one entry, then make room for exactly 6. */
	lim.max_bytes = 1 << 20;
	c = cache_create(&lim);
	put_name(c, "s1.example.test", 5, 0.0, &s1);
	one = cache_stats(c)->bytes;
	cache_destroy(c);
	lim.max_bytes = 6 * one;
	c = cache_create(&lim);

	put_name(c, "s1.example.test", 5, 0.0, &s1);    /* stale from 5 */
	put_name(c, "s2.example.test", 10, 0.0, &s2);   /* stale from 10 */
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "f%d.example.test", i);
		put_name(c, name, 300, 1.0, &f[i]);
	}
	ck_assert_uint_eq(cache_stats(c)->entries, 6);
	/* Both stale and just used (the most recent in LRU order). */
	ck_assert_int_eq(cache_lookup(c, &s2, 20.0, &h), CACHE_STALE);
	ck_assert_int_eq(cache_lookup(c, &s1, 20.0, &h), CACHE_STALE);
	put_name(c, "f4.example.test", 300, 20.0, &f[4]);
	ck_assert_int_eq(cache_lookup(c, &s1, 20.0, &h), CACHE_MISS);
	ck_assert_int_eq(cache_lookup(c, &s2, 20.0, &h), CACHE_STALE);
	put_name(c, "f5.example.test", 300, 20.0, &f[5]);
	ck_assert_int_eq(cache_lookup(c, &s2, 20.0, &h), CACHE_MISS);
	/* No stale entry left: the least recently used fresh one goes. */
	ck_assert_int_eq(cache_lookup(c, &f[0], 20.0, &h), CACHE_FRESH);
	put_name(c, "f6.example.test", 300, 20.0, &f[6]);
	ck_assert_int_eq(cache_lookup(c, &f[1], 20.0, &h), CACHE_MISS);
	ck_assert_int_eq(cache_lookup(c, &f[0], 20.0, &h), CACHE_FRESH);
	ck_assert_uint_eq(cache_stats(c)->evicted, 3);
	cache_destroy(c);
}
END_TEST

/* Stale entries count in the byte bound like fresh ones, and go first:
 * a cache full of them keeps every fresh answer it can. Entries past
 * stale_max_age are dropped at the next store, full or not. */
START_TEST(test_byte_bound_with_stale)
{
	cache_limits_t lim = limits(4000, 50, 0);
	cache_t *c = cache_create(&lim);
	dnsmsg_query_t q[200];
	cache_hit_t h;
	char name[64];

	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "n%d.example.test", i);
		/* Odd ones short-lived: stale a second later. */
		put_name(c, name, i % 2 ? 1 : 1000, (double)i, &q[i]);
		ck_assert_uint_le(cache_stats(c)->bytes, 4000);
		if (i >= 2 && i % 2 == 0)
			ck_assert_int_eq(cache_lookup(c, &q[i - 2], (double)i, &h),
					 CACHE_FRESH);
	}
	/* Only the newest short-lived ones may be left. */
	for (int i = 1; i < 190; i += 2)
		ck_assert_int_eq(cache_lookup(c, &q[i], 200.0, &h), CACHE_MISS);
	for (int i = 180; i < 200; i += 2)
		ck_assert_int_eq(cache_lookup(c, &q[i], 200.0, &h), CACHE_FRESH);
	cache_destroy(c);

	lim.max_bytes = 1 << 20;
	c = cache_create(&lim);
	put_name(c, "dies.example.test", 1, 0.0, &q[0]);
	put_name(c, "lives.example.test", 1000, 0.0, &q[1]);
	put_name(c, "n2.example.test", 1000, 50.9, &q[2]);
	ck_assert_uint_eq(cache_stats(c)->entries, 3);
	put_name(c, "n3.example.test", 1000, 51.0, &q[3]);
	ck_assert_uint_eq(cache_stats(c)->entries, 3);
	ck_assert_uint_eq(cache_stats(c)->evicted, 0);
	ck_assert_int_eq(cache_lookup(c, &q[1], 51.0, &h), CACHE_FRESH);
	cache_destroy(c);
}
END_TEST

/* The prefetch window: the last tenth of the TTL, TTLs of 10 s and more,
 * one refresh asked for per stored answer. */
START_TEST(test_prefetch_window)
{
	cache_limits_t lim = limits(1 << 20, 0, 1);
	cache_t *c = cache_create(&lim);
	dnsmsg_query_t q, shortq;
	cache_hit_t h;

	put_name(c, "www.example.test", 20, 100.0, &q);
	ck_assert_int_eq(cache_lookup(c, &q, 117.9, &h), CACHE_FRESH);
	ck_assert_int_eq(h.refresh, 0);
	ck_assert_int_eq(cache_lookup(c, &q, 118.0, &h), CACHE_FRESH);
	ck_assert_int_eq(h.refresh, 1);
	ck_assert_uint_eq(h.age, 18);
	/* At most one per answer: the refresh is on its way. */
	ck_assert_int_eq(cache_lookup(c, &q, 119.0, &h), CACHE_FRESH);
	ck_assert_int_eq(h.refresh, 0);
	ck_assert_uint_eq(cache_stats(c)->refreshes, 1);
	/* The refreshed answer has a window of its own. */
	put_name(c, "www.example.test", 20, 119.2, &q);
	ck_assert_int_eq(cache_lookup(c, &q, 121.0, &h), CACHE_FRESH);
	ck_assert_int_eq(h.refresh, 0);
	ck_assert_uint_eq(h.age, 1);
	ck_assert_int_eq(cache_lookup(c, &q, 137.5, &h), CACHE_FRESH);
	ck_assert_int_eq(h.refresh, 1);
	/* A 9-second TTL never asks. */
	put_name(c, "short.example.test", 9, 0.0, &shortq);
	ck_assert_int_eq(cache_lookup(c, &shortq, 8.5, &h), CACHE_FRESH);
	ck_assert_int_eq(h.refresh, 0);
	/* 10 s does, in its last second. */
	put_name(c, "short.example.test", 10, 0.0, &shortq);
	ck_assert_int_eq(cache_lookup(c, &shortq, 8.9, &h), CACHE_FRESH);
	ck_assert_int_eq(h.refresh, 0);
	ck_assert_int_eq(cache_lookup(c, &shortq, 9.0, &h), CACHE_FRESH);
	ck_assert_int_eq(h.refresh, 1);
	cache_destroy(c);
	/* prefetch = no: never. */
	lim.prefetch = 0;
	c = cache_create(&lim);
	put_name(c, "www.example.test", 20, 0.0, &q);
	ck_assert_int_eq(cache_lookup(c, &q, 19.5, &h), CACHE_FRESH);
	ck_assert_int_eq(h.refresh, 0);
	cache_destroy(c);
}
END_TEST

/* cache-min-ttl raises short TTLs (lifetime and the TTLs given out);
 * cache-max-negative-ttl caps negative answers below cache-max-ttl and
 * wins over the minimum; 0 keeps no negative answer; TTL 0 is never
 * raised. */
START_TEST(test_ttl_clamps)
{
	cache_limits_t lim = { 1 << 20, 60, 3600, 30, 0, 0 };
	cache_t *c = cache_create(&lim);
	uint8_t m[512], a[512];
	dnsmsg_query_t q, nx;
	cache_hit_t h;
	size_t n;

	put_name(c, "www.example.test", 5, 0.0, &q);
	ck_assert_int_eq(cache_lookup(c, &q, 59.0, &h), CACHE_FRESH);
	ck_assert_int_eq(dnsmsg_cache_ttl(h.msg, h.len), 60);
	ck_assert_int_eq(cache_lookup(c, &q, 60.0, &h), CACHE_MISS);
	put_name(c, "www.example.test", 7200, 0.0, &q);
	ck_assert_int_eq(cache_lookup(c, &q, 3599.0, &h), CACHE_FRESH);
	ck_assert_int_eq(dnsmsg_cache_ttl(h.msg, h.len), 3600);
	put_name(c, "zero.example.test", 0, 0.0, &q);
	ck_assert_int_eq(cache_lookup(c, &q, 0.0, &h), CACHE_MISS);

	n = make_query(m, "nx.example.test", 0, &nx);
	size_t alen = make_answer(a, m, n, 3, 3600, 600);
	ck_assert_int_eq(dnsmsg_negative(a), 1);
	cache_store(c, &nx, a, alen, 0.0);
	ck_assert_int_eq(cache_lookup(c, &nx, 29.0, &h), CACHE_FRESH);
	ck_assert_int_eq(dnsmsg_cache_ttl(h.msg, h.len), 30);
	ck_assert_int_eq(cache_lookup(c, &nx, 30.0, &h), CACHE_MISS);
	/* NODATA is negative too. */
	alen = make_answer(a, m, n, 0, 3600, 600);
	ck_assert_int_eq(dnsmsg_negative(a), 0);
	DNS_HEADER_SET_ANCOUNT(a, 0);
	ck_assert_int_eq(dnsmsg_negative(a), 1);
	cache_destroy(c);

	lim.max_negative_ttl = 0;
	c = cache_create(&lim);
	cache_store(c, &nx, a, make_answer(a, m, n, 3, 3600, 600), 0.0);
	ck_assert_uint_eq(cache_stats(c)->stored, 0);
	cache_destroy(c);
}
END_TEST

/* A reload's new size evicts at once (stale first, then LRU); a flush
 * empties the cache; size 0 turns it off, and back on. */
START_TEST(test_set_limits_and_flush)
{
	cache_limits_t lim = limits(1 << 20, 3600, 0);
	cache_t *c = cache_create(&lim);
	dnsmsg_query_t q[20], stale;
	cache_hit_t h;
	char name[64];
	size_t one;

	put_name(c, "stale.example.test", 1, 0.0, &stale);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "n%02d.example.test", i);
		put_name(c, name, 300, 1.0, &q[i]);
	}
	one = cache_stats(c)->bytes / 21;
	ck_assert_int_eq(cache_lookup(c, &stale, 10.0, &h), CACHE_STALE);
	lim.max_bytes = 5 * one + one / 2;
	cache_set_limits(c, &lim, 10.0);
	ck_assert_uint_le(cache_stats(c)->bytes, lim.max_bytes);
	ck_assert_uint_eq(cache_stats(c)->entries, 5);
	ck_assert_int_eq(cache_lookup(c, &stale, 10.0, &h), CACHE_MISS);
	for (int i = 15; i < 20; i++)
		ck_assert_int_eq(cache_lookup(c, &q[i], 10.0, &h), CACHE_FRESH);
	ck_assert_uint_eq(cache_flush(c), 5);
	ck_assert_uint_eq(cache_stats(c)->bytes, 0);
	ck_assert_int_eq(cache_lookup(c, &q[19], 10.0, &h), CACHE_MISS);
	lim.max_bytes = 0;
	cache_set_limits(c, &lim, 11.0);
	put_name(c, "n00.example.test", 300, 11.0, &q[0]);
	ck_assert_int_eq(cache_lookup(c, &q[0], 11.0, &h), CACHE_MISS);
	lim.max_bytes = 1 << 20;
	cache_set_limits(c, &lim, 12.0);
	put_name(c, "n00.example.test", 300, 12.0, &q[0]);
	ck_assert_int_eq(cache_lookup(c, &q[0], 12.0, &h), CACHE_FRESH);
	cache_destroy(c);
}
END_TEST

/* Many random stores, resizes and flushes over a small cache: the byte
 * bound always holds, and whenever a fresh answer was evicted, no stale
 * one is left (stale ones go first: a broken expiry heap fails this). */
START_TEST(test_random_operations)
{
	cache_limits_t lim = limits(3000, 20, 1);
	cache_t *c = cache_create(&lim);
	dnsmsg_query_t q[50];
	double expires[50];   /* of the answer stored last; < 0: none */
	cache_state_t st[50];
	cache_hit_t h;
	uint8_t m[512];
	char name[64];
	unsigned seed = 12345;
	double now = 0;

	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "r%d.example.test", i);
		make_query(m, name, 0, &q[i]);
		expires[i] = -1;
	}
	for (int op = 0; op < 5000; op++) {
		unsigned r = (unsigned)rand_r(&seed);
		int i = (int)(r % 50), fresh_lost = 0, stale_left = 0;
		uint32_t ttl = (r >> 20) % 30;
		now += (r >> 8) % 4 * 0.25;
		switch ((r >> 16) % 8) {
		case 0:
			lim.max_bytes = 1000 + (r >> 20) % 4000;
			cache_set_limits(c, &lim, now);
			break;
		case 1:
			if ((r >> 20) % 8 == 0) {
				cache_flush(c);
				for (int k = 0; k < 50; k++)
					expires[k] = -1;
			}
			break;
		default:
			snprintf(name, sizeof(name), "r%d.example.test", i);
			put_name(c, name, ttl, now, &q[i]);
			if (ttl > 0)
				expires[i] = now + ttl;
			break;
		}
		ck_assert_uint_le(cache_stats(c)->bytes, lim.max_bytes);
		for (int k = 0; k < 50; k++) {
			st[k] = cache_lookup(c, &q[k], now, &h);
			fresh_lost |= st[k] == CACHE_MISS && expires[k] > now;
			stale_left |= st[k] == CACHE_STALE;
			if (st[k] == CACHE_MISS)
				expires[k] = -1;
		}
		ck_assert_msg(!(fresh_lost && stale_left),
			      "op %d: a fresh answer evicted before a stale one", op);
	}
	cache_destroy(c);
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_hit_miss_expiry_aging);
	tcase_add_test(tc, test_negative_and_uncacheable);
	tcase_add_test(tc, test_lru_eviction_by_bytes);
	tcase_add_test(tc, test_key_folds_only_the_name);
	tcase_add_test(tc, test_rd0_answers_not_kept);
	tcase_add_test(tc, test_ttl_capped);
	suite_add_tcase(s, tc);
	tc = tcase_create("stale");
	tcase_add_test(tc, test_stale_retention_and_max_age);
	tcase_add_test(tc, test_stale_evicted_first);
	tcase_add_test(tc, test_byte_bound_with_stale);
	tcase_add_test(tc, test_prefetch_window);
	tcase_add_test(tc, test_ttl_clamps);
	tcase_add_test(tc, test_set_limits_and_flush);
	tcase_add_test(tc, test_random_operations);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(cache_suite)
