/* dnsmsg: query checks, error replies, padding, answer matching and the
 * client's view of an answer (ID, OPT, truncation). */
#include <ares.h>
#include <ares_dns.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/dnsmsg.h"

#include "check_main.h"

/* A query as a stub client sends it (c-ares builds it); edns 0 = no OPT. */
static size_t make_query(uint8_t *out, const char *name, int type,
			 int edns, uint16_t id)
{
	unsigned char *buf;
	int len;

	ck_assert_int_eq(ares_create_query(name, 1, type, id, 1, &buf, &len, edns),
			 ARES_SUCCESS);
	memcpy(out, buf, (size_t)len);
	ares_free_string(buf);
	return (size_t)len;
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Walk to the additional section and report the OPT's UDP size and
 * whether it has a padding option; returns the number of OPT records. */
static int find_opt(const uint8_t *m, size_t len, unsigned *udp, int *padded)
{
	size_t off = 12;
	int opts = 0;
	unsigned counts = DNS_HEADER_ANCOUNT(m) + DNS_HEADER_NSCOUNT(m) +
			  DNS_HEADER_ARCOUNT(m);
	char *name;
	long enclen;

	for (unsigned i = 0; i < DNS_HEADER_QDCOUNT(m); i++) {
		ck_assert_int_eq(ares_expand_name(m + off, m, (int)len, &name, &enclen), 0);
		ares_free_string(name);
		off += (size_t)enclen + 4;
	}
	*padded = 0;
	for (unsigned i = 0; i < counts; i++) {
		ck_assert_int_eq(ares_expand_name(m + off, m, (int)len, &name, &enclen), 0);
		ares_free_string(name);
		off += (size_t)enclen;
		unsigned type = DNS_RR_TYPE(m + off), rdlen = DNS_RR_LEN(m + off);
		if (type == 41) {
			opts++;
			*udp = DNS_RR_CLASS(m + off);
			for (size_t p = off + 10; p + 4 <= off + 10 + rdlen;
			     p += 4 + DNS__16BIT(m + p + 2))
				if (DNS__16BIT(m + p) == 12)
					*padded = 1;
		}
		off += 10 + rdlen;
		ck_assert_uint_le(off, len);
	}
	ck_assert_uint_eq(off, len);
	return opts;
}

START_TEST(test_parse_ok)
{
	uint8_t m[512];
	size_t n = make_query(m, "www.Example.test", 28, 4096, 0x1234);
	dnsmsg_query_t q;
	char name[256];

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	ck_assert_uint_eq(q.id, 0x1234);
	ck_assert_uint_eq(q.qtype, 28);
	ck_assert_uint_eq(q.qclass, 1);
	ck_assert_int_eq(q.edns, 1);
	ck_assert_uint_eq(q.udp_max, 1232);   /* 4096 asked; 1232 at most */
	ck_assert_uint_eq(q.question_len, 18 + 4);
	dnsmsg_query_name(&q, name, sizeof(name));
	ck_assert_str_eq(name, "www.Example.test");

	n = make_query(m, "a.test", 1, 0, 7);
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	ck_assert_int_eq(q.edns, 0);
	ck_assert_uint_eq(q.udp_max, 512);
}
END_TEST

START_TEST(test_parse_drop)
{
	uint8_t m[512];
	size_t n = make_query(m, "a.test", 1, 0, 7);
	dnsmsg_query_t q;

	ck_assert_int_eq(dnsmsg_parse_query(m, 5, &q), DNSMSG_DROP);
	ck_assert_int_eq(dnsmsg_parse_query(m, 11, &q), DNSMSG_DROP);
	m[2] |= 0x80;  /* QR=1: a response, never answered (no loops) */
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_DROP);
}
END_TEST

START_TEST(test_parse_formerr_notimp)
{
	uint8_t m[512];
	size_t n = make_query(m, "a.test", 1, 0, 7);
	dnsmsg_query_t q;

	put16(m + 4, 0);   /* QDCOUNT=0 */
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_FORMERR);
	put16(m + 4, 2);   /* QDCOUNT=2 */
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_FORMERR);
	put16(m + 4, 1);
	m[12] = 60;        /* a label running past the end */
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_FORMERR);
	ck_assert_int_eq(dnsmsg_parse_query(m, 12, &q), DNSMSG_FORMERR);

	n = make_query(m, "a.test", 1, 0, 7);
	ck_assert_int_eq(dnsmsg_parse_query(m, n - 2, &q), DNSMSG_FORMERR);
	m[2] |= 5 << 3;    /* UPDATE */
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_NOTIMP);
	ck_assert_int_eq(q.has_question, 1);
}
END_TEST

START_TEST(test_parse_two_opts)
{
	uint8_t m[512];
	size_t n = make_query(m, "a.test", 1, 1232, 7);
	dnsmsg_query_t q;

	/* Append a second copy of the 11-byte OPT. */
	memcpy(m + n, m + n - 11, 11);
	put16(m + 10, 2);
	ck_assert_int_eq(dnsmsg_parse_query(m, n + 11, &q), DNSMSG_FORMERR);
}
END_TEST

START_TEST(test_error_reply)
{
	uint8_t m[512], out[512];
	size_t n = make_query(m, "a.test", 16, 1232, 0xbeef);
	dnsmsg_query_t q;
	unsigned udp;
	int padded;

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t r = dnsmsg_error_reply(&q, m, n, DNSMSG_RCODE_SERVFAIL, out, sizeof(out));
	ck_assert_uint_gt(r, 12);
	ck_assert_uint_eq(DNS_HEADER_QID(out), 0xbeef);
	ck_assert_int_eq(DNS_HEADER_QR(out), 1);
	ck_assert_int_eq(DNS_HEADER_RD(out), 1);
	ck_assert_int_eq(DNS_HEADER_RCODE(out), 2);
	ck_assert_int_eq(DNS_HEADER_QDCOUNT(out), 1);
	ck_assert_int_eq(find_opt(out, r, &udp, &padded), 1);
	ck_assert_uint_eq(udp, DNSMSG_EDNS_UDP_SIZE);
	ck_assert_int_eq(dnsmsg_answer_matches(out, r, q.question, q.question_len), 1);
}
END_TEST

/* REFUSED to a client not in the allow list: never more bytes than it
 * sent (no OPT echoed), even for the smallest query it can send. */
START_TEST(test_refused_reply_no_larger)
{
	uint8_t m[512], out[512];
	dnsmsg_query_t q;
	unsigned udp;
	int padded;

	for (int edns = 0; edns <= 1; edns++) {
		size_t n = make_query(m, "a.test", 1, edns ? 65535 : 0, 0xcafe);
		dnsmsg_parse_query(m, n, &q);
		size_t r = dnsmsg_refused_reply(&q, m, n, out, sizeof(out));
		ck_assert_uint_gt(r, 12);
		ck_assert_uint_le(r, n);
		ck_assert_uint_eq(DNS_HEADER_QID(out), 0xcafe);
		ck_assert_int_eq(DNS_HEADER_QR(out), 1);
		ck_assert_int_eq(DNS_HEADER_RCODE(out), DNSMSG_RCODE_REFUSED);
		ck_assert_int_eq(DNS_HEADER_ANCOUNT(out), 0);
		ck_assert_int_eq(find_opt(out, r, &udp, &padded), 0);
		ck_assert_int_eq(dnsmsg_answer_matches(out, r, q.question, q.question_len), 1);
	}
	/* A bare header (no question): a bare header back, 12 bytes. */
	memset(m, 0, 12);
	m[0] = 0x12;
	m[1] = 0x34;
	dnsmsg_parse_query(m, 12, &q);
	ck_assert_uint_eq(dnsmsg_refused_reply(&q, m, 12, out, sizeof(out)), 12);
	ck_assert_int_eq(DNS_HEADER_QDCOUNT(out), 0);
	/* No room: nothing. */
	ck_assert_uint_eq(dnsmsg_refused_reply(&q, m, 12, out, 11), 0);
}
END_TEST

START_TEST(test_padding_multiple_of_block)
{
	/* Query names of every presentation length 1..253. */
	for (size_t plen = 1; plen <= 253; plen++) {
		char name[300];
		uint8_t m[512], up[1024];
		dnsmsg_query_t q;
		unsigned udp;
		int padded;

		for (size_t i = 0; i < plen; i++)
			name[i] = i % 51 == 50 ? '.' : 'a';
		name[plen] = '\0';
		if (name[plen - 1] == '.')
			name[plen - 1] = 'a';
		for (int edns = 0; edns <= 1; edns++) {
			size_t n = make_query(m, name, 1, edns ? 1232 : 0, 1);
			ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
			size_t u = dnsmsg_build_upstream(m, n, &q, 0x4242, 128, up, sizeof(up));
			ck_assert_msg(u > 0 && u % 128 == 0, "name length %zu: %zu bytes",
				      plen, u);
			ck_assert_int_eq(find_opt(up, u, &udp, &padded), 1);
			ck_assert_int_eq(padded, 1);
			ck_assert_uint_eq(DNS_HEADER_QID(up), 0x4242);
			/* Still a valid query for the same question. */
			dnsmsg_query_t q2;
			ck_assert_int_eq(dnsmsg_parse_query(up, u, &q2), DNSMSG_OK);
			ck_assert_mem_eq(q2.question, q.question, q.question_len);
		}
	}
}
END_TEST

START_TEST(test_no_padding_when_off)
{
	uint8_t m[512], up[1024];
	dnsmsg_query_t q;
	unsigned udp;
	int padded;
	size_t n = make_query(m, "a.test", 1, 0, 1);

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t u = dnsmsg_build_upstream(m, n, &q, 9, 0, up, sizeof(up));
	ck_assert_uint_eq(u, n + 11 + 4);   /* OPT + empty keepalive */
	ck_assert_int_eq(find_opt(up, u, &udp, &padded), 1);
	ck_assert_int_eq(padded, 0);
	/* Padding never grows a message past its limit: then it goes
	 * unpadded; a buffer too small for even that is an error. */
	ck_assert_uint_eq(dnsmsg_build_upstream(m, n, &q, 9, 128, up, 100), n + 11 + 4);
	ck_assert_uint_eq(dnsmsg_build_upstream(m, n, &q, 9, 128, up, 20), 0);
}
END_TEST

/* An answer to `m` with TXT records adding up to about `txt_bytes`, and
 * an OPT carrying `pad` bytes of padding. */
static size_t make_answer(uint8_t *out, const uint8_t *m, size_t n,
			  size_t txt_bytes, size_t pad)
{
	size_t qend = 12, len;
	char *name;
	long enclen;
	unsigned an = 0;

	ck_assert_int_eq(ares_expand_name(m + 12, m, (int)n, &name, &enclen), 0);
	ares_free_string(name);
	qend += (size_t)enclen + 4;
	memcpy(out, m, qend);
	out[2] |= 0x80;
	len = qend;
	while (txt_bytes > 0) {
		size_t s = txt_bytes > 255 ? 255 : txt_bytes;
		out[len++] = 0xc0;   /* pointer to the question's name */
		out[len++] = 12;
		put16(out + len, 16);
		put16(out + len + 2, 1);
		memset(out + len + 4, 0, 4);
		put16(out + len + 8, (unsigned)s + 1);
		len += 10;
		out[len++] = (uint8_t)s;
		memset(out + len, 'x', s);
		len += s;
		txt_bytes -= s;
		an++;
	}
	out[len++] = 0;
	put16(out + len, 41);
	put16(out + len + 2, 4096);
	memset(out + len + 4, 0, 4);
	put16(out + len + 8, (unsigned)(4 + pad));
	len += 10;
	put16(out + len, 12);
	put16(out + len + 2, (unsigned)pad);
	memset(out + len + 4, 0, pad);
	len += 4 + pad;
	put16(out + 6, an);
	put16(out + 8, 0);
	put16(out + 10, 1);
	return len;
}

START_TEST(test_truncation_without_edns)
{
	uint8_t m[512], ans[4096], out[65536];
	dnsmsg_query_t q;
	unsigned udp;
	int padded;
	size_t n = make_query(m, "big.example.test", 16, 0, 0x7777);

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t a = make_answer(ans, m, n, 3000, 60);
	ck_assert_uint_gt(a, 3000);
	DNS_HEADER_SET_QID(ans, 0x1111);   /* the upstream's ID */
	size_t r = dnsmsg_build_client_answer(ans, a, &q, q.udp_max, out, sizeof(out));
	ck_assert_uint_gt(r, 0);
	ck_assert_uint_le(r, 512);
	ck_assert_int_eq(DNS_HEADER_TC(out), 1);
	ck_assert_uint_eq(DNS_HEADER_QID(out), 0x7777);
	ck_assert_int_eq(DNS_HEADER_ANCOUNT(out), 0);
	/* The client sent no OPT, so it gets none. */
	ck_assert_int_eq(find_opt(out, r, &udp, &padded), 0);
	ck_assert_int_eq(dnsmsg_answer_matches(out, r, q.question, q.question_len), 1);
}
END_TEST

/* A client's EDNS size is honoured up to 1232 (DNS Flag Day 2020): a
 * bigger one would let a spoofed 40-byte query draw kilobytes. */
START_TEST(test_udp_size_capped)
{
	static const struct { int edns; unsigned udp_max; } cases[] = {
		{ 65535, 1232 }, { 4096, 1232 }, { 1233, 1232 }, { 1232, 1232 },
		{ 1000, 1000 }, { 513, 513 }, { 100, 512 }, { 0, 512 },
	};
	uint8_t m[512], ans[4096], out[65536];
	dnsmsg_query_t q;
	unsigned udp;
	int padded;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = make_query(m, "big.example.test", 16, cases[i].edns, 9);
		ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
		ck_assert_msg(q.udp_max == cases[i].udp_max, "EDNS %d: udp_max %u",
			      cases[i].edns, q.udp_max);
	}
	size_t n = make_query(m, "big.example.test", 16, 65535, 0x7777);
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t a = make_answer(ans, m, n, 3000, 60);
	size_t r = dnsmsg_build_client_answer(ans, a, &q, q.udp_max, out, sizeof(out));
	ck_assert_uint_gt(r, 0);
	ck_assert_uint_le(r, 1232);
	ck_assert_int_eq(DNS_HEADER_TC(out), 1);
	ck_assert_int_eq(DNS_HEADER_ANCOUNT(out), 0);
	ck_assert_int_eq(find_opt(out, r, &udp, &padded), 1);
	ck_assert_uint_eq(udp, DNSMSG_EDNS_UDP_SIZE);
}
END_TEST

START_TEST(test_whole_answer_with_edns_and_tcp)
{
	uint8_t m[512], ans[4096], out[65536];
	dnsmsg_query_t q;
	unsigned udp;
	int padded;
	size_t n = make_query(m, "big.example.test", 16, 4096, 0x7777);

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t a = make_answer(ans, m, n, 3000, 60);
	size_t r = dnsmsg_build_client_answer(ans, a, &q, 0, out, sizeof(out));
	ck_assert_int_eq(DNS_HEADER_TC(out), 0);
	ck_assert_int_eq(DNS_HEADER_ANCOUNT(out), DNS_HEADER_ANCOUNT(ans));
	ck_assert_uint_eq(r, a - 4 - 60);   /* only the padding went */
	ck_assert_int_eq(find_opt(out, r, &udp, &padded), 1);
	ck_assert_int_eq(padded, 0);
	ck_assert_uint_eq(udp, DNSMSG_EDNS_UDP_SIZE);

	/* Over TCP (no limit) the client without EDNS gets it all too. */
	n = make_query(m, "big.example.test", 16, 0, 0x7777);
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	a = make_answer(ans, m, n, 3000, 60);
	r = dnsmsg_build_client_answer(ans, a, &q, 0, out, sizeof(out));
	ck_assert_int_eq(DNS_HEADER_TC(out), 0);
	ck_assert_uint_eq(r, a - 11 - 4 - 60);   /* the whole OPT went */
	ck_assert_int_eq(find_opt(out, r, &udp, &padded), 0);
}
END_TEST

/* What the cache keeps: the padding gone, the OPT, the ID and the records
 * kept, whether or not the client that asked sent an OPT. */
START_TEST(test_strip_answer)
{
	uint8_t m[512], ans[4096], out[65536];
	unsigned udp;
	int padded;
	size_t n = make_query(m, "big.example.test", 16, 0, 0x7777);
	size_t a = make_answer(ans, m, n, 300, 400);

	DNS_HEADER_SET_QID(ans, 0x1111);
	size_t r = dnsmsg_strip_answer(ans, a, out, sizeof(out));
	ck_assert_uint_eq(r, a - 4 - 400);   /* only the padding went */
	ck_assert_uint_eq(DNS_HEADER_QID(out), 0x1111);
	ck_assert_int_eq(DNS_HEADER_ANCOUNT(out), DNS_HEADER_ANCOUNT(ans));
	ck_assert_int_eq(find_opt(out, r, &udp, &padded), 1);
	ck_assert_int_eq(padded, 0);
	ck_assert_mem_eq(out + 12, ans + 12, r - 12 - 11);   /* question, records */
	ck_assert_uint_eq(dnsmsg_strip_answer(ans, 8, out, sizeof(out)), 0);
}
END_TEST

START_TEST(test_answer_matching)
{
	uint8_t m[512], other[512], ans[4096];
	dnsmsg_query_t q;
	size_t n = make_query(m, "www.example.test", 1, 0, 1);

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t a = make_answer(ans, m, n, 10, 0);
	ck_assert_int_eq(dnsmsg_answer_matches(ans, a, q.question, q.question_len), 1);
	/* Case differs (0x20 style): still the same question. */
	ans[13] = 'W';
	ck_assert_int_eq(dnsmsg_answer_matches(ans, a, q.question, q.question_len), 1);
	/* Another name of the same length, another type, no QR, truncated. */
	size_t on = make_query(other, "www.example.tesx", 1, 0, 1);
	a = make_answer(ans, other, on, 10, 0);
	ck_assert_int_eq(dnsmsg_answer_matches(ans, a, q.question, q.question_len), 0);
	on = make_query(other, "www.example.test", 28, 0, 1);
	a = make_answer(ans, other, on, 10, 0);
	ck_assert_int_eq(dnsmsg_answer_matches(ans, a, q.question, q.question_len), 0);
	a = make_answer(ans, m, n, 10, 0);
	ans[2] &= 0x7f;
	ck_assert_int_eq(dnsmsg_answer_matches(ans, a, q.question, q.question_len), 0);
	ck_assert_int_eq(dnsmsg_answer_matches(ans, 14, q.question, q.question_len), 0);
}
END_TEST

START_TEST(test_unreadable_answer)
{
	uint8_t m[512], ans[4096], out[4096];
	dnsmsg_query_t q;
	size_t n = make_query(m, "a.test", 1, 0, 1);

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t a = make_answer(ans, m, n, 100, 0);
	ck_assert_uint_eq(dnsmsg_build_client_answer(ans, a - 3, &q, 0, out, sizeof(out)), 0);
	ck_assert_uint_eq(dnsmsg_build_client_answer(ans, 8, &q, 0, out, sizeof(out)), 0);
}
END_TEST

START_TEST(test_keepalive)
{
	uint8_t m[512], ans[4096], out[4096];
	dnsmsg_query_t q;
	size_t n = make_query(m, "a.test", 1, 1232, 1);

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t a = make_answer(ans, m, n, 10, 2);
	ck_assert_int_eq(dnsmsg_answer_keepalive(ans, a), -1);
	/* Turn the 2-byte padding option into keepalive = 50 (5 s). */
	ans[a - 6] = 0;
	ans[a - 5] = 11;
	ans[a - 2] = 0;
	ans[a - 1] = 50;
	ck_assert_int_eq(dnsmsg_answer_keepalive(ans, a), 50);
	/* It is hop-by-hop: the client does not get it. */
	size_t r = dnsmsg_build_client_answer(ans, a, &q, 0, out, sizeof(out));
	ck_assert_uint_eq(r, a - 6);
	ck_assert_int_eq(dnsmsg_answer_keepalive(out, r), -1);
	ck_assert_int_eq(dnsmsg_answer_keepalive(ans, 5), -1);
}
END_TEST

static Suite *dnsmsg_suite(void)
{
	Suite *s = suite_create("dnsmsg");
	TCase *tc = tcase_create("query");

	tcase_add_test(tc, test_parse_ok);
	tcase_add_test(tc, test_parse_drop);
	tcase_add_test(tc, test_parse_formerr_notimp);
	tcase_add_test(tc, test_parse_two_opts);
	tcase_add_test(tc, test_error_reply);
	tcase_add_test(tc, test_refused_reply_no_larger);
	suite_add_tcase(s, tc);
	tc = tcase_create("upstream");
	tcase_add_test(tc, test_padding_multiple_of_block);
	tcase_add_test(tc, test_strip_answer);
	tcase_add_test(tc, test_no_padding_when_off);
	suite_add_tcase(s, tc);
	tc = tcase_create("answer");
	tcase_add_test(tc, test_truncation_without_edns);
	tcase_add_test(tc, test_udp_size_capped);
	tcase_add_test(tc, test_whole_answer_with_edns_and_tcp);
	tcase_add_test(tc, test_answer_matching);
	tcase_add_test(tc, test_unreadable_answer);
	tcase_add_test(tc, test_keepalive);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dnsmsg_suite)
