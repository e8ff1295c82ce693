/* zones: the most specific zone of a name, on label boundaries, case
 * ignored; forward zones over local ones; the built-in local zones; and
 * the answers they give (dnsmsg_local_answer()), read back with c-ares. */
#include <arpa/inet.h>
#include <ares.h>
#include <ares_dns.h>
#include <check.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/zones.h"

#include "check_main.h"

/* Look up a name given as text; the match in *m. */
static zones_kind_t look(const zones_t *z, const char *name, zones_match_t *m)
{
	uint8_t wire[DNSMSG_NAME_MAX + 4];
	size_t len = dnsmsg_name_from_text(name, wire, sizeof(wire));

	ck_assert_msg(len > 0, "bad test name %s", name);
	/* As a question section: type and class follow the name. */
	memcpy(wire + len, "\0\1\0\1", 4);
	return zones_lookup(z, wire, len + 4, m);
}

/* The zone's name as the lookup found it, in text. */
static void apex_text(const char *name, const zones_match_t *m, char *buf,
		      size_t cap)
{
	uint8_t wire[DNSMSG_NAME_MAX];
	size_t len = dnsmsg_name_from_text(name, wire, sizeof(wire));

	ck_assert_uint_lt(m->apex, len);
	dnsmsg_name_text(wire + m->apex, len - m->apex, buf, cap);
}

static void expect_forward(const zones_t *z, const char *name, unsigned group,
			   const char *apex)
{
	zones_match_t m;
	char text[DNSMSG_NAME_TEXT_MAX];

	ck_assert_msg(look(z, name, &m) == ZONES_FORWARD, "%s: not forwarded", name);
	ck_assert_int_eq(m.kind, ZONES_FORWARD);
	ck_assert_msg(m.group == group, "%s: group %u, expected %u", name, m.group,
		      group);
	apex_text(name, &m, text, sizeof(text));
	ck_assert_str_eq(text, apex);
}

static void expect_local(const zones_t *z, const char *name,
			 dnsmsg_local_t what, const char *apex)
{
	zones_match_t m;
	char text[DNSMSG_NAME_TEXT_MAX];

	ck_assert_msg(look(z, name, &m) == ZONES_LOCAL, "%s: not local", name);
	ck_assert_msg(m.local == what, "%s: local kind %d, expected %d", name,
		      m.local, what);
	apex_text(name, &m, text, sizeof(text));
	ck_assert_str_eq(text, apex);
}

static void expect_default(const zones_t *z, const char *name)
{
	zones_match_t m;

	ck_assert_msg(look(z, name, &m) == ZONES_DEFAULT, "%s: in a zone", name);
	ck_assert_int_eq(m.kind, ZONES_DEFAULT);
}

START_TEST(test_empty_table_and_null)
{
	zones_t *z = zones_create();

	expect_default(NULL, "www.example.com");
	expect_default(z, "www.example.com");
	expect_default(z, "localhost");
	ck_assert_uint_eq(zones_count(z, ZONES_LOCAL), 0);
	zones_destroy(z);
	zones_destroy(NULL);
}
END_TEST

START_TEST(test_suffix_on_label_boundaries)
{
	zones_t *z = zones_create();

	ck_assert_int_eq(zones_add_forward(z, "example", 1, "ex"), 0);
	expect_forward(z, "example", 1, "example");
	expect_forward(z, "a.example", 1, "example");
	expect_forward(z, "a.b.c.example.", 1, "example");
	/* The same bytes, but not whole labels. */
	expect_default(z, "notexample");
	expect_default(z, "a.notexample");
	expect_default(z, "xample");
	expect_default(z, "example.com");
	expect_default(z, "example.example2");
	zones_destroy(z);
}
END_TEST

START_TEST(test_case_ignored)
{
	zones_t *z = zones_create();

	ck_assert_int_eq(zones_add_forward(z, "Corp.EXAMPLE", 3, "corp"), 0);
	/* The apex as the looked-up name spells it. */
	expect_forward(z, "host.corp.example", 3, "corp.example");
	expect_forward(z, "HOST.CORP.EXAMPLE", 3, "CORP.EXAMPLE");
	expect_forward(z, "cOrP.eXaMpLe", 3, "cOrP.eXaMpLe");
	/* Adding it again in another case is the same zone. */
	ck_assert_int_eq(zones_add_forward(z, "corp.example.", 4, "again"), -EEXIST);
	ck_assert_uint_eq(zones_count(z, ZONES_FORWARD), 1);
	zones_destroy(z);
}
END_TEST

START_TEST(test_most_specific_wins)
{
	zones_t *z = zones_create();

	/* Added parent last, then child last: the order must not matter. */
	ck_assert_int_eq(zones_add_forward(z, "corp.example", 2, "corp"), 0);
	ck_assert_int_eq(zones_add_forward(z, "example", 1, "ex"), 0);
	ck_assert_int_eq(zones_add_forward(z, "deep.a.corp.example", 3, "deep"), 0);
	expect_forward(z, "a.corp.example", 2, "corp.example");
	expect_forward(z, "corp.example", 2, "corp.example");
	expect_forward(z, "b.example", 1, "example");
	expect_forward(z, "x.deep.a.corp.example", 3, "deep.a.corp.example");
	/* a.corp.example is only a suffix of deep...: corp's. */
	expect_forward(z, "b.a.corp.example", 2, "corp.example");
	ck_assert_uint_eq(zones_count(z, ZONES_FORWARD), 3);
	zones_destroy(z);
}
END_TEST

START_TEST(test_forward_overrides_local)
{
	zones_t *z = zones_create();

	zones_add_local_defaults(z);
	expect_local(z, "1.1.168.192.in-addr.arpa", DNSMSG_LOCAL_EMPTY,
		     "168.192.in-addr.arpa");
	ck_assert_int_eq(zones_add_forward(z, "168.192.in-addr.arpa", 5, "lan"), 0);
	expect_forward(z, "1.1.168.192.in-addr.arpa", 5, "168.192.in-addr.arpa");
	/* Local defaults added after the forward zone do not take it back. */
	zones_add_local_defaults(z);
	expect_forward(z, "1.1.168.192.in-addr.arpa", 5, "168.192.in-addr.arpa");
	ck_assert_int_eq(zones_add_forward(z, "home.arpa", 6, "home"), 0);
	expect_forward(z, "nas.home.arpa", 6, "home.arpa");
	/* A forward zone above a local one: the local one is more specific. */
	ck_assert_int_eq(zones_add_forward(z, "in-addr.arpa", 7, "rev"), 0);
	expect_local(z, "5.0.0.10.in-addr.arpa", DNSMSG_LOCAL_EMPTY, "10.in-addr.arpa");
	expect_forward(z, "8.8.8.8.in-addr.arpa", 7, "in-addr.arpa");
	/* ... and below one, its own names are its. */
	ck_assert_int_eq(zones_add_forward(z, "corp.local", 8, "corp"), 0);
	expect_forward(z, "a.corp.local", 8, "corp.local");
	expect_local(z, "printer.local", DNSMSG_LOCAL_NXDOMAIN, "local");
	zones_destroy(z);
}
END_TEST

START_TEST(test_local_defaults)
{
	zones_t *z = zones_create();
	char name[80];

	zones_add_local_defaults(z);
	expect_local(z, "localhost", DNSMSG_LOCAL_LOOPBACK, "localhost");
	expect_local(z, "x.LOCALHOST.", DNSMSG_LOCAL_LOOPBACK, "LOCALHOST");
	expect_local(z, "invalid", DNSMSG_LOCAL_NXDOMAIN, "invalid");
	expect_local(z, "a.b.onion", DNSMSG_LOCAL_NXDOMAIN, "onion");
	expect_local(z, "printer.local", DNSMSG_LOCAL_NXDOMAIN, "local");
	expect_local(z, "nas.home.arpa", DNSMSG_LOCAL_EMPTY, "home.arpa");
	expect_local(z, "1.0.0.127.in-addr.arpa", DNSMSG_LOCAL_EMPTY, "127.in-addr.arpa");
	expect_local(z, "0.in-addr.arpa", DNSMSG_LOCAL_EMPTY, "0.in-addr.arpa");
	expect_local(z, "1.2.254.169.in-addr.arpa", DNSMSG_LOCAL_EMPTY,
		     "254.169.in-addr.arpa");
	expect_local(z, "1.2.0.192.in-addr.arpa", DNSMSG_LOCAL_EMPTY,
		     "2.0.192.in-addr.arpa");
	expect_local(z, "7.100.51.198.in-addr.arpa", DNSMSG_LOCAL_EMPTY,
		     "100.51.198.in-addr.arpa");
	expect_local(z, "7.113.0.203.in-addr.arpa", DNSMSG_LOCAL_EMPTY,
		     "113.0.203.in-addr.arpa");
	expect_local(z, "255.255.255.255.in-addr.arpa", DNSMSG_LOCAL_EMPTY,
		     "255.255.255.255.in-addr.arpa");
	for (unsigned i = 16; i <= 31; i++) {
		snprintf(name, sizeof(name), "9.%u.172.in-addr.arpa", i);
		snprintf(name + 40, 40, "%u.172.in-addr.arpa", i);
		expect_local(z, name, DNSMSG_LOCAL_EMPTY, name + 40);
	}
	for (unsigned i = 64; i <= 127; i++) {
		snprintf(name, sizeof(name), "%u.100.in-addr.arpa", i);
		expect_local(z, name, DNSMSG_LOCAL_EMPTY, name);
	}
	expect_default(z, "1.15.172.in-addr.arpa");
	expect_default(z, "1.32.172.in-addr.arpa");
	expect_default(z, "63.100.in-addr.arpa");
	expect_default(z, "128.100.in-addr.arpa");
	expect_default(z, "8.8.8.8.in-addr.arpa");
	expect_default(z, "1.1.169.192.in-addr.arpa");
	expect_default(z, "in-addr.arpa");
	expect_default(z, "arpa");
	/* RFC 6761 lets test. through: test setups depend on it. */
	expect_default(z, "www.example.test");
	expect_default(z, "test");
	expect_default(z, "example.com");
	expect_default(z, "localhost.example.com");
	/* IPv6: ::1, ::, fd00::/8 and fc00::/8, fe80::/10, 2001:db8::/32. */
	expect_local(z, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
		     DNSMSG_LOCAL_EMPTY,
		     "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
	expect_local(z, "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
		     DNSMSG_LOCAL_EMPTY,
		     "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
	expect_default(z, "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
	expect_local(z, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
		     DNSMSG_LOCAL_EMPTY, "d.f.ip6.arpa");
	expect_local(z, "1.c.f.ip6.arpa", DNSMSG_LOCAL_EMPTY, "c.f.ip6.arpa");
	expect_local(z, "1.8.e.f.ip6.arpa", DNSMSG_LOCAL_EMPTY, "8.e.f.ip6.arpa");
	expect_local(z, "1.b.e.f.ip6.arpa", DNSMSG_LOCAL_EMPTY, "b.e.f.ip6.arpa");
	expect_default(z, "1.c.e.f.ip6.arpa");   /* fec0::/10, not local */
	expect_local(z, "1.8.b.d.0.1.0.0.2.ip6.arpa", DNSMSG_LOCAL_EMPTY,
		     "8.b.d.0.1.0.0.2.ip6.arpa");
	expect_default(z, "1.9.b.d.0.1.0.0.2.ip6.arpa");
	/* 5 special-use names, 4.1's 18, 4.2's 7, 100.64/10's 64, 4.3's 2,
	 * fc00::/7's 2, 4.5's 4, 4.6's 1. */
	ck_assert_uint_eq(zones_count(z, ZONES_LOCAL), 5 + 18 + 7 + 64 + 2 + 2 + 4 + 1);
	ck_assert_uint_eq(zones_count(z, ZONES_FORWARD), 0);
	zones_destroy(z);
}
END_TEST

START_TEST(test_bad_names)
{
	zones_t *z = zones_create();
	char long_label[80];

	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".example");
	ck_assert_int_eq(zones_add_forward(z, "", 1, "x"), -EINVAL);
	ck_assert_int_eq(zones_add_forward(z, ".", 1, "x"), -EINVAL);
	ck_assert_int_eq(zones_add_forward(z, "..", 1, "x"), -EINVAL);
	ck_assert_int_eq(zones_add_forward(z, "a..b", 1, "x"), -EINVAL);
	ck_assert_int_eq(zones_add_forward(z, ".a", 1, "x"), -EINVAL);
	ck_assert_int_eq(zones_add_forward(z, "a b", 1, "x"), -EINVAL);
	ck_assert_int_eq(zones_add_forward(z, "a\\.b", 1, "x"), -EINVAL);
	ck_assert_int_eq(zones_add_forward(z, long_label, 1, "x"), -EINVAL);
	ck_assert_int_eq(zones_add_local(z, "..", DNSMSG_LOCAL_EMPTY), -EINVAL);
	ck_assert_uint_eq(zones_count(z, ZONES_FORWARD), 0);
	long_label[63] = '\0';   /* 63 bytes: fine */
	ck_assert_int_eq(zones_add_forward(z, long_label, 1, "x"), 0);
	zones_destroy(z);
}
END_TEST

/* 255 bytes in wire form at most: 3 labels of 63 and one of 61, with
 * their length bytes and the root's. */
START_TEST(test_name_length_limit)
{
	char text[300];
	uint8_t wire[300];
	size_t at = 0;

	for (int i = 0; i < 4; i++) {
		memset(text + at, 'a', 63);
		at += 63;
		text[at++] = '.';
	}
	text[at - 1] = '\0';
	ck_assert_uint_eq(dnsmsg_name_from_text(text, wire, sizeof(wire)), 0);
	text[at - 2] = '\0';   /* the last label 62 bytes: 256 in all */
	ck_assert_uint_eq(dnsmsg_name_from_text(text, wire, sizeof(wire)), 0);
	text[at - 3] = '\0';   /* 61 bytes: 255 */
	ck_assert_uint_eq(dnsmsg_name_from_text(text, wire, sizeof(wire)), 255);
	ck_assert_uint_eq(dnsmsg_name_from_text(text, wire, 254), 0);
	ck_assert_uint_eq(dnsmsg_name_from_text("a.b.", wire, sizeof(wire)), 5);
	ck_assert_mem_eq(wire, "\1a\1b", 5);
	ck_assert_uint_eq(dnsmsg_name_from_text(".", wire, sizeof(wire)), 1);
}
END_TEST

/* Names a lookup must not read past: it walks lengths only within len. */
START_TEST(test_lookup_malformed_names)
{
	zones_t *z = zones_create();
	zones_match_t m;
	static const uint8_t unterminated[] = { 5, 'o', 'n', 'i', 'o', 'n' };
	static const uint8_t overlong[] = { 9, 'o', 'n', 'i', 'o', 'n', 0 };
	static const uint8_t pointer[] = { 0xc0, 12, 0, 1, 0, 1 };
	static const uint8_t root[] = { 0, 0, 1, 0, 1 };
	uint8_t many[300];

	zones_add_local_defaults(z);
	ck_assert_int_eq(zones_lookup(z, unterminated, sizeof(unterminated), &m),
			 ZONES_DEFAULT);
	ck_assert_int_eq(zones_lookup(z, overlong, sizeof(overlong), &m), ZONES_DEFAULT);
	ck_assert_int_eq(zones_lookup(z, pointer, sizeof(pointer), &m), ZONES_DEFAULT);
	ck_assert_int_eq(zones_lookup(z, root, sizeof(root), &m), ZONES_DEFAULT);
	ck_assert_int_eq(zones_lookup(z, root, 0, &m), ZONES_DEFAULT);
	/* 150 one-byte labels: past 255 bytes, not a name. */
	for (size_t i = 0; i < 300; i += 2) {
		many[i] = 1;
		many[i + 1] = 'a';
	}
	ck_assert_int_eq(zones_lookup(z, many, sizeof(many), &m), ZONES_DEFAULT);
	zones_destroy(z);
}
END_TEST

/* The table grows past its first size and still finds every zone. */
START_TEST(test_many_zones)
{
	zones_t *z = zones_create();
	char name[64], apex[64];

	for (unsigned i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "z%u.example", i);
		ck_assert_int_eq(zones_add_forward(z, name, i, "g"), 0);
	}
	zones_add_local_defaults(z);
	for (unsigned i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "host.z%u.example", i);
		snprintf(apex, sizeof(apex), "z%u.example", i);
		expect_forward(z, name, i, apex);
	}
	expect_default(z, "z2000.example");
	expect_local(z, "localhost", DNSMSG_LOCAL_LOOPBACK, "localhost");
	ck_assert_uint_eq(zones_count(z, ZONES_FORWARD), 2000);
	zones_destroy(z);
}
END_TEST

START_TEST(test_print)
{
	zones_t *z = zones_create();
	char buf[16384];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	zones_add_local_defaults(z);
	zones_add_forward(z, "168.192.in-addr.arpa", 0, "lan");
	zones_print(z, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(buf, "# zone table: 102 local, 1 forward"));
	ck_assert_ptr_nonnull(strstr(buf, "#   localhost.  local: 127.0.0.1 and ::1\n"));
	ck_assert_ptr_nonnull(strstr(buf, "#   onion.  local: NXDOMAIN\n"));
	ck_assert_ptr_nonnull(strstr(buf, "#   168.192.in-addr.arpa.  forward lan\n"));
	ck_assert_ptr_nonnull(strstr(buf, "#   d.f.ip6.arpa.  local: empty zone"));
	/* Suffixes that are no zone are not listed. */
	ck_assert_ptr_null(strstr(buf, "#   in-addr.arpa."));
	ck_assert_ptr_null(strstr(buf, "#   arpa."));
	zones_destroy(z);
}
END_TEST


/* ---- answers: lookup in the built-in table, dnsmsg_local_answer() ---- */

#define F_NO_RD 1
#define F_CD 2
#define F_DO 4
#define F_EDNS 8

/* A client's query, built by hand (ares_create_query refuses .onion). */
static size_t make_query(uint8_t *m, const char *name, unsigned type,
			 unsigned qclass, unsigned flags, uint16_t id)
{
	size_t n = 12;

	memset(m, 0, 12);
	DNS_HEADER_SET_QID(m, id);
	DNS_HEADER_SET_RD(m, !(flags & F_NO_RD));
	m[3] |= flags & F_CD ? 0x10 : 0;
	DNS_HEADER_SET_QDCOUNT(m, 1);
	n += dnsmsg_name_from_text(name, m + 12, DNSMSG_NAME_MAX);
	ck_assert_uint_gt(n, 12);
	DNS__SET16BIT(m + n, type);
	DNS__SET16BIT(m + n + 2, qclass);
	n += 4;
	if (flags & (F_EDNS | F_DO)) {
		static const uint8_t opt[11] = { 0, 0, 41, 0x04, 0xd0 /* 1232 */ };
		memcpy(m + n, opt, sizeof(opt));
		m[n + 7] = flags & F_DO ? 0x80 : 0;
		n += sizeof(opt);
		DNS_HEADER_SET_ARCOUNT(m, 1);
	}
	return n;
}

/* The whole path: parse, look up in the built-in table, answer. */
static size_t answer(const char *name, unsigned type, unsigned qclass,
		     unsigned flags, uint8_t *out, size_t cap,
		     dnsmsg_query_t *q)
{
	uint8_t msg[600];
	size_t len = make_query(msg, name, type, qclass, flags, 0x4242);
	zones_t *z = zones_create();
	zones_match_t m;
	size_t n;

	zones_add_local_defaults(z);
	ck_assert_int_eq(dnsmsg_parse_query(msg, len, q), DNSMSG_OK);
	ck_assert_msg(zones_lookup(z, q->question, q->question_len, &m) == ZONES_LOCAL,
		      "%s: not local", name);
	n = dnsmsg_local_answer(q, m.local, m.apex, out, cap);
	ck_assert_uint_gt(n, 12);
	ck_assert_uint_le(n, 512);
	/* The header every local answer has, and the client's own question. */
	ck_assert_uint_eq(DNS_HEADER_QID(out), 0x4242);
	ck_assert_uint_eq(DNS_HEADER_QR(out), 1);
	ck_assert_uint_eq(DNS_HEADER_OPCODE(out), 0);
	ck_assert_uint_eq(DNS_HEADER_AA(out), 1);
	ck_assert_uint_eq(DNS_HEADER_TC(out), 0);
	ck_assert_uint_eq(DNS_HEADER_RD(out), !(flags & F_NO_RD));
	ck_assert_uint_eq(DNS_HEADER_RA(out), 1);
	ck_assert_uint_eq((out[3] & 0x10) != 0, (flags & F_CD) != 0);
	ck_assert_uint_eq((out[3] & 0x20) != 0, 0);   /* AD never */
	ck_assert_uint_eq(DNS_HEADER_QDCOUNT(out), 1);
	ck_assert_mem_eq(out + 12, msg + 12, q->question_len);
	zones_destroy(z);
	return n;
}

/* The last record of the message is an OPT with the client's DO bit, or
 * there is no OPT when the client sent none. */
static void expect_opt(const uint8_t *a, size_t n, unsigned flags)
{
	if (!(flags & (F_EDNS | F_DO))) {
		ck_assert_uint_eq(DNS_HEADER_ARCOUNT(a), 0);
		return;
	}
	ck_assert_uint_eq(DNS_HEADER_ARCOUNT(a), 1);
	ck_assert_uint_eq(a[n - 11], 0);
	ck_assert_uint_eq(DNS__16BIT(a + n - 10), 41);
	ck_assert_uint_eq(DNS__16BIT(a + n - 8), DNSMSG_EDNS_UDP_SIZE);
	ck_assert_uint_eq((a[n - 4] & 0x80) != 0, (flags & F_DO) != 0);
	ck_assert_uint_eq(DNS__16BIT(a + n - 2), 0);
}

/* The SOA of a negative answer (authority section), read by c-ares once
 * the section is relabelled as the answer; its owner in *owner. */
static void expect_negative_soa(const uint8_t *a, size_t n, size_t qlen,
				const char *owner)
{
	uint8_t copy[600];
	struct ares_soa_reply *soa = NULL;
	char *name = NULL;
	long enclen;

	ck_assert_uint_eq(DNS_HEADER_ANCOUNT(a), 0);
	ck_assert_uint_eq(DNS_HEADER_NSCOUNT(a), 1);
	ck_assert_int_eq(ares_expand_name(a + 12 + qlen, a, (int)n, &name, &enclen),
			 ARES_SUCCESS);
	ck_assert_str_eq(name, owner);
	ares_free_string(name);
	ck_assert_uint_eq(DNS__16BIT(a + 12 + qlen + enclen), 6);      /* SOA */
	ck_assert_uint_eq(DNS__32BIT(a + 12 + qlen + enclen + 4), 10800);
	memcpy(copy, a, n);
	DNS_HEADER_SET_ANCOUNT(copy, 1);
	DNS_HEADER_SET_NSCOUNT(copy, 0);
	ck_assert_int_eq(ares_parse_soa_reply(copy, (int)n, &soa), ARES_SUCCESS);
	ck_assert_str_eq(soa->nsname, owner);
	ck_assert_str_eq(soa->hostmaster, "nobody.invalid");
	ck_assert_uint_eq(soa->serial, 1);
	ck_assert_uint_eq(soa->refresh, 3600);
	ck_assert_uint_eq(soa->retry, 1200);
	ck_assert_uint_eq(soa->expire, 604800);
	ck_assert_uint_eq(soa->minttl, 10800);
	ares_free_data(soa);
	/* A cache (ours or the client's) keeps it for the SOA's time. */
	ck_assert_int_eq(dnsmsg_cache_ttl(a, n), 10800);
}

START_TEST(test_answer_localhost_a)
{
	uint8_t a[1024];
	dnsmsg_query_t q;
	struct ares_addrttl ttls[4];
	int nttls = 4;
	struct hostent *host = NULL;
	unsigned flags = F_DO | F_CD;
	size_t n = answer("LocalHost", 1, 1, flags, a, sizeof(a), &q);

	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 0);
	ck_assert_uint_eq(DNS_HEADER_ANCOUNT(a), 1);
	ck_assert_uint_eq(DNS_HEADER_NSCOUNT(a), 0);
	expect_opt(a, n, flags);
	ck_assert_int_eq(ares_parse_a_reply(a, (int)n, &host, ttls, &nttls), ARES_SUCCESS);
	ck_assert_int_eq(nttls, 1);
	ck_assert_uint_eq(ntohl(ttls[0].ipaddr.s_addr), 0x7f000001);
	ck_assert_int_eq(ttls[0].ttl, 10800);
	ck_assert_str_eq(host->h_name, "LocalHost");
	ares_free_hostent(host);
}
END_TEST

START_TEST(test_answer_below_localhost_aaaa)
{
	static const uint8_t loop6[16] = { [15] = 1 };
	uint8_t a[1024];
	dnsmsg_query_t q;
	struct ares_addr6ttl ttls[4];
	int nttls = 4;
	size_t n = answer("x.y.localhost.", 28, 1, F_NO_RD, a, sizeof(a), &q);

	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 0);
	ck_assert_uint_eq(DNS_HEADER_ANCOUNT(a), 1);
	expect_opt(a, n, F_NO_RD);
	ck_assert_int_eq(ares_parse_aaaa_reply(a, (int)n, NULL, ttls, &nttls),
			 ARES_SUCCESS);
	ck_assert_int_eq(nttls, 1);
	ck_assert_mem_eq(&ttls[0].ip6addr, loop6, 16);
}
END_TEST

START_TEST(test_answer_localhost_other_types_nodata)
{
	uint8_t a[1024];
	dnsmsg_query_t q;
	size_t n = answer("mail.localhost", 15 /* MX */, 1, F_EDNS, a, sizeof(a), &q);

	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 0);
	expect_negative_soa(a, n, q.question_len, "localhost");
	expect_opt(a, n, F_EDNS);
}
END_TEST

/* ANY at the apex: A, AAAA, SOA and NS; still within 512 bytes for the
 * longest name (checked in answer()). */
START_TEST(test_answer_localhost_any)
{
	uint8_t a[1024];
	dnsmsg_query_t q;
	char longest[300];
	size_t n = answer("localhost", 255, 1, F_DO, a, sizeof(a), &q);

	ck_assert_uint_eq(DNS_HEADER_ANCOUNT(a), 4);
	expect_opt(a, n, F_DO);
	/* 3 labels of 63 and one of 51 (250 bytes of text) + localhost. */
	memset(longest, 'a', sizeof(longest));
	for (int i = 63; i < 250; i += 64)
		longest[i] = '.';
	strcpy(longest + 240, ".localhost");
	n = answer(longest, 255, 1, F_DO, a, sizeof(a), &q);
	ck_assert_uint_eq(DNS_HEADER_ANCOUNT(a), 2);
}
END_TEST

START_TEST(test_answer_private_ptr_nxdomain)
{
	uint8_t a[1024];
	dnsmsg_query_t q;
	struct hostent *host = NULL;
	size_t n = answer("1.1.168.192.IN-ADDR.arpa", 12 /* PTR */, 1, F_EDNS,
			  a, sizeof(a), &q);

	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 3);
	expect_negative_soa(a, n, q.question_len, "168.192.IN-ADDR.arpa");
	expect_opt(a, n, F_EDNS);
	ck_assert_int_ne(ares_parse_ptr_reply(a, (int)n, "x", 1, AF_INET, &host),
			 ARES_SUCCESS);
	n = answer("1.0.0.127.in-addr.arpa", 12, 1, 0, a, sizeof(a), &q);
	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 3);
	expect_negative_soa(a, n, q.question_len, "127.in-addr.arpa");
	expect_opt(a, n, 0);
	n = answer("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
		   12, 1, 0, a, sizeof(a), &q);
	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 3);
	expect_negative_soa(a, n, q.question_len, "d.f.ip6.arpa");
}
END_TEST

/* RFC 6303 3: the apex has its SOA and NS; other types NODATA. */
START_TEST(test_answer_empty_zone_apex)
{
	uint8_t a[1024];
	dnsmsg_query_t q;
	struct ares_soa_reply *soa = NULL;
	struct hostent *host = NULL;
	size_t n = answer("10.in-addr.arpa", 6 /* SOA */, 1, 0, a, sizeof(a), &q);

	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 0);
	ck_assert_uint_eq(DNS_HEADER_ANCOUNT(a), 1);
	ck_assert_int_eq(ares_parse_soa_reply(a, (int)n, &soa), ARES_SUCCESS);
	ck_assert_str_eq(soa->nsname, "10.in-addr.arpa");
	ck_assert_str_eq(soa->hostmaster, "nobody.invalid");
	ck_assert_uint_eq(soa->minttl, 10800);
	ares_free_data(soa);
	n = answer("10.in-addr.arpa", 2 /* NS */, 1, 0, a, sizeof(a), &q);
	ck_assert_uint_eq(DNS_HEADER_ANCOUNT(a), 1);
	ck_assert_int_eq(ares_parse_ns_reply(a, (int)n, &host), ARES_SUCCESS);
	ck_assert_ptr_nonnull(host->h_aliases[0]);
	ck_assert_str_eq(host->h_aliases[0], "10.in-addr.arpa");
	ares_free_hostent(host);
	n = answer("10.in-addr.arpa", 12 /* PTR */, 1, 0, a, sizeof(a), &q);
	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 0);
	expect_negative_soa(a, n, q.question_len, "10.in-addr.arpa");
	/* Names below the apex have no SOA of their own. */
	n = answer("nas.home.arpa", 6, 1, 0, a, sizeof(a), &q);
	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 3);
	expect_negative_soa(a, n, q.question_len, "home.arpa");
}
END_TEST

/* RFC 6761 6.4, RFC 7686, RFC 6762: NXDOMAIN, the name itself too. */
START_TEST(test_answer_special_use_nxdomain)
{
	static const char *const names[] = {
		"invalid", "x.invalid", "onion", "abc.onion", "printer.local", "local",
	};
	static const char *const apexes[] = {
		"invalid", "invalid", "onion", "onion", "local", "local",
	};
	uint8_t a[1024];
	dnsmsg_query_t q;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = answer(names[i], 1, 1, F_EDNS, a, sizeof(a), &q);
		ck_assert_msg(DNS_HEADER_RCODE(a) == 3, "%s: rcode %d", names[i],
			      DNS_HEADER_RCODE(a));
		expect_negative_soa(a, n, q.question_len, apexes[i]);
		expect_opt(a, n, F_EDNS);
	}
}
END_TEST

/* The zones are class IN's: CHAOS gets REFUSED (not sent upstream
 * either); class ANY is answered as IN. */
START_TEST(test_answer_other_classes)
{
	uint8_t a[1024];
	dnsmsg_query_t q;
	size_t n = answer("localhost", 1, 3 /* CH */, F_EDNS, a, sizeof(a), &q);

	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 5);
	ck_assert_uint_eq(DNS_HEADER_ANCOUNT(a), 0);
	ck_assert_uint_eq(DNS_HEADER_NSCOUNT(a), 0);
	expect_opt(a, n, F_EDNS);
	answer("localhost", 1, 255, 0, a, sizeof(a), &q);
	ck_assert_uint_eq(DNS_HEADER_RCODE(a), 0);
	ck_assert_uint_eq(DNS_HEADER_ANCOUNT(a), 1);
}
END_TEST

START_TEST(test_answer_refuses_bad_apex_and_small_buffer)
{
	uint8_t msg[600], a[1024];
	size_t len = make_query(msg, "x.localhost", 1, 1, F_EDNS, 7);
	dnsmsg_query_t q;

	ck_assert_int_eq(dnsmsg_parse_query(msg, len, &q), DNSMSG_OK);
	ck_assert_uint_gt(dnsmsg_local_answer(&q, DNSMSG_LOCAL_LOOPBACK, 2, a, sizeof(a)), 0);
	/* Not where a label starts, or past the name. */
	ck_assert_uint_eq(dnsmsg_local_answer(&q, DNSMSG_LOCAL_LOOPBACK, 1, a, sizeof(a)), 0);
	ck_assert_uint_eq(dnsmsg_local_answer(&q, DNSMSG_LOCAL_LOOPBACK, 12, a, sizeof(a)), 0);
	ck_assert_uint_eq(dnsmsg_local_answer(&q, DNSMSG_LOCAL_LOOPBACK, 13, a, sizeof(a)), 0);
	ck_assert_uint_eq(dnsmsg_local_answer(&q, DNSMSG_LOCAL_LOOPBACK, 2, a, 40), 0);
}
END_TEST

static Suite *zones_suite(void)
{
	Suite *s = suite_create("zones");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_empty_table_and_null);
	tcase_add_test(tc, test_suffix_on_label_boundaries);
	tcase_add_test(tc, test_case_ignored);
	tcase_add_test(tc, test_most_specific_wins);
	tcase_add_test(tc, test_forward_overrides_local);
	tcase_add_test(tc, test_local_defaults);
	tcase_add_test(tc, test_bad_names);
	tcase_add_test(tc, test_name_length_limit);
	tcase_add_test(tc, test_lookup_malformed_names);
	tcase_add_test(tc, test_many_zones);
	tcase_add_test(tc, test_print);
	suite_add_tcase(s, tc);
	tc = tcase_create("answers");
	tcase_add_test(tc, test_answer_localhost_a);
	tcase_add_test(tc, test_answer_below_localhost_aaaa);
	tcase_add_test(tc, test_answer_localhost_other_types_nodata);
	tcase_add_test(tc, test_answer_localhost_any);
	tcase_add_test(tc, test_answer_private_ptr_nxdomain);
	tcase_add_test(tc, test_answer_empty_zone_apex);
	tcase_add_test(tc, test_answer_special_use_nxdomain);
	tcase_add_test(tc, test_answer_other_classes);
	tcase_add_test(tc, test_answer_refuses_bad_apex_and_small_buffer);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(zones_suite)
