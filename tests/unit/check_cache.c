/* cache: hits and misses, TTL expiry and aging, negative answers, the DO
 * bit in the key, byte-bounded LRU eviction. */
#include <ares.h>
#include <ares_dns.h>
#include <check.h>
#include <stdio.h>
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

START_TEST(test_hit_miss_expiry_aging)
{
	cache_t *c = cache_create(1 << 20, 86400);
	uint8_t m[512], a[512], copy[512];
	dnsmsg_query_t q;
	const uint8_t *msg;
	size_t len, n = make_query(m, "www.example.test", 0, &q);
	size_t alen = make_answer(a, m, n, 0, 300, 0);
	uint32_t age;

	ck_assert_int_eq(dnsmsg_cache_ttl(a, alen), 300);
	ck_assert_int_eq(cache_lookup(c, &q, 100.0, &msg, &len, &age), 0);
	cache_store(c, &q, a, alen, 100.0);
	ck_assert_int_eq(cache_lookup(c, &q, 160.5, &msg, &len, &age), 1);
	ck_assert_uint_eq(len, alen);
	ck_assert_uint_eq(age, 60);
	memcpy(copy, msg, len);
	dnsmsg_age_ttls(copy, len, age);
	ck_assert_int_eq(dnsmsg_cache_ttl(copy, len), 240);
	/* The same question in other letters is the same question. */
	dnsmsg_query_t upper;
	make_query(m, "WWW.Example.TEST", 0, &upper);
	ck_assert_int_eq(cache_lookup(c, &upper, 161.0, &msg, &len, &age), 1);
	/* With DO set it is another entry. */
	dnsmsg_query_t dnssec;
	make_query(m, "www.example.test", 1, &dnssec);
	ck_assert_int_eq(dnssec.edns_do, 1);
	ck_assert_int_eq(cache_lookup(c, &dnssec, 161.0, &msg, &len, &age), 0);
	/* And with CD set (validation skipped) another again. */
	dnsmsg_query_t cd;
	size_t cn = make_query(m, "www.example.test", 0, &cd);
	m[3] |= 0x10;
	ck_assert_int_eq(dnsmsg_parse_query(m, cn, &cd), DNSMSG_OK);
	ck_assert_int_eq(cd.cd, 1);
	ck_assert_int_eq(cache_lookup(c, &cd, 161.0, &msg, &len, &age), 0);
	/* Gone once the TTL has run out. */
	ck_assert_int_eq(cache_lookup(c, &q, 400.0, &msg, &len, &age), 0);
	ck_assert_uint_eq(cache_stats(c)->entries, 0);
	cache_destroy(c);
}
END_TEST

START_TEST(test_negative_and_uncacheable)
{
	cache_t *c = cache_create(1 << 20, 86400);
	uint8_t m[512], a[512];
	dnsmsg_query_t q;
	const uint8_t *msg;
	size_t len, n = make_query(m, "nx.example.test", 0, &q);
	uint32_t age;

	/* NXDOMAIN: the SOA's TTL capped by its MINIMUM. */
	size_t alen = make_answer(a, m, n, 3, 3600, 60);
	ck_assert_int_eq(dnsmsg_cache_ttl(a, alen), 60);
	cache_store(c, &q, a, alen, 0.0);
	ck_assert_int_eq(cache_lookup(c, &q, 59.0, &msg, &len, &age), 1);
	ck_assert_int_eq(cache_lookup(c, &q, 61.0, &msg, &len, &age), 0);
	/* SERVFAIL, truncated, TTL 0: not kept. */
	alen = make_answer(a, m, n, 0, 300, 0);
	a[3] = 2;
	ck_assert_int_eq(dnsmsg_cache_ttl(a, alen), -1);
	a[3] = 0;
	a[2] |= 0x02;
	ck_assert_int_eq(dnsmsg_cache_ttl(a, alen), -1);
	alen = make_answer(a, m, n, 0, 0, 0);
	cache_store(c, &q, a, alen, 0.0);
	ck_assert_int_eq(cache_lookup(c, &q, 0.0, &msg, &len, &age), 0);
	ck_assert_int_eq(dnsmsg_cache_ttl(a, alen - 1), -1);
	cache_destroy(c);
}
END_TEST

START_TEST(test_lru_eviction_by_bytes)
{
	cache_t *c = cache_create(2000, 86400);
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
		ck_assert_int_eq(cache_lookup(c, &q[0], 0.0, &msg, &len, &age), 1);
		ck_assert_uint_le(cache_stats(c)->bytes, 2000);
	}
	ck_assert_uint_gt(cache_stats(c)->evicted, 0);
	ck_assert_int_eq(cache_lookup(c, &q[1], 0.0, &msg, &len, &age), 0);
	ck_assert_int_eq(cache_lookup(c, &q[39], 0.0, &msg, &len, &age), 1);
	cache_destroy(c);
	/* Size 0: no cache. */
	c = cache_create(0, 86400);
	cache_store(c, &q[0], a, 40, 0.0);
	ck_assert_int_eq(cache_lookup(c, &q[0], 0.0, &msg, &len, &age), 0);
	cache_destroy(c);
}
END_TEST

/* The key folds the name's case only: QTYPE 97 ('a') and 65 ('A') are
 * two questions. */
START_TEST(test_key_folds_only_the_name)
{
	cache_t *c = cache_create(1 << 20, 86400);
	uint8_t m[512], a[512];
	dnsmsg_query_t q65, q97, upper;
	const uint8_t *msg;
	size_t len, n = make_query_type(m, "www.example.test", 65, 0, &q65);
	uint32_t age;

	cache_store(c, &q65, a, make_answer(a, m, n, 0, 300, 0), 0.0);
	make_query_type(m, "WWW.EXAMPLE.TEST", 65, 0, &upper);
	ck_assert_int_eq(cache_lookup(c, &upper, 1.0, &msg, &len, &age), 1);
	make_query_type(m, "www.example.test", 97, 0, &q97);
	ck_assert_int_eq(cache_lookup(c, &q97, 1.0, &msg, &len, &age), 0);
	cache_destroy(c);
}
END_TEST

/* An answer to an RD=0 query is whatever the upstream had at hand (a
 * referral, say): not an answer for the recursive queries of others. */
START_TEST(test_rd0_answers_not_kept)
{
	cache_t *c = cache_create(1 << 20, 86400);
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
	ck_assert_int_eq(cache_lookup(c, &q, 1.0, &msg, &len, &age), 0);
	/* An RD=1 answer is kept, and serves RD=0 questions too. */
	a[2] |= 0x01;
	cache_store(c, &q, a, alen, 0.0);
	ck_assert_int_eq(cache_lookup(c, &norec, 1.0, &msg, &len, &age), 1);
	cache_destroy(c);
}
END_TEST

/* A TTL of 2^31-1 is kept for the cap (86400 by default), and the copy
 * given out carries TTLs no higher. */
START_TEST(test_ttl_capped)
{
	cache_t *c = cache_create(1 << 20, 86400);
	uint8_t m[512], a[512], copy[512];
	dnsmsg_query_t q;
	const uint8_t *msg;
	size_t len, n = make_query(m, "www.example.test", 0, &q);
	size_t alen = make_answer(a, m, n, 0, 0x7fffffff, 0);
	uint32_t age;

	cache_store(c, &q, a, alen, 0.0);
	ck_assert_int_eq(cache_lookup(c, &q, 10.0, &msg, &len, &age), 1);
	memcpy(copy, msg, len);
	dnsmsg_age_ttls(copy, len, age);
	ck_assert_int_eq(dnsmsg_cache_ttl(copy, len), 86400 - 10);
	ck_assert_int_eq(cache_lookup(c, &q, 86400.5, &msg, &len, &age), 0);
	cache_destroy(c);
	/* Another cap, and an answer below it kept as it is. */
	c = cache_create(1 << 20, 100);
	cache_store(c, &q, a, alen, 0.0);
	ck_assert_int_eq(cache_lookup(c, &q, 0.0, &msg, &len, &age), 1);
	ck_assert_int_eq(dnsmsg_cache_ttl(msg, len), 100);
	ck_assert_int_eq(cache_lookup(c, &q, 100.5, &msg, &len, &age), 0);
	alen = make_answer(a, m, n, 0, 60, 0);
	cache_store(c, &q, a, alen, 200.0);
	ck_assert_int_eq(cache_lookup(c, &q, 200.0, &msg, &len, &age), 1);
	ck_assert_int_eq(dnsmsg_cache_ttl(msg, len), 60);
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
	return s;
}

CHECK_MAIN(cache_suite)
