#include "config.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dotstub/log.h"
#include "dotstub/netwatch.h"
#include "dotstub/sysclock.h"
#include "dotstub/xmalloc.h"

/* Datagrams read per wake-up: a storm of events must not hold the loop
 * (what is left is read at the next pass; the change is noted anyway). */
#define EVENT_READS_MAX 32
/* Reads of one table dump: a routing table of full-table size (a million
 * routes, ~30 per datagram) fits, a kernel that never says DONE does not. */
#define DUMP_READS_MAX 65536
#define NL_BUF 16384

struct netwatch {
	struct ev_loop *loop;
	netwatch_fn fn;
	void *arg;
	int fd;                   /* the event socket; -1: none */
	ev_io io;
	ev_timer quiet;           /* NETWATCH_DEBOUNCE_MS after the last event */
	ev_timer cap;             /* NETWATCH_DEBOUNCE_MAX_MS after the first */
	ev_check wake;            /* suspend check, every loop wake-up */
	uint64_t fingerprint;     /* of the addresses and default routes */
	int have_fingerprint;
	double offset;            /* boot time - monotonic time, last seen */
	uint32_t seq;
	uint8_t buf[NL_BUF];
};

/* FNV-1a, 64 bits: entries are summed, so the order of a dump does not
 * matter, and a change of any hashed field changes the sum. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211u;
	return h;
}

#define FNV_BASIS 14695981039346656037u

/* The attributes of types in `keep` (0-terminated), hashed. */
static uint64_t hash_attrs(uint64_t h, struct rtattr *rta, int len,
			   const unsigned short *keep)
{
	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		for (const unsigned short *k = keep; *k; k++)
			if (rta->rta_type == *k) {
				h = fnv(h, &rta->rta_type, sizeof(rta->rta_type));
				h = fnv(h, RTA_DATA(rta), RTA_PAYLOAD(rta));
			}
	return h;
}

/* An address: which, where. Flags and lifetimes are left out: a router
 * advertisement renews lifetimes every few minutes, and a tentative
 * address turning valid is no new path. */
static uint64_t hash_addr(const struct nlmsghdr *nh)
{
	static const unsigned short keep[] = { IFA_ADDRESS, IFA_LOCAL, 0 };
	struct ifaddrmsg *ifa = NLMSG_DATA(nh);
	uint64_t h = fnv(FNV_BASIS, "a", 1);

	if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)))
		return 0;
	h = fnv(h, &ifa->ifa_family, sizeof(ifa->ifa_family));
	h = fnv(h, &ifa->ifa_prefixlen, sizeof(ifa->ifa_prefixlen));
	h = fnv(h, &ifa->ifa_index, sizeof(ifa->ifa_index));
	return hash_attrs(h, IFA_RTA(ifa), (int)IFA_PAYLOAD(nh), keep);
}

/* A default route, in any table but the kernel's local one (VPNs put
 * theirs in tables of their own); 0 for every other route. */
static int is_default_route(const struct nlmsghdr *nh)
{
	const struct rtmsg *rt = NLMSG_DATA(nh);

	return nh->nlmsg_len >= NLMSG_LENGTH(sizeof(*rt)) && rt->rtm_dst_len == 0 &&
	       rt->rtm_table != RT_TABLE_LOCAL && !(rt->rtm_flags & RTM_F_CLONED);
}

static uint64_t hash_route(const struct nlmsghdr *nh)
{
	static const unsigned short keep[] = {
		RTA_TABLE, RTA_GATEWAY, RTA_VIA, RTA_OIF, RTA_PRIORITY,
		RTA_PREFSRC, RTA_MULTIPATH, 0,
	};
	struct rtmsg *rt = NLMSG_DATA(nh);
	uint64_t h = fnv(FNV_BASIS, "r", 1);

	if (!is_default_route(nh))
		return 0;
	h = fnv(h, &rt->rtm_family, sizeof(rt->rtm_family));
	h = fnv(h, &rt->rtm_table, sizeof(rt->rtm_table));
	h = fnv(h, &rt->rtm_type, sizeof(rt->rtm_type));
	return hash_attrs(h, RTM_RTA(rt), (int)RTM_PAYLOAD(nh), keep);
}

/* Ask for one table (RTM_GETADDR, RTM_GETROUTE), add its entries' hashes
 * to *fp. Returns 0, or -1 (error, or no end in sight). */
static int dump_table(netwatch_t *nw, int fd, uint16_t type, uint64_t *fp)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rt;     /* the largest request body; family first */
	} req;
	uint32_t seq = ++nw->seq;

	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(type == RTM_GETADDR ? sizeof(struct ifaddrmsg)
							    : sizeof(struct rtmsg));
	req.nh.nlmsg_type = type;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nh.nlmsg_seq = seq;
	req.rt.rtm_family = AF_UNSPEC;
	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0)
		return -1;
	for (unsigned i = 0; i < DUMP_READS_MAX; i++) {
		ssize_t n = recv(fd, nw->buf, sizeof(nw->buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		unsigned len = (unsigned)n;
		for (struct nlmsghdr *nh = (struct nlmsghdr *)nw->buf; NLMSG_OK(nh, len);
		     nh = NLMSG_NEXT(nh, len)) {
			if (nh->nlmsg_seq != seq)
				continue;
			if (nh->nlmsg_type == NLMSG_DONE)
				return 0;
			if (nh->nlmsg_type == NLMSG_ERROR)
				return -1;
			*fp += nh->nlmsg_type == RTM_NEWADDR ? hash_addr(nh) :
			       nh->nlmsg_type == RTM_NEWROUTE ? hash_route(nh) : 0;
		}
	}
	return -1;
}

/* The addresses and default routes now, as one number. A socket of its
 * own, blocking: the kernel answers a dump at once (the timeout is a
 * guard), and the event socket's queue stays events only. */
static int fingerprint(netwatch_t *nw, uint64_t *fp)
{
	struct timeval tv = { 1, 0 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int rc;

	*fp = 0;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	rc = dump_table(nw, fd, RTM_GETADDR, fp) < 0 ||
	     dump_table(nw, fd, RTM_GETROUTE, fp) < 0 ? -1 : 0;
	close(fd);
	return rc;
}

/* The burst is over: report it when something that matters differs
 * (a table that cannot be read counts as changed: better one needless
 * reconnect than a stale connection). */
static void look(netwatch_t *nw)
{
	uint64_t fp;
	int ok = fingerprint(nw, &fp) == 0;

	ev_timer_stop(nw->loop, &nw->quiet);
	ev_timer_stop(nw->loop, &nw->cap);
	if (ok && nw->have_fingerprint && fp == nw->fingerprint) {
		log_debug("netwatch: address or route events, no change that matters");
		return;
	}
	nw->fingerprint = fp;
	nw->have_fingerprint = ok;
	nw->fn(nw->arg, "network changed");
}

static void on_debounced(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	look(t->data);
}

/* An address event, or a default route's: the change is looked at once
 * the events stop (or at the latest NETWATCH_DEBOUNCE_MAX_MS after the
 * first of them). */
static int relevant(const struct nlmsghdr *nh)
{
	switch (nh->nlmsg_type) {
	case RTM_NEWADDR:
	case RTM_DELADDR:
		return 1;
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		return is_default_route(nh);
	default:
		return 0;
	}
}

static int read_events(netwatch_t *nw)
{
	int seen = 0;

	for (int i = 0; i < EVENT_READS_MAX; i++) {
		ssize_t n = recv(nw->fd, nw->buf, sizeof(nw->buf), MSG_DONTWAIT);
		if (n < 0 && errno == ENOBUFS) {
			seen = 1;   /* the kernel dropped events: assume a change */
			continue;
		}
		if (n <= 0)
			break;
		unsigned len = (unsigned)n;
		for (struct nlmsghdr *nh = (struct nlmsghdr *)nw->buf; NLMSG_OK(nh, len);
		     nh = NLMSG_NEXT(nh, len))
			seen |= relevant(nh);
	}
	return seen;
}

static void on_events(struct ev_loop *loop, ev_io *w, int revents)
{
	netwatch_t *nw = w->data;

	(void)revents;
	if (!read_events(nw))
		return;
	ev_timer_again(loop, &nw->quiet);
	if (!ev_is_active(&nw->cap)) {
		ev_timer_set(&nw->cap, NETWATCH_DEBOUNCE_MAX_MS / 1000.0, 0.);
		ev_timer_start(loop, &nw->cap);
	}
}

/* Boot time runs on while the machine sleeps, monotonic time does not:
 * their difference grows by the time asleep. Run at every wake-up, at
 * the highest priority, so that the first query after a resume finds the
 * reset done (a timer would not do: it runs on monotonic time, and is
 * not due yet when the machine wakes). */
static void on_wake(struct ev_loop *loop, ev_check *w, int revents)
{
	netwatch_t *nw = w->data;
	double offset = sysclock_boot() - sysclock_mono();
	double slept = offset - nw->offset;
	char why[64];

	(void)loop;
	(void)revents;
	nw->offset = offset;
	if (slept <= NETWATCH_SUSPEND_MIN_S)
		return;
	snprintf(why, sizeof(why), "resumed after %.0f s", slept);
	nw->fn(nw->arg, why);
}

static int open_events(netwatch_t *nw, char *err, size_t errlen)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
			     RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
	};

	nw->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
			NETLINK_ROUTE);
	if (nw->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(nw->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "bind: %s", strerror(errno));
		close(nw->fd);
		nw->fd = -1;
		return -1;
	}
	return 0;
}

netwatch_t *netwatch_create(struct ev_loop *loop, netwatch_fn fn, void *arg,
			    int announce)
{
	netwatch_t *nw = xcalloc(1, sizeof(*nw));
	char err[128];

	nw->loop = loop;
	nw->fn = fn;
	nw->arg = arg;
	nw->offset = sysclock_boot() - sysclock_mono();
	ev_check_init(&nw->wake, on_wake);
	nw->wake.data = nw;
	ev_set_priority(&nw->wake, EV_MAXPRI);
	ev_check_start(loop, &nw->wake);
	ev_unref(loop);   /* watching alone keeps no loop running */
	ev_init(&nw->quiet, on_debounced);
	nw->quiet.repeat = NETWATCH_DEBOUNCE_MS / 1000.0;
	nw->quiet.data = nw;
	ev_init(&nw->cap, on_debounced);
	nw->cap.data = nw;
	if (open_events(nw, err, sizeof(err)) < 0) {
		log_msg(announce ? LOG_LVL_WARN : LOG_LVL_DEBUG,
			"network changes go unnoticed (netlink %s): only a suspend "
			"resets upstream connections", err);
		return nw;
	}
	/* Subscribed first, then the first look: a change in between shows
	 * as an event and is compared against this look. */
	nw->have_fingerprint = fingerprint(nw, &nw->fingerprint) == 0;
	ev_io_init(&nw->io, on_events, nw->fd, EV_READ);
	nw->io.data = nw;
	ev_io_start(loop, &nw->io);
	ev_unref(loop);
	return nw;
}

void netwatch_destroy(netwatch_t *nw)
{
	if (!nw)
		return;
	ev_ref(nw->loop);
	ev_check_stop(nw->loop, &nw->wake);
	ev_timer_stop(nw->loop, &nw->quiet);
	ev_timer_stop(nw->loop, &nw->cap);
	if (nw->fd >= 0) {
		ev_ref(nw->loop);
		ev_io_stop(nw->loop, &nw->io);
		close(nw->fd);
	}
	free(nw);
}
