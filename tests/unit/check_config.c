/* config: upstream and listen specs, command line, defaults. No test here
 * connects anywhere: the public addresses are parsed, never used. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dotstub/config.h"

#include "check_main.h"

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

START_TEST(test_upstream_full)
{
	config_upstream_t u;

	ck_assert_int_eq(config_parse_upstream("1.1.1.1@853#cloudflare-dns.com", &u), 0);
	ck_assert_int_eq(u.addr.ss_family, AF_INET);
	ck_assert_uint_eq(port_of(&u.addr), 853);
	ck_assert_str_eq(u.name, "cloudflare-dns.com");
	ck_assert_str_eq(u.ip_text, "1.1.1.1");
	ck_assert_str_eq(u.text, "1.1.1.1@853#cloudflare-dns.com");
}
END_TEST

START_TEST(test_upstream_defaults)
{
	config_upstream_t u;

	ck_assert_int_eq(config_parse_upstream("127.0.0.1", &u), 0);
	ck_assert_uint_eq(port_of(&u.addr), 853);
	ck_assert_str_eq(u.name, "");
	ck_assert_str_eq(u.text, "127.0.0.1@853");
	ck_assert_int_eq(config_parse_upstream("127.0.0.1#dns.example", &u), 0);
	ck_assert_uint_eq(port_of(&u.addr), 853);
	ck_assert_str_eq(u.name, "dns.example");
}
END_TEST

START_TEST(test_upstream_ipv6)
{
	config_upstream_t u;

	ck_assert_int_eq(config_parse_upstream(
		"2606:4700:4700::1111@853#cloudflare-dns.com", &u), 0);
	ck_assert_int_eq(u.addr.ss_family, AF_INET6);
	ck_assert_uint_eq(port_of(&u.addr), 853);
	ck_assert_str_eq(u.text, "2606:4700:4700::1111@853#cloudflare-dns.com");
	ck_assert_int_eq(config_parse_upstream("[::1]@8853#x.test", &u), 0);
	ck_assert_uint_eq(port_of(&u.addr), 8853);
	ck_assert_str_eq(u.ip_text, "::1");
	ck_assert_int_eq(config_parse_upstream("::1", &u), 0);
	ck_assert_uint_eq(port_of(&u.addr), 853);
}
END_TEST

START_TEST(test_upstream_bad)
{
	static const char *const bad[] = {
		"", "1.1.1.1@0", "1.1.1.1@65536", "1.1.1.1@abc", "1.1.1.1@",
		"1.1.1.1@-1", "1.1.1.1@ 53", "#name", "1.1.1.1#", "1.1.1.1#bad..name",
		"1.1.1.1#.lead", "999.1.1.1", "1.1.1", "example.com",
		"[::1", "::1]@53", "1.1.1.1@853#sp ace", "2606:4700::xyz@853",
	};
	config_upstream_t u;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(config_parse_upstream(bad[i], &u) < 0,
			      "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_listen_addr)
{
	struct sockaddr_storage ss;
	socklen_t len;

	ck_assert_int_eq(config_parse_addr("127.0.0.1", 53, &ss, &len), 0);
	ck_assert_uint_eq(port_of(&ss), 53);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(config_parse_addr("::1@5353", 53, &ss, &len), 0);
	ck_assert_uint_eq(port_of(&ss), 5353);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
	ck_assert_int_lt(config_parse_addr("127.0.0.1@0", 53, &ss, &len), 0);
	ck_assert_int_lt(config_parse_addr("localhost", 53, &ss, &len), 0);
}
END_TEST

static int parse(config_t *cfg, char *err, size_t errlen, int argc, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, argc);
	argv[0] = "dotstub";
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return config_from_args(cfg, argc, argv, err, errlen);
}

START_TEST(test_args_defaults)
{
	config_t cfg;
	char err[256];

	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 1), 0);
	ck_assert_int_eq(cfg.mode, CONFIG_RUN);
	ck_assert_uint_eq(cfg.nlisten, 2);
	ck_assert_str_eq(cfg.listen[0].text, "127.0.0.1@53");
	ck_assert_str_eq(cfg.listen[1].text, "::1@53");
	ck_assert_uint_eq(cfg.nupstreams, 4);
	for (size_t i = 0; i < 4; i++)
		ck_assert_str_eq(cfg.upstreams[i].name, "cloudflare-dns.com");
	ck_assert_uint_eq(cfg.padding_block, 128);
	config_free(&cfg);
}
END_TEST

START_TEST(test_args_override_and_pins)
{
	config_t cfg;
	char err[256];
	const char *pin = "pin-sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 8, "-l", "127.0.0.2@5300",
			       "-u", "127.0.0.1@8530#dns.test", "--pin", pin,
			       "--check-config"), 0);
	ck_assert_int_eq(cfg.mode, CONFIG_CHECK);
	ck_assert_uint_eq(cfg.nlisten, 1);
	ck_assert_uint_eq(cfg.nupstreams, 1);
	ck_assert_uint_eq(cfg.upstreams[0].npins, 1);
	ck_assert_ptr_eq(cfg.upstreams[0].pins, cfg.cli.pins);
	config_free(&cfg);
}
END_TEST

START_TEST(test_args_errors_name_the_value)
{
	config_t cfg;
	char err[256];

	ck_assert_int_lt(parse(&cfg, err, sizeof(err), 3, "-u", "1.2.3.4@99999"), 0);
	ck_assert_ptr_nonnull(strstr(err, "--upstream"));
	ck_assert_ptr_nonnull(strstr(err, "1.2.3.4@99999"));
	config_free(&cfg);
	ck_assert_int_lt(parse(&cfg, err, sizeof(err), 3, "--pin", "nope"), 0);
	ck_assert_ptr_nonnull(strstr(err, "nope"));
	config_free(&cfg);
	ck_assert_int_lt(parse(&cfg, err, sizeof(err), 2, "--bogus"), 0);
	ck_assert_ptr_nonnull(strstr(err, "--bogus"));
	config_free(&cfg);
	ck_assert_int_lt(parse(&cfg, err, sizeof(err), 2, "-l"), 0);
	config_free(&cfg);
}
END_TEST

/* Write `text` to a temporary file; the caller unlinks `path`. */
static void write_conf(char *path, const char *text)
{
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs(text, f);
	fclose(f);
}

START_TEST(test_file_two_groups)
{
	char path[] = "/tmp/check_config_XXXXXX";
	config_t cfg;
	char err[512];

	write_conf(path,
		   "# comment\n[server]\nlisten = 127.0.0.1@5300\npool-size = 3\n"
		   "log-level = debug\n"
		   "[upstream first]\nauth-name = one.test\n"
		   "pin = " "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
		   "server = 127.0.0.1@8531\nserver = 127.0.0.2@8531#other.test\n"
		   "[upstream second]\nserver = ::1@8532#two.test\n");
	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 3, "-c", path), 0);
	unlink(path);
	ck_assert_uint_eq(cfg.nlisten, 1);
	ck_assert_uint_eq(cfg.pool_size, 3);
	ck_assert_int_eq(cfg.log_level, 3);
	ck_assert_uint_eq(cfg.nupstreams, 3);
	ck_assert_str_eq(cfg.upstreams[0].text, "127.0.0.1@8531#one.test");
	ck_assert_uint_eq(cfg.upstreams[0].npins, 1);
	ck_assert_str_eq(cfg.upstreams[1].name, "other.test");
	ck_assert_uint_eq(cfg.upstreams[1].npins, 1);
	ck_assert_str_eq(cfg.upstreams[2].name, "two.test");
	ck_assert_uint_eq(cfg.upstreams[2].npins, 0);
	config_free(&cfg);
}
END_TEST

START_TEST(test_file_command_line_wins)
{
	char path[] = "/tmp/check_config_XXXXXX";
	config_t cfg;
	char err[512];

	write_conf(path, "[server]\nlisten = 127.0.0.1@5300\nlisten = 127.0.0.1@5301\n"
			 "[upstream a]\nserver = 127.0.0.1@8531#a.test\n");
	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 7, "-l", "127.0.0.9@53",
			       "-c", path, "-u", "127.0.0.3#b.test"), 0);
	unlink(path);
	ck_assert_uint_eq(cfg.nlisten, 1);
	ck_assert_str_eq(cfg.listen[0].text, "127.0.0.9@53");
	ck_assert_uint_eq(cfg.nupstreams, 1);
	ck_assert_str_eq(cfg.upstreams[0].name, "b.test");
	config_free(&cfg);
}
END_TEST

START_TEST(test_file_errors_name_line_and_value)
{
	static const struct {
		const char *text;
		const char *expect;
	} cases[] = {
		{ "[server]\nlisten = 127.0.0.1\nbogus = 1\n", ":3: unknown key 'bogus'" },
		{ "[upstream x]\nserver = 127.0.0.1@0\n", ":2: server: invalid upstream '127.0.0.1@0'" },
		{ "[upstream x]\nserver = 300.0.0.1\n", "'300.0.0.1'" },
		{ "[upstream x]\nserver = 127.0.0.1\nca-file = /nonexistent.pem\n",
		  ":3: ca-file: cannot read '/nonexistent.pem'" },
		{ "[upstream x]\nserver = 127.0.0.1\npin = abc=\n", ":3: pin: invalid pin 'abc='" },
		{ "[server]\nquery-timeout = 5s\n", ":2: query-timeout: invalid value '5s'" },
		{ "[server]\npool-size = 0\n", "pool-size: invalid value '0'" },
		{ "[server]\npolicy = fastest\n", ":2: policy: invalid value 'fastest'" },
		{ "[server]\ntcp-fastopen = maybe\n", "tcp-fastopen: invalid value 'maybe'" },
		{ "[elsewhere]\nx = 1\n", ":2: unknown section [elsewhere]" },
		{ "[upstream x]\nauth-name = a.test\n", "[upstream x] has no server" },
		{ "[server]\nallow = 127.0.0.1/8\n", ":2: allow: invalid CIDR '127.0.0.1/8'" },
		{ "[server]\nallow = 127.0.0.0/8\nallow = ::1/129\n", ":3: allow: invalid CIDR '::1/129'" },
		{ "[server]\nallow = localhost\n", ":2: allow: invalid CIDR 'localhost'" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[] = "/tmp/check_config_XXXXXX";
		config_t cfg;
		char err[512] = "";

		write_conf(path, cases[i].text);
		ck_assert_int_lt(parse(&cfg, err, sizeof(err), 3, "-c", path), 0);
		unlink(path);
		ck_assert_msg(strstr(err, cases[i].expect) && strstr(err, path),
			      "case %zu: '%s' lacks '%s'", i, err, cases[i].expect);
		config_free(&cfg);
	}
}
END_TEST

/* allow: repeatable in the file; --allow replaces the file's lines (as -l
 * does its listeners); no line at all leaves the loopback default. */
START_TEST(test_allow_file_and_command_line)
{
	char path[] = "/tmp/check_config_XXXXXX";
	char prefix[ACL_TEXT_MAX];
	config_t cfg;
	char err[512];

	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 1), 0);
	ck_assert_ptr_null(cfg.allow);   /* the default: loopback only */
	config_free(&cfg);
	write_conf(path, "[server]\nallow = 192.0.2.0/24\nallow = 2001:db8::/32\n");
	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 3, "-c", path), 0);
	ck_assert_uint_eq(acl_count(cfg.allow), 2);
	acl_format(cfg.allow, 1, prefix, sizeof(prefix));
	ck_assert_str_eq(prefix, "2001:db8::/32");
	config_free(&cfg);
	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 7, "-c", path, "--allow",
			       "10.0.0.0/8", "--allow", "::1"), 0);
	unlink(path);
	ck_assert_uint_eq(acl_count(cfg.allow), 2);
	acl_format(cfg.allow, 0, prefix, sizeof(prefix));
	ck_assert_str_eq(prefix, "10.0.0.0/8");
	acl_format(cfg.allow, 1, prefix, sizeof(prefix));
	ck_assert_str_eq(prefix, "::1/128");
	config_free(&cfg);
	ck_assert_int_lt(parse(&cfg, err, sizeof(err), 3, "--allow", "10.0.0.1/8"), 0);
	ck_assert_ptr_nonnull(strstr(err, "--allow: invalid CIDR '10.0.0.1/8'"));
	config_free(&cfg);
	/* A bad line leaves the list as it was (here: the default). */
	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 1), 0);
	ck_assert_int_eq(config_add_allow(&cfg, "bogus"), -EINVAL);
	ck_assert_ptr_null(cfg.allow);
	config_free(&cfg);
}
END_TEST

/* --check-config's print of the allow list reads back as the same list. */
START_TEST(test_allow_printed)
{
	config_t cfg;
	char err[256], *text = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 1), 0);
	f = open_memstream(&text, &len);
	config_print(&cfg, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "allow = 127.0.0.0/8\nallow = ::1/128\n"));
	free(text);
	config_free(&cfg);
	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 5, "--allow", "0.0.0.0/0",
			       "--allow", "::/0"), 0);
	f = open_memstream(&text, &len);
	config_print(&cfg, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "allow = 0.0.0.0/0\nallow = ::/0\n"));
	ck_assert_ptr_null(strstr(text, "127.0.0.0/8"));
	free(text);
	config_free(&cfg);
}
END_TEST

START_TEST(test_sample_config_is_the_defaults)
{
	config_t a, b;
	char err[512];
	char sample[1024];

	snprintf(sample, sizeof(sample), "%s/../etc/dotstub.conf",
		 getenv("TESTS_SRCDIR") ? getenv("TESTS_SRCDIR") : "tests");
	ck_assert_int_eq(parse(&a, err, sizeof(err), 1), 0);
	ck_assert_msg(parse(&b, err, sizeof(err), 3, "-c", sample) == 0, "%s", err);
	ck_assert_uint_eq(a.nlisten, b.nlisten);
	ck_assert_uint_eq(a.query_timeout_ms, b.query_timeout_ms);
	ck_assert_uint_eq(a.connect_timeout_ms, b.connect_timeout_ms);
	ck_assert_uint_eq(a.idle_timeout_ms, b.idle_timeout_ms);
	ck_assert_uint_eq(a.tcp_client_timeout_ms, b.tcp_client_timeout_ms);
	ck_assert_uint_eq(a.max_inflight, b.max_inflight);
	ck_assert_uint_eq(a.pool_size, b.pool_size);
	ck_assert_uint_eq(a.padding_block, b.padding_block);
	ck_assert_uint_eq(a.max_tcp_clients, b.max_tcp_clients);
	ck_assert_uint_eq(a.attempt_timeout_ms, b.attempt_timeout_ms);
	ck_assert_uint_eq(a.max_waiting, b.max_waiting);
	ck_assert_int_eq(a.policy, b.policy);
	ck_assert_int_eq(a.tcp_fastopen, b.tcp_fastopen);
	ck_assert_int_eq(a.log_level, b.log_level);
	ck_assert_ptr_null(b.allow);   /* its allow lines are comments */
	ck_assert_uint_eq(a.nupstreams, b.nupstreams);
	for (size_t i = 0; i < a.nupstreams; i++)
		ck_assert_str_eq(a.upstreams[i].text, b.upstreams[i].text);
	config_free(&a);
	config_free(&b);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("specs");

	tcase_add_test(tc, test_upstream_full);
	tcase_add_test(tc, test_upstream_defaults);
	tcase_add_test(tc, test_upstream_ipv6);
	tcase_add_test(tc, test_upstream_bad);
	tcase_add_test(tc, test_listen_addr);
	suite_add_tcase(s, tc);
	tc = tcase_create("args");
	tcase_add_test(tc, test_args_defaults);
	tcase_add_test(tc, test_args_override_and_pins);
	tcase_add_test(tc, test_args_errors_name_the_value);
	suite_add_tcase(s, tc);
	tc = tcase_create("file");
	tcase_add_test(tc, test_file_two_groups);
	tcase_add_test(tc, test_file_command_line_wins);
	tcase_add_test(tc, test_file_errors_name_line_and_value);
	tcase_add_test(tc, test_allow_file_and_command_line);
	tcase_add_test(tc, test_allow_printed);
	tcase_add_test(tc, test_sample_config_is_the_defaults);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(config_suite)
