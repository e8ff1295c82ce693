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
	ck_assert_uint_eq(cfg.cache_max_ttl, 86400);
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
		{ "[server]\ncache-max-ttl = 0\n", ":2: cache-max-ttl: invalid value '0'" },
		{ "[server]\ncache-max-ttl = 604801\n", "cache-max-ttl: invalid value '604801'" },
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
	ck_assert_uint_eq(a.cache_size, b.cache_size);
	ck_assert_uint_eq(a.cache_max_ttl, b.cache_max_ttl);
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

static const char *srcdir_file(char *buf, size_t cap, const char *rel)
{
	snprintf(buf, cap, "%s/../%s",
		 getenv("TESTS_SRCDIR") ? getenv("TESTS_SRCDIR") : "tests", rel);
	return buf;
}

/* The [server] lines of the sample file: "key = value" set, ";key = value"
 * shown commented out. values gets a key's set values, space-separated;
 * *commented says whether a commented line names it. 1 when it is there. */
static int sample_lines(FILE *f, const char *key, char *values, size_t cap,
			int *commented)
{
	char line[512];
	int in_server = 0, found = 0;

	values[0] = '\0';
	*commented = 0;
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *eq;
		int off = 0;

		if (line[0] == '[')
			in_server = strncmp(line, "[server]", 8) == 0;
		if (!in_server)
			continue;
		if (*p == ';') {
			off = 1;
			p++;
		}
		eq = strstr(p, " = ");
		if (!eq || (size_t)(eq - p) != strlen(key) || strncmp(p, key, strlen(key)))
			continue;
		found = 1;
		if (off) {
			*commented = 1;
			continue;
		}
		eq[3 + strcspn(eq + 3, " ;\n")] = '\0';
		if (values[0])
			strncat(values, " ", cap - strlen(values) - 1);
		strncat(values, eq + 3, cap - strlen(values) - 1);
	}
	return found;
}

/* One table for every setting: the sample file lists exactly its keys
 * with its defaults (unset ones commented out), the man page names each. */
START_TEST(test_sample_and_man_follow_the_table)
{
	char path[1024], line[512], values[256], man[200000];
	FILE *conf = fopen(srcdir_file(path, sizeof(path), "etc/dotstub.conf"), "r");
	FILE *mf;
	size_t mlen;
	int in_server = 0, commented;

	ck_assert_ptr_nonnull(conf);
	mf = fopen(srcdir_file(path, sizeof(path), "doc/dotstub.8"), "r");
	ck_assert_ptr_nonnull(mf);
	mlen = fread(man, 1, sizeof(man) - 1, mf);
	man[mlen] = '\0';
	fclose(mf);
	for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
		const config_setting_t *st = &CONFIG_SETTINGS[i];
		char roff[64];
		size_t j = 0;

		if (!st->key)
			continue;
		ck_assert_msg(sample_lines(conf, st->key, values, sizeof(values), &commented),
			      "etc/dotstub.conf lacks '%s'", st->key);
		if (st->def)
			ck_assert_msg(strcmp(values, st->def) == 0,
				      "etc/dotstub.conf: %s = '%s', the table says '%s'",
				      st->key, values, st->def);
		else
			ck_assert_msg(!values[0] && commented,
				      "etc/dotstub.conf: %s has no default: commented out", st->key);
		for (const char *k = st->key; *k && j + 3 < sizeof(roff); k++) {
			if (*k == '-')
				roff[j++] = '\\';
			roff[j++] = *k;
		}
		roff[j] = '\0';
		ck_assert_msg(strstr(man, roff), "doc/dotstub.8 does not name '%s'", st->key);
	}
	rewind(conf);
	while (fgets(line, sizeof(line), conf)) {
		char key[128];
		const char *p = line[0] == ';' ? line + 1 : line;

		if (line[0] == '[')
			in_server = strncmp(line, "[server]", 8) == 0;
		if (in_server && sscanf(p, "%127[a-z-] =", key) == 1 && strstr(p, " = "))
			ck_assert_msg(config_setting_find(key),
				      "etc/dotstub.conf has '%s', which the table has not", key);
	}
	fclose(conf);
}
END_TEST

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* -d changes to / before any reload: relative names must still mean the
 * files of the start directory, from the command line and from the file. */
START_TEST(test_relative_paths_survive_chdir)
{
	char dir[] = "check_config_rel_XXXXXX", base[4096], conf[128], want[8192];
	char ca[128], pid[128];
	config_t cfg;
	char err[512];

	ck_assert_ptr_nonnull(getcwd(base, sizeof(base)));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/rel.conf", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(pid, sizeof(pid), "%s/x.pid", dir);
	write_file(ca, "");
	{
		char text[512];
		snprintf(text, sizeof(text), "[server]\npidfile = %s\n[upstream a]\n"
			 "server = 127.0.0.1#a.test\nca-file = %s\n", pid, ca);
		write_file(conf, text);
	}
	for (int round = 0; round < 2; round++) {
		ck_assert_msg(parse(&cfg, err, sizeof(err), 3, "-c", conf) == 0,
			      "round %d: %s", round, err);
		snprintf(want, sizeof(want), "%s/%s", base, conf);
		ck_assert_str_eq(cfg.config_file, want);
		snprintf(want, sizeof(want), "%s/%s", base, ca);
		ck_assert_str_eq(cfg.upstreams[0].ca_file, want);
		snprintf(want, sizeof(want), "%s/%s", base, pid);
		ck_assert_str_eq(cfg.pidfile, want);
		config_free(&cfg);
		ck_assert_int_eq(chdir("/"), 0);  /* what -d does */
	}
	ck_assert_int_eq(parse(&cfg, err, sizeof(err), 5, "--ca-file", "c.pem",
			       "--pidfile", "/run/d.pid"), 0);
	snprintf(want, sizeof(want), "%s/c.pem", base);
	ck_assert_str_eq(cfg.cli.ca_file, want);
	ck_assert_str_eq(cfg.pidfile, "/run/d.pid");
	config_free(&cfg);
	ck_assert_int_eq(chdir(base), 0);
	unlink(conf);
	unlink(ca);
	rmdir(dir);
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
	tcase_add_test(tc, test_sample_and_man_follow_the_table);
	tcase_add_test(tc, test_relative_paths_survive_chdir);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(config_suite)
