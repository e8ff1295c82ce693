/* stats: blocks summed over threads and upstreams, gauges by their
 * aggregation, and the text page and USR1 line made from the one table. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/stats.h"

#include "check_main.h"

/* The page, rendered into a string (the caller frees it). */
static char *render(const stats_snapshot_t *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	stats_render(s, f);
	fclose(f);
	return buf;
}

START_TEST(test_threads_summed)
{
	stats_global_t a, b;
	stats_snapshot_t *s = stats_snapshot_new();

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	stats_inc(&a, SG_QUERIES);
	stats_inc(&b, SG_QUERIES);
	stats_inc(&b, SG_QUERIES);
	stats_inc_at(&a, SG_RESPONSES, stats_rcode_label(3));
	stats_inc_at(&b, SG_RESPONSES, stats_rcode_label(99));   /* OTHER */
	stats_set(&a, SG_OPEN, 2);
	stats_set(&b, SG_OPEN, 5);
	stats_snapshot_add_global(s, &a);
	stats_snapshot_add_global(s, &b);
	ck_assert(stats_global_value(s, SG_QUERIES) == 3);
	ck_assert(stats_global_value(s, SG_OPEN) == 7);
	ck_assert(stats_global_value(s, SG_RESPONSES + 3) == 1);
	ck_assert(stats_global_value(s, SG_RESPONSES + STATS_N_RCODE - 1) == 1);
	stats_snapshot_clear(s);
	ck_assert(stats_global_value(s, SG_QUERIES) == 0);
	stats_snapshot_free(s);
}
END_TEST

/* The same upstream in two threads (or a retired set) is one series:
 * counters add up, health and expiry take the largest. */
START_TEST(test_upstreams_merged_by_label)
{
	stats_upstream_t a, b;
	stats_snapshot_t *s = stats_snapshot_new(), *t = stats_snapshot_new();

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	stats_inc(&a, SU_ANSWERS);
	stats_inc(&b, SU_ANSWERS);
	stats_set(&a, SU_HEALTHY, 1);
	stats_set(&a, SU_CERT_EXPIRY, 1800000000.0);
	stats_inc_at(&b, SU_HS_FAILURES, STATS_REASON_NAME);
	stats_snapshot_add_upstream(s, "127.0.0.1@853#a.example", &a);
	stats_snapshot_add_upstream(s, "127.0.0.1@853#a.example", &b);
	stats_snapshot_add_upstream(s, "127.0.0.2@853#b.example", &b);
	stats_snapshot_merge(t, s);
	ck_assert(stats_upstream_value(t, "127.0.0.1@853#a.example", SU_ANSWERS) == 2);
	ck_assert(stats_upstream_value(t, "127.0.0.1@853#a.example", SU_HEALTHY) == 1);
	ck_assert(stats_upstream_value(t, "127.0.0.1@853#a.example", SU_CERT_EXPIRY) == 1800000000.0);
	ck_assert(stats_upstream_value(t, "127.0.0.2@853#b.example",
				       SU_HS_FAILURES + STATS_REASON_NAME) == 1);
	ck_assert(stats_upstream_value(t, "nowhere", SU_ANSWERS) == 0);
	stats_snapshot_free(s);
	stats_snapshot_free(t);
}
END_TEST

START_TEST(test_page)
{
	stats_global_t g;
	stats_upstream_t u;
	stats_snapshot_t *s = stats_snapshot_new();
	char *page;

	memset(&g, 0, sizeof(g));
	memset(&u, 0, sizeof(u));
	stats_inc(&g, SG_ANSWERED);
	stats_observe(&g, SG_ANSWER_SECONDS, 0, 0.003);
	stats_observe(&g, SG_CLIENT_SECONDS, STATS_SOURCE_CACHE, 0.00005);
	stats_observe(&u, SU_ANSWER_SECONDS, 0, 5.0);
	stats_inc_at(&u, SU_HS_FAILURES, STATS_REASON_PIN);
	stats_snapshot_add_global(s, &g);
	stats_snapshot_add_upstream(s, "1.1.1.1@853#one\"x\\", &u);
	page = render(s);
	ck_assert_ptr_nonnull(strstr(page, "# TYPE dotstub_answers_total counter\n"
					   "dotstub_answers_total 1\n"));
	ck_assert_ptr_nonnull(strstr(page, "dotstub_answer_seconds_bucket{le=\"0.002\"} 0\n"
					   "dotstub_answer_seconds_bucket{le=\"0.005\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(page, "dotstub_answer_seconds_count 1\n"));
	ck_assert_ptr_nonnull(strstr(page, "dotstub_client_answer_seconds_bucket"
					   "{source=\"cache\",le=\"0.0001\"} 1\n"));
	/* Past the last bound: only +Inf has it. */
	ck_assert_ptr_nonnull(strstr(page, "dotstub_upstream_answer_seconds_bucket"
					   "{upstream=\"1.1.1.1@853#one\\\"x\\\\\",le=\"2\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(page, "dotstub_upstream_answer_seconds_bucket"
					   "{upstream=\"1.1.1.1@853#one\\\"x\\\\\",le=\"+Inf\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(page, "dotstub_upstream_handshake_failures_total"
					   "{upstream=\"1.1.1.1@853#one\\\"x\\\\\",reason=\"pin\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(page, "# TYPE dotstub_upstream_cert_expiry_timestamp_seconds gauge\n"));
	free(page);
	stats_snapshot_free(s);
}
END_TEST

START_TEST(test_log_line)
{
	stats_global_t g;
	stats_snapshot_t *s = stats_snapshot_new();
	char line[1024];

	memset(&g, 0, sizeof(g));
	stats_inc(&g, SG_QUERIES);
	stats_inc(&g, SG_CACHE_HITS);
	stats_snapshot_add_global(s, &g);
	stats_log_line(s, line, sizeof(line));
	ck_assert_ptr_nonnull(strstr(line, "queries 1, answered 0,"));
	ck_assert_ptr_nonnull(strstr(line, ", cache hits 1,"));
	stats_log_line(s, line, 12);   /* cut short, still a string */
	ck_assert_uint_lt(strlen(line), 12);
	stats_snapshot_free(s);
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_threads_summed);
	tcase_add_test(tc, test_upstreams_merged_by_label);
	tcase_add_test(tc, test_page);
	tcase_add_test(tc, test_log_line);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(stats_suite)
