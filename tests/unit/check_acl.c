/* acl: the CIDR parser and the matcher, both families, IPv4-mapped
 * sources, the loopback default, and the errors. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dotstub/acl.h"

#include "check_main.h"

/* A sockaddr for a literal address (either family). */
static struct sockaddr_storage sa(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(5353);
		return ss;
	}
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(5353);
	return ss;
}

static int allows(const acl_t *acl, const char *ip)
{
	struct sockaddr_storage ss = sa(ip);

	return acl_allows(acl, &ss);
}

static void formats_as(const acl_t *acl, size_t i, const char *want)
{
	char buf[ACL_TEXT_MAX];

	acl_format(acl, i, buf, sizeof(buf));
	ck_assert_str_eq(buf, want);
}

START_TEST(test_default_is_loopback)
{
	ck_assert_int_eq(allows(NULL, "127.0.0.1"), 1);
	ck_assert_int_eq(allows(NULL, "127.255.255.254"), 1);
	ck_assert_int_eq(allows(NULL, "::1"), 1);
	ck_assert_int_eq(allows(NULL, "::ffff:127.0.0.1"), 1);
	ck_assert_int_eq(allows(NULL, "128.0.0.1"), 0);
	ck_assert_int_eq(allows(NULL, "126.255.255.255"), 0);
	ck_assert_int_eq(allows(NULL, "192.168.1.1"), 0);
	ck_assert_int_eq(allows(NULL, "0.0.0.0"), 0);
	ck_assert_int_eq(allows(NULL, "::"), 0);
	ck_assert_int_eq(allows(NULL, "::2"), 0);
	ck_assert_int_eq(allows(NULL, "fe80::1"), 0);
	/* ::127.0.0.1 (IPv4-compatible, deprecated) is not loopback. */
	ck_assert_int_eq(allows(NULL, "::127.0.0.1"), 0);
	ck_assert_uint_eq(acl_count(NULL), 2);
	formats_as(NULL, 0, "127.0.0.0/8");
	formats_as(NULL, 1, "::1/128");
}
END_TEST

START_TEST(test_ipv4_prefixes)
{
	acl_t *acl = acl_create();

	ck_assert_int_eq(acl_add(acl, "192.168.1.0/24"), 0);
	ck_assert_int_eq(acl_add(acl, "10.0.0.7"), 0);
	ck_assert_int_eq(allows(acl, "192.168.1.0"), 1);
	ck_assert_int_eq(allows(acl, "192.168.1.255"), 1);
	ck_assert_int_eq(allows(acl, "192.168.2.1"), 0);
	ck_assert_int_eq(allows(acl, "192.168.0.255"), 0);
	ck_assert_int_eq(allows(acl, "10.0.0.7"), 1);
	ck_assert_int_eq(allows(acl, "10.0.0.6"), 0);
	/* The user's list replaces the default: loopback is not implied. */
	ck_assert_int_eq(allows(acl, "127.0.0.1"), 0);
	ck_assert_int_eq(allows(acl, "::1"), 0);
	/* A mapped source on a dual-stack socket is its IPv4 address. */
	ck_assert_int_eq(allows(acl, "::ffff:192.168.1.9"), 1);
	ck_assert_int_eq(allows(acl, "::ffff:192.168.3.9"), 0);
	/* ... but not the same bits elsewhere in the IPv6 space. */
	ck_assert_int_eq(allows(acl, "::192.168.1.9"), 0);
	ck_assert_int_eq(allows(acl, "2002:c0a8:109::"), 0);
	ck_assert_uint_eq(acl_count(acl), 2);
	formats_as(acl, 0, "192.168.1.0/24");
	formats_as(acl, 1, "10.0.0.7/32");
	acl_destroy(acl);
}
END_TEST

START_TEST(test_ipv6_prefixes)
{
	acl_t *acl = acl_create();

	ck_assert_int_eq(acl_add(acl, "2001:db8::/32"), 0);
	ck_assert_int_eq(acl_add(acl, "fd00:1:2:2::/63"), 0);
	ck_assert_int_eq(allows(acl, "2001:db8::1"), 1);
	ck_assert_int_eq(allows(acl, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), 1);
	ck_assert_int_eq(allows(acl, "2001:db9::1"), 0);
	ck_assert_int_eq(allows(acl, "fd00:1:2:2::1"), 1);   /* /63: ...:2 and ...:3 */
	ck_assert_int_eq(acl_add(acl, "fd00:1:2:3::/63"), -EINVAL);  /* host bit */
	ck_assert_int_eq(allows(acl, "fd00:1:2:3::1"), 1);
	ck_assert_int_eq(allows(acl, "fd00:1:2:4::1"), 0);
	ck_assert_int_eq(allows(acl, "32.1.13.184"), 0);     /* 2001:db8 as IPv4 */
	formats_as(acl, 0, "2001:db8::/32");
	formats_as(acl, 1, "fd00:1:2:2::/63");
	acl_destroy(acl);
}
END_TEST

START_TEST(test_everything_and_nothing)
{
	acl_t *none = acl_create();
	acl_t *v4 = acl_create();
	acl_t *all = acl_create();

	ck_assert_int_eq(allows(none, "127.0.0.1"), 0);
	ck_assert_int_eq(acl_add(v4, "0.0.0.0/0"), 0);
	ck_assert_int_eq(allows(v4, "203.0.113.5"), 1);
	ck_assert_int_eq(allows(v4, "::ffff:203.0.113.5"), 1);
	ck_assert_int_eq(allows(v4, "2001:db8::1"), 0);
	ck_assert_int_eq(acl_add(all, "::/0"), 0);
	ck_assert_int_eq(allows(all, "203.0.113.5"), 1);
	ck_assert_int_eq(allows(all, "2001:db8::1"), 1);
	formats_as(v4, 0, "0.0.0.0/0");
	formats_as(all, 0, "::/0");
	acl_destroy(none);
	acl_destroy(v4);
	acl_destroy(all);
}
END_TEST

START_TEST(test_other_families_refused)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	ck_assert_int_eq(acl_allows(NULL, &ss), 0);
	ck_assert_int_eq(acl_is_loopback(&ss), 0);
}
END_TEST

START_TEST(test_bad_prefixes)
{
	static const char *const bad[] = {
		"", "/", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1",
		"10.0.0.0/+8", "10.0.0.0/8/8", "10.0.0.0/ 8", " 10.0.0.0/8",
		"10.0.0.0/8 ", "10.0.0/8", "10.0.0.256/32", "10.0.0.1/8",
		"192.168.1.1/24", "::1/129", "2001:db8::1/32", "fe80::/ten",
		"fe80::/0064", "localhost", "[::1]/128", "10.0.0.0/1000",
		"2001:db8::/32%eth0",
		"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:1/128",
	};
	acl_t *acl = acl_create();

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(acl_add(acl, bad[i]) == -EINVAL, "accepted '%s'", bad[i]);
	ck_assert_uint_eq(acl_count(acl), 0);
	acl_destroy(acl);
}
END_TEST

START_TEST(test_list_is_bounded)
{
	acl_t *acl = acl_create();
	char text[32];

	for (unsigned i = 0; i < ACL_MAX; i++) {
		snprintf(text, sizeof(text), "10.%u.%u.0/24", i / 256, i % 256);
		ck_assert_int_eq(acl_add(acl, text), 0);
	}
	ck_assert_int_eq(acl_add(acl, "192.0.2.0/24"), -E2BIG);
	ck_assert_uint_eq(acl_count(acl), ACL_MAX);
	ck_assert_int_eq(allows(acl, "10.0.127.1"), 1);
	ck_assert_int_eq(allows(acl, "192.0.2.1"), 0);
	acl_destroy(acl);
}
END_TEST

static Suite *acl_suite(void)
{
	Suite *s = suite_create("acl");
	TCase *tc = tcase_create("prefixes");

	tcase_add_test(tc, test_default_is_loopback);
	tcase_add_test(tc, test_ipv4_prefixes);
	tcase_add_test(tc, test_ipv6_prefixes);
	tcase_add_test(tc, test_everything_and_nothing);
	tcase_add_test(tc, test_other_families_refused);
	tcase_add_test(tc, test_bad_prefixes);
	tcase_add_test(tc, test_list_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(acl_suite)
