/* netwatch: a suspend (boot time running ahead of monotonic time) is seen
 * at the next loop wake-up, once; a stopped process (both clocks run on)
 * or a short hiccup is not. In a network namespace of its own: a burst of
 * address and default-route changes is one report; a refresh that changes
 * nothing that matters is none. */
#include <check.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/netwatch.h"
#include "dotstub/sysclock.h"

#include "check_main.h"

static double fake_boot = 1000.0, fake_mono = 500.0;

static int fake_clock(clockid_t id, struct timespec *ts)
{
	double t = id == CLOCK_BOOTTIME ? fake_boot : fake_mono;

	ts->tv_sec = (time_t)t;
	ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
	return 0;
}

static int resets;
static char last_why[64];

static void on_reset(void *arg, const char *why)
{
	(void)arg;
	resets++;
	snprintf(last_why, sizeof(last_why), "%s", why);
}

static void setup(void)
{
	sysclock_set_source(fake_clock);
	fake_boot = 1000.0;
	fake_mono = 500.0;
	resets = 0;
	last_why[0] = 0;
}

static void teardown(void)
{
	sysclock_set_source(NULL);
}

/* One loop pass, as a wake-up of the daemon's loop. */
static void wake(struct ev_loop *loop)
{
	ev_run(loop, EVRUN_NOWAIT);
}

START_TEST(test_suspend_seen_once)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	netwatch_t *nw = netwatch_create(loop, on_reset, NULL, 0);

	wake(loop);
	ck_assert_int_eq(resets, 0);
	fake_boot += 1.0;   /* a second of ordinary life */
	fake_mono += 1.0;
	wake(loop);
	ck_assert_int_eq(resets, 0);
	fake_boot += 3600.0;   /* an hour asleep: monotonic time stood still */
	fake_mono += 0.5;
	wake(loop);
	ck_assert_int_eq(resets, 1);
	ck_assert_str_eq(last_why, "resumed after 3600 s");
	wake(loop);   /* the same suspend is not seen twice */
	ck_assert_int_eq(resets, 1);
	netwatch_destroy(nw);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(test_stop_and_hiccup_are_no_suspend)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	netwatch_t *nw = netwatch_create(loop, on_reset, NULL, 0);

	fake_boot += 600.0;   /* SIGSTOP for ten minutes: both clocks ran */
	fake_mono += 600.0;
	wake(loop);
	ck_assert_int_eq(resets, 0);
	fake_boot += NETWATCH_SUSPEND_MIN_S - 1;   /* too short to matter */
	wake(loop);
	ck_assert_int_eq(resets, 0);
	fake_boot += NETWATCH_SUSPEND_MIN_S + 1;
	wake(loop);
	ck_assert_int_eq(resets, 1);
	netwatch_destroy(nw);
	ev_loop_destroy(loop);
}
END_TEST

static void on_time_up(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Run loop for secs (real time: the debounce timers are libev's). */
static void run_for(struct ev_loop *loop, double secs)
{
	ev_timer t;

	ev_timer_init(&t, on_time_up, secs, 0.);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
}

static int sh(const char *cmd)
{
	return system(cmd);
}

START_TEST(test_network_change_debounced)
{
	struct ev_loop *loop;
	netwatch_t *nw;

	sysclock_set_source(NULL);   /* real clocks: no suspend here */
	if (unshare(CLONE_NEWNET) != 0 || sh("ip link set lo up") != 0) {
		fprintf(stderr, "check_netwatch: no network namespace, change test skipped\n");
		return;
	}
	loop = ev_loop_new(EVFLAG_AUTO);
	nw = netwatch_create(loop, on_reset, NULL, 0);
	/* A burst: an address, a default route, another address. */
	ck_assert_int_eq(sh("ip addr add 127.0.0.2/8 dev lo && "
			    "ip route add default dev lo && "
			    "ip -6 addr add 2001:db8::5/128 dev lo"), 0);
	run_for(loop, 1.5);
	ck_assert_int_eq(resets, 1);
	ck_assert_str_eq(last_why, "network changed");
	/* New lifetimes for an address that stays: no change that matters. */
	ck_assert_int_eq(sh("ip addr change 127.0.0.2/8 dev lo valid_lft 600 "
			    "preferred_lft 300"), 0);
	run_for(loop, 1.0);
	ck_assert_int_eq(resets, 1);
	/* Another default route, then an address gone: one more each. */
	ck_assert_int_eq(sh("ip route replace default via 127.0.0.3 dev lo"), 0);
	run_for(loop, 1.0);
	ck_assert_int_eq(resets, 2);
	ck_assert_int_eq(sh("ip addr del 127.0.0.2/8 dev lo"), 0);
	run_for(loop, 1.0);
	ck_assert_int_eq(resets, 3);
	netwatch_destroy(nw);
	ev_loop_destroy(loop);
}
END_TEST

static Suite *netwatch_suite(void)
{
	Suite *s = suite_create("netwatch");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_suspend_seen_once);
	tcase_add_test(tc, test_stop_and_hiccup_are_no_suspend);
	tcase_add_test(tc, test_network_change_debounced);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(netwatch_suite)
