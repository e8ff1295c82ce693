#include "config.h"

#include <gnutls/gnutls.h>
#include <stdatomic.h>
#include <time.h>

#include "dotstub/log.h"
#include "dotstub/tls.h"

/* GnuTLS asks its time function for every certificate date check. A
 * router or a Raspberry Pi starts in 1970 until NTP runs, NTP needs DNS,
 * and DNS over TLS needs the date: with the floor on, a clock earlier
 * than the build is taken as the build time (a certificate valid then is
 * accepted; one that expired before the build still is not). The floor
 * lifts by itself once the clock passes the build time. GnuTLS calls the
 * function from every worker thread: the state is atomic. */

enum { CLOCK_UNKNOWN = -1, CLOCK_REAL = 0, CLOCK_FLOORED = 1 };

static atomic_int floor_on;
static atomic_int clock_state = CLOCK_UNKNOWN;

time_t tls_clock_build_time(void)
{
	return (time_t)DOTSTUB_BUILD_TIME;
}

time_t tls_clock_floored(time_t now, int on)
{
	return on && now < tls_clock_build_time() ? tls_clock_build_time() : now;
}

static void format_utc(time_t t, char *buf, size_t cap)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, cap, "%lld", (long long)t);
}

/* Said once per change, not once per handshake. */
static void report(int was, int state, time_t now)
{
	char clock[40], build[40];

	if (was == state || (was == CLOCK_UNKNOWN && state == CLOCK_REAL))
		return;
	format_utc(now, clock, sizeof(clock));
	format_utc(tls_clock_build_time(), build, sizeof(build));
	if (state == CLOCK_FLOORED)
		log_warn("the clock says %s, earlier than this build (%s): certificate "
			 "dates are checked against %s until the clock passes it "
			 "(clock-floor)", clock, build, build);
	else
		log_info("the clock (%s) has passed the build time (%s): certificate "
			 "dates are checked against the clock again", clock, build);
}

static time_t floor_time(time_t *t)
{
	time_t now = time(NULL);
	int on = atomic_load(&floor_on);
	int state = on && now < tls_clock_build_time() ? CLOCK_FLOORED : CLOCK_REAL;

	report(atomic_exchange(&clock_state, state), state, now);
	now = tls_clock_floored(now, on);
	if (t)
		*t = now;
	return now;
}

void tls_clock_floor(int on)
{
	static atomic_flag installed = ATOMIC_FLAG_INIT;

	atomic_store(&floor_on, on);
	if (!atomic_flag_test_and_set(&installed))
		gnutls_global_set_time_function(floor_time);
	floor_time(NULL);   /* the warning at start-up, not at the first query */
}
