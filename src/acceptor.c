#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/acceptor.h"
#include "dotstub/log.h"
#include "dotstub/xmalloc.h"

/* Connections taken per wake-up: the rest wait one loop pass, so that a
 * flood of connections cannot keep the loop from everything else. */
#define ACCEPT_BATCH 64
/* How long accepting pauses when descriptors or memory run out. With
 * ulimit -n 32 and 40 waiting clients, retrying at once cost 82 % of a
 * core and 250,000 log lines in 2 s. */
#define PAUSE_SECONDS 0.25
#define LOG_INTERVAL 1.0

struct acceptor {
	struct ev_loop *loop;
	int fd;
	ev_io io;
	ev_timer resume;
	acceptor_fn fn;
	void *arg;
	ev_tstamp logged;         /* the last failure logged */
	unsigned long unlogged;   /* failures since, not logged */
	char name[128];
};

/* A peer can make accept() fail (a reset before we took it): one line a
 * second at most. */
static void log_failure(acceptor_t *a, int err, int paused)
{
	ev_tstamp now = ev_now(a->loop);
	char more[64] = "";

	if (now - a->logged < LOG_INTERVAL) {
		a->unlogged++;
		return;
	}
	if (a->unlogged)
		snprintf(more, sizeof(more), " (and %lu more since the last line)",
			 a->unlogged);
	log_warn("%s: accept: %s%s%s", a->name, strerror(err),
		 paused ? "; pausing accepts" : "", more);
	a->logged = now;
	a->unlogged = 0;
}

/* Failures of one connection only (accept(2), "Error handling"): go on
 * with the next one. */
static int connection_error(int err)
{
	switch (err) {
	case ECONNABORTED: case EPROTO: case EPERM: case ENETDOWN:
	case ENOPROTOOPT: case EHOSTDOWN: case ENONET: case EHOSTUNREACH:
	case EOPNOTSUPP: case ENETUNREACH:
		return 1;
	default:
		return 0;
	}
}

static void pause_accepting(acceptor_t *a)
{
	ev_io_stop(a->loop, &a->io);
	ev_timer_set(&a->resume, PAUSE_SECONDS, 0.);
	ev_timer_start(a->loop, &a->resume);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	acceptor_t *a = w->data;

	(void)loop;
	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage addr;
		socklen_t addrlen = sizeof(addr);
		int fd = accept4(a->fd, (struct sockaddr *)&addr, &addrlen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			a->fn(a->arg, fd, &addr, addrlen);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR)
			continue;
		if (connection_error(errno)) {
			log_failure(a, errno, 0);
			continue;
		}
		/* EMFILE, ENFILE, ENOBUFS, ENOMEM, or worse: wait. */
		log_failure(a, errno, 1);
		pause_accepting(a);
		return;
	}
}

static void on_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
	acceptor_t *a = w->data;

	(void)revents;
	ev_io_start(loop, &a->io);
}

acceptor_t *acceptor_create(struct ev_loop *loop, int fd, const char *name,
			    acceptor_fn fn, void *arg)
{
	acceptor_t *a = xcalloc(1, sizeof(*a));

	a->loop = loop;
	a->fd = fd;
	a->fn = fn;
	a->arg = arg;
	snprintf(a->name, sizeof(a->name), "%s", name);
	ev_io_init(&a->io, on_accept, fd, EV_READ);
	a->io.data = a;
	ev_init(&a->resume, on_resume);
	a->resume.data = a;
	ev_io_start(loop, &a->io);
	return a;
}

void acceptor_kick(acceptor_t *a)
{
	if (!a || !ev_is_active(&a->resume))
		return;
	ev_timer_stop(a->loop, &a->resume);
	ev_io_start(a->loop, &a->io);
}

void acceptor_destroy(acceptor_t *a)
{
	if (!a)
		return;
	ev_io_stop(a->loop, &a->io);
	ev_timer_stop(a->loop, &a->resume);
	free(a);
}
