/* netwatch: notices what makes upstream connections stale without a word
 * from the network: a change of local addresses or of the default route
 * (a new Wi-Fi, a VPN coming up, a cable pulled), and a suspend (the
 * machine slept: servers and NATs have long forgotten our connections).
 *
 * Changes come from a NETLINK_ROUTE socket (address and route groups,
 * IPv4 and IPv6) on the caller's loop. A burst of events (one change
 * brings several) is debounced into one look at the tables; when the
 * addresses or the default routes differ from the last look, the owner
 * hears "network changed" once. Routine refreshes (IPv6 address lifetimes
 * renewed by router advertisements) change nothing and are not reported.
 *
 * A suspend shows as CLOCK_BOOTTIME running ahead of CLOCK_MONOTONIC
 * (sysclock); it is checked at every loop wake-up, before anything else
 * the wake-up brought runs, so the first query after a resume already
 * finds the stale connections gone. */
#ifndef DOTSTUB_NETWATCH_H
#define DOTSTUB_NETWATCH_H

#include <ev.h>

/* Boot time ahead of monotonic time by more than this: the machine slept
 * (a second or two is a short suspend nothing notices, or scheduling). */
#define NETWATCH_SUSPEND_MIN_S 3.0
/* Events closer together than this are one change... */
#define NETWATCH_DEBOUNCE_MS 500
/* ...but a change is reported at most this long after its first event,
 * even while events keep coming. */
#define NETWATCH_DEBOUNCE_MAX_MS 2000

typedef struct netwatch netwatch_t;

/* What the owner hears: why ("network changed", "resumed after 42 s"),
 * valid during the call. */
typedef void (*netwatch_fn)(void *arg, const char *why);

/* Watch on loop (which must outlive the watcher) and call fn(arg, why)
 * on each change or resume. When no netlink socket can be had, logs why
 * (a warning when `announce`, else at debug: one line per daemon, not per
 * thread) and watches suspends only. Never NULL. */
netwatch_t *netwatch_create(struct ev_loop *loop, netwatch_fn fn, void *arg,
			    int announce);
void netwatch_destroy(netwatch_t *nw);

#endif
