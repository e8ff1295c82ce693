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

/* Every query leaves padded to the block, in the room query.c gives it
 * (dnsmsg_padded_size()): names of every presentation length 1..253, with
 * and without the client's OPT. */
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
			size_t cap = dnsmsg_padded_size(n, 128);
			ck_assert_uint_le(cap, sizeof(up));
			size_t u = dnsmsg_build_upstream(m, n, &q, 0x4242, 128, up, cap);
			ck_assert_msg(u > 0 && u % 128 == 0,
				      "name length %zu, edns %d: %zu bytes in %zu",
				      plen, edns, u, cap);
			ck_assert_int_eq(find_opt(up, u, &udp, &padded), 1);
			ck_assert_int_eq(padded, 1);
			ck_assert_uint_eq(DNS_HEADER_QID(up), 0x4242);
			/* Still a valid query for the same question. */
			dnsmsg_query_t q2;
			ck_assert_int_eq(dnsmsg_parse_query(up, u, &q2), DNSMSG_OK);
			ck_assert_mem_eq(q2.question, q.question, q.question_len);
		}
	}
	/* Without padding: the OPT and the keepalive fit exactly. */
	ck_assert_uint_eq(dnsmsg_padded_size(40, 0), 40 + 11 + 4);
	ck_assert_uint_eq(dnsmsg_padded_size(65530, 128), DNSMSG_MAX);
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
	/* Plain DNS (forward zones): an OPT, but no keepalive (RFC 7828
	 * forbids it over UDP) and no padding. */
	u = dnsmsg_build_plain(m, n, &q, up, sizeof(up));
	ck_assert_uint_eq(u, n + 11);
	ck_assert_uint_eq(up[u - 2] << 8 | up[u - 1], 0);   /* RDLEN 0 */
	ck_assert_uint_le(u, dnsmsg_padded_size(n, 0));
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

/* Only the name is compared without regard to case: QTYPE 97 is 'a' and
 * 65 is 'A' in ASCII, and an answer for one is no answer for the other. */
START_TEST(test_answer_matching_folds_only_the_name)
{
	uint8_t m[512], other[512], ans[4096];
	dnsmsg_query_t q;
	size_t n = make_query(m, "www.example.test", 65, 0, 1);

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t on = make_query(other, "WWW.example.TEST", 65, 0, 1);
	size_t a = make_answer(ans, other, on, 10, 0);
	ck_assert_int_eq(dnsmsg_answer_matches(ans, a, q.question, q.question_len), 1);
	on = make_query(other, "www.example.test", 97, 0, 1);
	a = make_answer(ans, other, on, 10, 0);
	ck_assert_int_eq(dnsmsg_answer_matches(ans, a, q.question, q.question_len), 0);
	/* QCLASS likewise: 0x0041 is not 0x0061. */
	a = make_answer(ans, m, n, 10, 0);
	ans[12 + q.question_len - 1] = 0x61;
	q.question[q.question_len - 1] = 0x41;
	ck_assert_int_eq(dnsmsg_answer_matches(ans, a, q.question, q.question_len), 0);
}
END_TEST

/* Append an EDNS option (code, `olen` bytes of 0x5a) to the OPT record
 * that starts at opt_at and ends the message (*n bytes). */
static void add_option(uint8_t *m, size_t *n, size_t opt_at, unsigned code,
		       size_t olen)
{
	put16(m + *n, code);
	put16(m + *n + 2, (unsigned)olen);
	memset(m + *n + 4, 0x5a, olen);
	*n += 4 + olen;
	put16(m + opt_at + 9, DNS__16BIT(m + opt_at + 9) + 4 + (unsigned)olen);
}

/* The option codes of a message's OPT record, as a bit set of codes < 32
 * (-1 when it has no OPT). */
static long opt_codes(const uint8_t *m, size_t len)
{
	size_t off = 12;
	unsigned counts = DNS_HEADER_ANCOUNT(m) + DNS_HEADER_NSCOUNT(m) +
			  DNS_HEADER_ARCOUNT(m);
	char *name;
	long enclen, codes = -1;

	for (unsigned i = 0; i < DNS_HEADER_QDCOUNT(m) + counts; i++) {
		ck_assert_int_eq(ares_expand_name(m + off, m, (int)len, &name, &enclen), 0);
		ares_free_string(name);
		off += (size_t)enclen;
		if (i < DNS_HEADER_QDCOUNT(m)) {
			off += 4;
			continue;
		}
		unsigned type = DNS_RR_TYPE(m + off), rdlen = DNS_RR_LEN(m + off);
		for (size_t p = off + 10; type == 41 && p + 4 <= off + 10 + rdlen;
		     p += 4 + DNS__16BIT(m + p + 2)) {
			ck_assert_uint_lt(DNS__16BIT(m + p), 32);
			codes = (codes < 0 ? 0 : codes) | 1L << DNS__16BIT(m + p);
		}
		if (type == 41 && codes < 0)
			codes = 0;
		off += 10 + rdlen;
	}
	ck_assert_uint_eq(off, len);
	return codes;
}

#define BIT(code) (1L << (code))
enum { NSID = 3, ECS = 8, EXPIRE = 9, COOKIE = 10, KEEPALIVE = 11,
       PADDING = 12, EDE = 15 };

/* A client's subnet and cookie never go upstream (privacy; a cookie is
 * between two hops); other options do. */
START_TEST(test_upstream_strips_ecs_and_cookie)
{
	uint8_t m[512], up[1024];
	dnsmsg_query_t q;
	size_t n = make_query(m, "www.example.test", 1, 1232, 1);
	size_t opt_at = n - 11;

	add_option(m, &n, opt_at, ECS, 7);
	add_option(m, &n, opt_at, NSID, 0);
	add_option(m, &n, opt_at, COOKIE, 8);
	add_option(m, &n, opt_at, COOKIE, 24);
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t u = dnsmsg_build_upstream(m, n, &q, 2, 128, up,
					 dnsmsg_padded_size(n, 128));
	ck_assert_uint_eq(u % 128, 0);
	ck_assert_int_eq(opt_codes(up, u), BIT(NSID) | BIT(KEEPALIVE) | BIT(PADDING));
}
END_TEST

/* What an upstream says to its own client (server cookie, the subnet it
 * answered for, zone expiry, keepalive, padding) is not kept in the cache
 * nor passed to clients; what describes the answer (NSID, EDE) is. */
START_TEST(test_answer_strips_per_hop_options)
{
	uint8_t m[512], ans[4096], kept[4096], out[4096];
	dnsmsg_query_t q;
	size_t n = make_query(m, "www.example.test", 1, 1232, 1);

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t a = make_answer(ans, m, n, 10, 30);
	size_t opt_at = a - 11 - 4 - 30;
	add_option(ans, &a, opt_at, COOKIE, 24);
	add_option(ans, &a, opt_at, ECS, 7);
	add_option(ans, &a, opt_at, NSID, 4);
	add_option(ans, &a, opt_at, EXPIRE, 4);
	add_option(ans, &a, opt_at, KEEPALIVE, 2);
	add_option(ans, &a, opt_at, EDE, 2);
	ck_assert_int_eq(opt_codes(ans, a), BIT(PADDING) | BIT(COOKIE) | BIT(ECS) |
			 BIT(NSID) | BIT(EXPIRE) | BIT(KEEPALIVE) | BIT(EDE));
	size_t k = dnsmsg_strip_answer(ans, a, kept, sizeof(kept));
	ck_assert_uint_gt(k, 0);
	ck_assert_int_eq(opt_codes(kept, k), BIT(NSID) | BIT(EDE));
	size_t r = dnsmsg_build_client_answer(ans, a, &q, 0, out, sizeof(out));
	ck_assert_uint_gt(r, 0);
	ck_assert_int_eq(opt_codes(out, r), BIT(NSID) | BIT(EDE));
}
END_TEST

/* dnstap logs upstream messages less their padding and nothing else: the
 * padded query we send, and an answer whose padding sits between other
 * options with a record after the OPT. */
START_TEST(test_unpad)
{
	uint8_t m[512], up[1024], ans[4096], out[4096];
	dnsmsg_query_t q;
	size_t n = make_query(m, "www.example.test", 1, 1232, 1);

	add_option(m, &n, n - 11, NSID, 0);
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t u = dnsmsg_build_upstream(m, n, &q, 0x4242, 128, up,
					 dnsmsg_padded_size(n, 128));
	ck_assert_uint_eq(u % 128, 0);
	size_t r = dnsmsg_unpad(up, u, out, sizeof(out));
	/* What is left is the upstream query built without padding. */
	size_t plain = dnsmsg_build_upstream(m, n, &q, 0x4242, 0, ans, sizeof(ans));
	ck_assert_uint_eq(r, plain);
	ck_assert_mem_eq(out, ans, r);
	ck_assert_int_eq(opt_codes(out, r), BIT(NSID) | BIT(KEEPALIVE));
	ck_assert_uint_eq(dnsmsg_unpad(out, r, ans, sizeof(ans)), 0);  /* none */

	size_t a = make_answer(ans, m, n, 10, 30);
	size_t opt_at = a - 11 - 4 - 30;
	add_option(ans, &a, opt_at, NSID, 4);
	add_option(ans, &a, opt_at, PADDING, 9);
	add_option(ans, &a, opt_at, EDE, 2);
	/* A record after the OPT (an owner ".", type A, 4 bytes), counted. */
	static const uint8_t tail[] = { 0, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 192, 0, 2, 1 };
	memcpy(ans + a, tail, sizeof(tail));
	a += sizeof(tail);
	put16(ans + 10, 2);
	r = dnsmsg_unpad(ans, a, out, sizeof(out));
	ck_assert_uint_eq(r, a - 4 - 30 - 4 - 9);
	ck_assert_int_eq(opt_codes(out, r), BIT(NSID) | BIT(EDE));
	ck_assert_uint_eq(DNS_HEADER_QID(out), DNS_HEADER_QID(ans));
	ck_assert_uint_eq(DNS_HEADER_ARCOUNT(out), 2);
	ck_assert_mem_eq(out + 12, ans + 12, opt_at + 11 - 12 - 2);
	ck_assert_mem_eq(out + r - sizeof(tail), tail, sizeof(tail));
	/* Unreadable, or no room: 0, and the caller logs it as it is. */
	ck_assert_uint_eq(dnsmsg_unpad(ans, a - sizeof(tail) - 1, out, sizeof(out)), 0);
	ck_assert_uint_eq(dnsmsg_unpad(ans, 8, out, sizeof(out)), 0);
	ck_assert_uint_eq(dnsmsg_unpad(ans, a, out, r - 1), 0);
	ck_assert_uint_eq(dnsmsg_unpad(ans, a, out, r), r);
}
END_TEST

/* An answer (cached for, or sent upstream by, another client) goes back
 * with the asking client's own question bytes: clients that randomise
 * the case of their names (0x20) check them. */
START_TEST(test_answer_echoes_client_question)
{
	uint8_t m[512], first[512], ans[4096], out[4096];
	dnsmsg_query_t q;
	size_t n = make_query(m, "www.example.test", 1, 1232, 1);
	size_t fn = make_query(first, "WwW.ExAmPlE.test", 1, 1232, 2);

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	size_t a = make_answer(ans, first, fn, 100, 0);
	size_t r = dnsmsg_build_client_answer(ans, a, &q, 0, out, sizeof(out));
	ck_assert_uint_gt(r, 0);
	ck_assert_mem_eq(out + 12, q.question, q.question_len);
	ck_assert_int_eq(DNS_HEADER_ANCOUNT(out), 1);
	/* Truncated for a small UDP client, the same. */
	a = make_answer(ans, first, fn, 3000, 0);
	r = dnsmsg_build_client_answer(ans, a, &q, 512, out, sizeof(out));
	ck_assert_int_eq(DNS_HEADER_TC(out), 1);
	ck_assert_mem_eq(out + 12, q.question, q.question_len);
	/* An answer to another question is no answer for this client. */
	fn = make_query(first, "www.example.tesx", 1, 1232, 2);
	a = make_answer(ans, first, fn, 100, 0);
	ck_assert_uint_eq(dnsmsg_build_client_answer(ans, a, &q, 0, out, sizeof(out)), 0);
}
END_TEST

/* The header's RD is the client's (RFC 1035 4.1.1: copied from the
 * query), whoever asked first: a cached RD=1 answer serves RD=0 too. */
START_TEST(test_answer_echoes_client_rd)
{
	uint8_t m[512], ans[4096], out[4096];
	dnsmsg_query_t q;
	size_t n = make_query(m, "www.example.test", 1, 0, 1);
	size_t a = make_answer(ans, m, n, 100, 0);

	ck_assert_int_eq(DNS_HEADER_RD(ans), 1);
	m[2] &= (uint8_t)~0x01;
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	ck_assert_int_eq(q.rd, 0);
	size_t r = dnsmsg_build_client_answer(ans, a, &q, 0, out, sizeof(out));
	ck_assert_uint_gt(r, 0);
	ck_assert_int_eq(DNS_HEADER_RD(out), 0);
	m[2] |= 0x01;
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	ans[2] &= (uint8_t)~0x01;
	r = dnsmsg_build_client_answer(ans, a, &q, 0, out, sizeof(out));
	ck_assert_int_eq(DNS_HEADER_RD(out), 1);
}
END_TEST

/* Every TTL but the OPT's (its TTL field holds flags) brought down to
 * the cap. */
START_TEST(test_cap_ttls)
{
	static const uint8_t big[4] = { 0x7f, 0x7f, 0x7f, 0x7f };
	uint8_t m[512], ans[4096];
	size_t n = make_query(m, "www.example.test", 1, 1232, 1);
	size_t a = make_answer(ans, m, n, 600, 0);   /* TXT of 255, 255, 90 */
	size_t off = n - 11, opt = a - 15;

	for (int i = 0; i < 3; i++) {
		memcpy(ans + off + 6, big, 4);
		off += 12 + 1 + ans[off + 12];
	}
	ck_assert_uint_eq(off, opt);
	memcpy(ans + opt + 5, big, 4);
	ck_assert_int_eq(dnsmsg_cache_ttl(ans, a), 0x7f7f7f7f);
	dnsmsg_clamp_ttls(ans, a, 0, 3600);
	ck_assert_int_eq(dnsmsg_cache_ttl(ans, a), 3600);
	ck_assert_uint_eq(DNS__32BIT(ans + n - 11 + 6), 3600);
	ck_assert_mem_eq(ans + opt + 5, big, 4);
}
END_TEST

/* The EDNS option list of the OPT at `opt` in m (its rdlength, then the
 * options), and that it ends the message. */
static void assert_ede_stale(const uint8_t *m, size_t len, size_t opt)
{
	static const uint8_t ede[6] = { 0, 15, 0, 2, 0, 3 };

	ck_assert_uint_eq(m[opt + 2], 41);
	ck_assert_uint_ge(((size_t)m[opt + 9] << 8 | m[opt + 10]), 6);
	ck_assert_uint_eq(opt + 11 + ((size_t)m[opt + 9] << 8 | m[opt + 10]), len);
	ck_assert_mem_eq(m + len - 6, ede, 6);
}

/* A stale answer: every TTL 30 (the OPT's flags untouched), EDE 3 "Stale
 * Answer" (RFC 8914) in the OPT for EDNS clients (an OPT added where the
 * answer had none), nothing for others, and within the client's size. */
START_TEST(test_stale_answer)
{
	uint8_t m[512], ans[4096], out[4096];
	dnsmsg_query_t q;
	size_t n = make_query(m, "www.example.test", 16, 1232, 9);
	size_t a = make_answer(ans, m, n, 600, 0);   /* TXT of 255, 255, 90 */
	size_t r;

	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	r = dnsmsg_build_stale_answer(ans, a, &q, 0, 30, out, sizeof(out));
	ck_assert_uint_eq(r, a - 4 + 6);   /* the padding option dropped */
	ck_assert_int_eq(dnsmsg_cache_ttl(out, r), 30);
	ck_assert_uint_eq(dnsmsg_get_id(out), 9);
	ck_assert_uint_eq(DNS_HEADER_ARCOUNT(out), 1);
	assert_ede_stale(out, r, a - 15);
	/* A 512-byte client: cut, TC=1, the EDE still there, within 512. */
	q.udp_max = 512;
	r = dnsmsg_build_stale_answer(ans, a, &q, q.udp_max, 30, out, sizeof(out));
	ck_assert_uint_le(r, 512);
	ck_assert_int_eq(dnsmsg_truncated(out), 1);
	assert_ede_stale(out, r, n - 11);
	/* An answer without OPT to an EDNS client: one is added. */
	a -= 15;
	DNS_HEADER_SET_ARCOUNT(ans, 0);
	r = dnsmsg_build_stale_answer(ans, a, &q, 0, 30, out, sizeof(out));
	ck_assert_uint_eq(r, a + 11 + 6);
	ck_assert_uint_eq(DNS_HEADER_ARCOUNT(out), 1);
	assert_ede_stale(out, r, a);
	/* No EDNS from the client: no OPT, no EDE, TTLs 30 all the same. */
	n = make_query(m, "www.example.test", 16, 0, 9);
	ck_assert_int_eq(dnsmsg_parse_query(m, n, &q), DNSMSG_OK);
	r = dnsmsg_build_stale_answer(ans, a, &q, 512, 30, out, sizeof(out));
	ck_assert_uint_eq(DNS_HEADER_ARCOUNT(out), 0);
	ck_assert_int_eq(dnsmsg_truncated(out), 1);
	a = make_answer(ans, m, n, 100, 0);
	r = dnsmsg_build_stale_answer(ans, a, &q, 512, 30, out, sizeof(out));
	ck_assert_uint_eq(r, a - 15);
	ck_assert_int_eq(dnsmsg_cache_ttl(out, r), 30);
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
	tcase_add_test(tc, test_upstream_strips_ecs_and_cookie);
	suite_add_tcase(s, tc);
	tc = tcase_create("answer");
	tcase_add_test(tc, test_truncation_without_edns);
	tcase_add_test(tc, test_udp_size_capped);
	tcase_add_test(tc, test_whole_answer_with_edns_and_tcp);
	tcase_add_test(tc, test_answer_matching);
	tcase_add_test(tc, test_answer_matching_folds_only_the_name);
	tcase_add_test(tc, test_answer_strips_per_hop_options);
	tcase_add_test(tc, test_answer_echoes_client_question);
	tcase_add_test(tc, test_answer_echoes_client_rd);
	tcase_add_test(tc, test_cap_ttls);
	tcase_add_test(tc, test_stale_answer);
	tcase_add_test(tc, test_unreadable_answer);
	tcase_add_test(tc, test_keepalive);
	tcase_add_test(tc, test_unpad);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dnsmsg_suite)
