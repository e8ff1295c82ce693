/* forward: the zone table (most specific domain, label boundaries, letter
 * case, long names) and the [forward] configuration's errors. Plain DNS
 * groups only: their c-ares channels are made, nothing is sent. */
#include <ares.h>
#include <check.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dotstub/config.h"
#include "dotstub/forward.h"
#include "dotstub/zones.h"

#include "check_main.h"

typedef struct {
	struct ev_loop *loop;
	config_t cfg;
	forward_set_t *set;
} fixture_t;

/* dotstub with the given --forward arguments (NULL-terminated). */
static void setup(fixture_t *f, const char *const *forwards)
{
	char *argv[160], err[512] = "";
	int argc = 0;

	argv[argc++] = "dotstub";
	for (size_t i = 0; forwards[i] && argc < 158; i++) {
		argv[argc++] = "--forward";
		argv[argc++] = (char *)forwards[i];
	}
	f->loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_msg(config_from_args(&f->cfg, argc, argv, err, sizeof(err)) == 0, "%s", err);
	f->set = forward_set_create(f->loop, &f->cfg, err, sizeof(err));
	ck_assert_msg(f->set, "%s", err);
}

static void teardown(fixture_t *f)
{
	forward_set_destroy(f->set);
	config_free(&f->cfg);
	ev_loop_destroy(f->loop);
}

/* The group of a question for name, as a client's query carries it
 * (built by c-ares, past the 12-byte header). */
static forward_group_t *lookup(const fixture_t *f, const char *name)
{
	unsigned char *q;
	int len;
	forward_group_t *g;

	ck_assert_int_eq(ares_create_query(name, 1, 1, 0, 1, &q, &len, 0), ARES_SUCCESS);
	g = forward_lookup(f->set, q + 12, (size_t)len - 12);
	ares_free_string(q);
	return g;
}

/* What the query path does: one zones_lookup() in the configuration's
 * table, the group taken from its match. */
static forward_group_t *group_of(const fixture_t *f, const char *name,
				 zones_kind_t kind)
{
	unsigned char *q;
	int len;
	zones_match_t m;

	ck_assert_int_eq(ares_create_query(name, 1, 1, 0, 1, &q, &len, 0), ARES_SUCCESS);
	ck_assert_int_eq(zones_lookup(f->cfg.zones, q + 12, (size_t)len - 12, &m), kind);
	ares_free_string(q);
	return forward_group_of(f->set, &m);
}

START_TEST(test_no_zone_no_group)
{
	static const char *const none[] = { NULL };
	fixture_t f;

	setup(&f, none);
	ck_assert_ptr_null(lookup(&f, "www.example"));
	ck_assert_ptr_null(lookup(&f, ""));
	teardown(&f);
}
END_TEST

START_TEST(test_most_specific_wins)
{
	static const char *const zones[] = {
		"example=plain:127.0.0.1", "corp.example=plain:127.0.0.2",
		"sub.corp.example=plain:127.0.0.3", NULL,
	};
	fixture_t f;
	forward_group_t *ex, *corp, *sub;

	setup(&f, zones);
	ex = lookup(&f, "example");
	corp = lookup(&f, "corp.example");
	sub = lookup(&f, "sub.corp.example");
	ck_assert_ptr_nonnull(ex);
	ck_assert_ptr_nonnull(corp);
	ck_assert_ptr_nonnull(sub);
	ck_assert_ptr_ne(ex, corp);
	ck_assert_ptr_ne(corp, sub);
	ck_assert_ptr_eq(lookup(&f, "a.corp.example"), corp);
	ck_assert_ptr_eq(lookup(&f, "x.y.sub.corp.example"), sub);
	ck_assert_ptr_eq(lookup(&f, "other.example"), ex);
	/* Label boundaries: xcorp.example is not under corp.example. */
	ck_assert_ptr_eq(lookup(&f, "xcorp.example"), ex);
	ck_assert_ptr_eq(lookup(&f, "subcorp.example"), ex);
	ck_assert_ptr_null(lookup(&f, "example.org"));
	ck_assert_ptr_null(lookup(&f, "notexample"));
	/* Letter case. */
	ck_assert_ptr_eq(lookup(&f, "WWW.Corp.EXAMPLE"), corp);
	teardown(&f);
}
END_TEST

/* The match the query path takes its group from: the group
 * forward_lookup() finds for a forward zone's name; none for a local
 * zone's name or one in no zone, or without a set. */
START_TEST(test_group_of_a_match)
{
	static const char *const zones[] = {
		"example=plain:127.0.0.1", "corp.example=plain:127.0.0.2", NULL,
	};
	fixture_t f;
	zones_match_t m = { .kind = ZONES_FORWARD, .group = 0 };

	setup(&f, zones);
	ck_assert_ptr_nonnull(group_of(&f, "a.corp.example", ZONES_FORWARD));
	ck_assert_ptr_eq(group_of(&f, "a.corp.example", ZONES_FORWARD),
			 lookup(&f, "a.corp.example"));
	ck_assert_ptr_eq(group_of(&f, "www.example", ZONES_FORWARD),
			 lookup(&f, "www.example"));
	ck_assert_ptr_ne(group_of(&f, "www.example", ZONES_FORWARD),
			 group_of(&f, "corp.example", ZONES_FORWARD));
	ck_assert_ptr_null(group_of(&f, "localhost", ZONES_LOCAL));
	ck_assert_ptr_null(group_of(&f, "example.org", ZONES_DEFAULT));
	ck_assert_ptr_null(forward_group_of(NULL, &m));
	m.group = 2;   /* no such group: never read past the set */
	ck_assert_ptr_null(forward_group_of(f.set, &m));
	teardown(&f);
}
END_TEST

/* A name of 122 labels (253 bytes) under a zone: the walk skips what cannot match. */
START_TEST(test_long_names)
{
	static const char *const zones[] = { "corp.example=plain:127.0.0.1", NULL };
	char name[300] = "";
	fixture_t f;

	setup(&f, zones);
	for (int i = 0; i < 120; i++)
		strcat(name, "a.");
	strcat(name, "corp.example");
	ck_assert_ptr_nonnull(lookup(&f, name));
	name[strlen(name) - strlen("corp.example")] = '\0';
	strcat(name, "corp.examplf");
	ck_assert_ptr_null(lookup(&f, name));
	teardown(&f);
}
END_TEST

/* Fifty zones, each found, none mixed up. */
START_TEST(test_fifty_zones)
{
	const char *zones[51];
	char text[50][64];
	fixture_t f;

	for (int i = 0; i < 50; i++) {
		snprintf(text[i], sizeof(text[i]), "zone%d.test=plain:127.0.0.%d", i, i + 1);
		zones[i] = text[i];
	}
	zones[50] = NULL;
	setup(&f, zones);
	for (int i = 0; i < 50; i++) {
		char a[64], b[64];
		snprintf(a, sizeof(a), "www.zone%d.test", i);
		snprintf(b, sizeof(b), "zone%d.test", i);
		ck_assert_ptr_nonnull(lookup(&f, a));
		ck_assert_ptr_eq(lookup(&f, a), lookup(&f, b));
		if (i)
			ck_assert_ptr_ne(lookup(&f, a), lookup(&f, "zone0.test"));
	}
	ck_assert_ptr_null(lookup(&f, "zone50.test"));
	teardown(&f);
}
END_TEST

/* Repeating --forward for a domain gives its group more servers. */
START_TEST(test_command_line_groups)
{
	static const char *const zones[] = {
		"corp.example=plain:127.0.0.1", "Corp.Example.=plain:127.0.0.2@5353",
		"example.org=127.0.0.3#dns.example.org", NULL,
	};
	fixture_t f;

	setup(&f, zones);
	ck_assert_uint_eq(f.cfg.nforwards, 2);
	ck_assert_uint_eq(f.cfg.forwards[0].nupstreams, 2);
	ck_assert_str_eq(f.cfg.forwards[0].upstreams[0].text, "127.0.0.1@53");
	ck_assert_str_eq(f.cfg.forwards[0].upstreams[1].text, "127.0.0.2@5353");
	ck_assert_int_eq(f.cfg.forwards[0].plaintext, 1);
	ck_assert_str_eq(f.cfg.forwards[1].upstreams[0].text, "127.0.0.3@853#dns.example.org");
	ck_assert_int_eq(f.cfg.forwards[1].plaintext, 0);
	ck_assert_ptr_null(forward_upstreams(lookup(&f, "www.corp.example")));
	ck_assert_ptr_nonnull(forward_upstreams(lookup(&f, "www.example.org")));
	teardown(&f);
}
END_TEST

START_TEST(test_errors_name_file_and_line)
{
	static const struct {
		const char *text;
		const char *expect;
	} cases[] = {
		{ "[forward x]\ndomain = ..\nserver = 127.0.0.1\n", ":2: domain: invalid domain '..'" },
		{ "[forward x]\ndomain = 10.8.0.1\n", ":2: domain: invalid domain '10.8.0.1' (an address" },
		{ "[forward x]\ndomain = fd00::1\n", ":2: domain: invalid domain 'fd00::1' (an address" },
		{ "[forward x]\ndomain = .\n", ":2: domain: invalid domain '.'" },
		{ "[forward x]\ndomain = a..\n", ":2: domain: invalid domain 'a..'" },
		{ "[forward x]\ndomain = a b.example\n", ":2: domain: invalid domain 'a b.example'" },
		{ "[forward x]\ndomain = c.example\nserver = vpn.example\n",
		  ":3: server: invalid server 'vpn.example'" },
		{ "[forward x]\ndomain = c.example\n\nserver = 127.0.0.1@53\n",
		  ":4: server '127.0.0.1@53': port 53 is plain DNS" },
		{ "[forward x]\ndomain = c.example\nserver = 127.0.0.1#n.example\nplaintext = yes\n",
		  ":3: server '127.0.0.1#n.example': a plain DNS server has no name" },
		{ "[forward x]\ndomain = c.example\nserver = 127.0.0.1\nplaintext = yes\nauth-name = n.example\n",
		  ":4: [forward x]: plaintext = yes, yet auth-name" },
		{ "[forward x]\ndomain = c.example\nplaintext = maybe\n", ":3: plaintext: invalid value 'maybe'" },
		{ "[forward x]\ndomain = c.example\n", "[forward x] has no server" },
		{ "[forward x]\nserver = 127.0.0.1\n", "[forward x] has no domain" },
		{ "[forward x]\ndomain = c.example\nbogus = 1\n", ":3: unknown key 'bogus' in [forward x]" },
		{ "[forward a]\ndomain = c.example\nserver = 127.0.0.1\n[forward b]\ndomain = C.example.\n",
		  ":5: domain: 'c.example' is already forwarded by [forward a]" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[] = "/tmp/check_forward_XXXXXX", err[512] = "";
		char *argv[] = { "dotstub", "-c", path, NULL };
		int fd = mkstemp(path);
		config_t cfg;

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, cases[i].text, strlen(cases[i].text)),
				 (ssize_t)strlen(cases[i].text));
		close(fd);
		ck_assert_int_lt(config_from_args(&cfg, 3, argv, err, sizeof(err)), 0);
		unlink(path);
		ck_assert_msg(strstr(err, cases[i].expect) && strstr(err, path),
			      "case %zu: '%s' lacks '%s'", i, err, cases[i].expect);
		config_free(&cfg);
	}
}
END_TEST

static Suite *forward_suite(void)
{
	Suite *s = suite_create("forward");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_no_zone_no_group);
	tcase_add_test(tc, test_most_specific_wins);
	tcase_add_test(tc, test_group_of_a_match);
	tcase_add_test(tc, test_long_names);
	tcase_add_test(tc, test_fifty_zones);
	tcase_add_test(tc, test_command_line_groups);
	tcase_add_test(tc, test_errors_name_file_and_line);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(forward_suite)
