#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dotstub/acceptor.h"
#include "dotstub/frame.h"
#include "dotstub/listener_tcp.h"
#include "dotstub/log.h"
#include "dotstub/netutil.h"
#include "dotstub/xmalloc.h"

/* A client that does not read its answers must not make us hold more and
 * more of them: past this many answer bytes waiting for it, we take no
 * more of its queries (RFC 7766 6.2.3 lets a server pause reading) until
 * it reads; one that does not, within tcp-client-timeout, is closed. */
#define TCP_CLIENT_OUT_CAP (64 << 10)
/* Queries of one client waiting for upstream answers, past which we take
 * no more of its frames (the others stay in its input buffer, and reading
 * stops). The answers of these are still kept when the client stops
 * reading, so this bounds what it holds: the cap plus 32 answers of at
 * most 64 KiB, ~2.1 MiB. (256 let 1,500 pipelined queries for a 50 KB
 * answer take 73 MiB; PowerDNS Recursor allows 10 per connection, the
 * bench's dnsperf -c 20 -q 500 keeps ~25 on each.) */
#define TCP_CLIENT_MAX_OPEN 32

typedef struct tcp_client {
	listener_tcp_t *l;
	TAILQ_ENTRY(tcp_client) link;    /* in l->clients, idle longest first */
	SLIST_ENTRY(tcp_client) pending;  /* answers waiting for the pass end */
	int unsent;
	int fd;                 /* -1 once closed */
	ev_io io;
	int events;
	ev_timer idle;
	frame_reader_t *rd;
	frame_writer_t *wr;
	unsigned open;          /* holds: queries, unsent answers, a pump */
	unsigned queries;       /* queries waiting for an upstream answer */
	int pumping;            /* in client_pump(): it goes on by itself */
	int eof;                /* the client sent its last query */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char peer[64];
} tcp_client_t;

struct listener_tcp {
	struct ev_loop *loop;
	const config_t *cfg;
	query_env_t *env;
	int fd;                 /* -1 once stopped */
	acceptor_t *acceptor;
	TAILQ_HEAD(tcp_clients, tcp_client) clients;   /* least recently active first */
	size_t nclients;
	SLIST_HEAD(, tcp_client) pending;  /* clients with answers to send */
	ev_prepare flush;       /* sends them before the loop sleeps */
	char text[CONFIG_SPEC_MAX];
};

static void client_free(tcp_client_t *c)
{
	frame_reader_destroy(c->rd);
	frame_writer_destroy(c->wr);
	free(c);
}

static void client_close(tcp_client_t *c, const char *why)
{
	listener_tcp_t *l = c->l;

	if (c->fd < 0)
		return;
	log_debug("client %s: tcp closed: %s", c->peer, why);
	ev_io_stop(l->loop, &c->io);
	ev_timer_stop(l->loop, &c->idle);
	close(c->fd);
	c->fd = -1;
	TAILQ_REMOVE(&l->clients, c, link);
	l->nclients--;
	acceptor_kick(l->acceptor);   /* a descriptor is free again */
	/* Queries still open hold it; the last release frees it. */
	if (c->open == 0)
		client_free(c);
}

static size_t client_unsent(const tcp_client_t *c)
{
	const uint8_t *data;

	return frame_writer_data(c->wr, &data);
}

/* Takes no more queries for now: too many open, or too many answers it
 * has not read. */
static int client_paused(const tcp_client_t *c)
{
	return c->queries >= TCP_CLIENT_MAX_OPEN ||
	       client_unsent(c) >= TCP_CLIENT_OUT_CAP;
}

/* A query came: the idle timeout starts again, and the client goes last
 * in the order of idleness. */
static void client_touch(tcp_client_t *c)
{
	listener_tcp_t *l = c->l;

	ev_timer_again(l->loop, &c->idle);
	if (TAILQ_LAST(&l->clients, tcp_clients) != c) {
		TAILQ_REMOVE(&l->clients, c, link);
		TAILQ_INSERT_TAIL(&l->clients, c, link);
	}
}

static void set_events(tcp_client_t *c)
{
	int ev = 0;

	if (!c->eof && c->l->fd >= 0 && !client_paused(c))
		ev |= EV_READ;
	if (client_unsent(c) > 0)
		ev |= EV_WRITE;
	if (ev == c->events)
		return;
	ev_io_stop(c->l->loop, &c->io);
	c->events = ev;
	if (ev) {
		ev_io_set(&c->io, c->fd, ev);
		ev_io_start(c->l->loop, &c->io);
	}
}

/* Done when the client has sent all it will and has all its answers (its
 * last frames were taken: nothing open and nothing unsent leaves it
 * unpaused, and a pump took them). */
static int client_finished(tcp_client_t *c)
{
	return c->eof && c->open == 0 && client_unsent(c) == 0;
}

static int client_pump(tcp_client_t *c);

/* After anything that may let the client go on: its queries taken up to
 * the limits, closed when done, else its events set. Returns -1 when the
 * client was closed (or freed). */
static int client_update(tcp_client_t *c)
{
	if (c->fd < 0) {
		if (c->open == 0)
			client_free(c);
		return -1;
	}
	if (client_pump(c) < 0)
		return -1;
	if (client_finished(c)) {
		client_close(c, "done");
		return -1;
	}
	set_events(c);
	return 0;
}

/* Returns -1 when the client was closed. */
static int client_flush(tcp_client_t *c)
{
	const uint8_t *data;
	size_t len;

	while ((len = frame_writer_data(c->wr, &data)) > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			client_close(c, strerror(errno));
			return -1;
		}
		frame_writer_consume(c->wr, (size_t)n);
	}
	/* Below the cap again: its waiting frames may go on. */
	return client_update(c);
}

static void tcp_hold(void *owner)
{
	tcp_client_t *c = owner;

	c->queries++;
	c->open++;
}

/* Answers wait for the end of the loop pass, so that the many answers of
 * one upstream record leave in one send; the wait holds the client. Past
 * the output cap answers are still kept (the client is paused, and takes
 * no more queries): no answer to an open query is lost. */
static void tcp_reply(void *owner, const struct sockaddr_storage *addr,
		      socklen_t addrlen, const uint8_t *msg, size_t len)
{
	tcp_client_t *c = owner;

	(void)addr;
	(void)addrlen;
	if (c->fd < 0)
		return;  /* the client left before its answer */
	frame_writer_put(c->wr, msg, len);
	if (c->unsent)
		return;
	c->unsent = 1;
	c->open++;
	SLIST_INSERT_HEAD(&c->l->pending, c, pending);
}

/* The query module is done with one of the client's queries. */
static void tcp_release(void *owner)
{
	tcp_client_t *c = owner;

	c->queries--;
	c->open--;
	client_update(c);
}

/* Each client's answers of the pass, then its hold released. */
static void send_unsent(listener_tcp_t *l)
{
	tcp_client_t *c;

	while ((c = SLIST_FIRST(&l->pending)) != NULL) {
		SLIST_REMOVE_HEAD(&l->pending, pending);
		c->unsent = 0;
		c->open--;
		if (c->fd >= 0)
			client_flush(c);
		else if (c->open == 0)
			client_free(c);
	}
}

static void on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	send_unsent(w->data);
}

static const query_client_t TCP_CLIENT_OPS = {
	.reply = tcp_reply,
	.hold = tcp_hold,
	.release = tcp_release,
	.udp = 0,
};

/* Hand complete queries to the query module, one frame at a time while
 * the client is not paused; the rest wait in its input buffer (which does
 * not grow: reading stops meanwhile). A query may be answered at once
 * (cache, FORMERR) or fail at once, and so call back into the client:
 * hold it meanwhile; a pump under way is not started again, it goes on.
 * Returns -1 when the client was closed. */
static int client_pump(tcp_client_t *c)
{
	query_client_t ops = TCP_CLIENT_OPS;
	const uint8_t *msg;
	size_t len;
	int closed;

	if (c->pumping)
		return 0;
	ops.owner = c;
	c->pumping = 1;
	c->open++;
	while (c->fd >= 0 && c->l->fd >= 0 && !client_paused(c) &&
	       frame_reader_next(c->rd, &msg, &len)) {
		if (len == 0) {
			client_close(c, "zero-length message");
			break;
		}
		query_submit(c->l->env, msg, len, &ops, &c->addr, c->addrlen);
	}
	c->pumping = 0;
	c->open--;
	closed = c->fd < 0;
	if (closed && c->open == 0)
		client_free(c);
	return closed ? -1 : 0;
}

static void client_read(tcp_client_t *c)
{
	size_t avail;
	uint8_t *space = frame_reader_space(c->rd, &avail);
	ssize_t n = recv(c->fd, space, avail, MSG_DONTWAIT);

	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			client_close(c, strerror(errno));
		return;
	}
	if (n == 0) {
		c->eof = 1;
		if (frame_reader_pending(c->rd) > 0)
			log_debug("client %s: tcp closed mid-message", c->peer);
		if (client_finished(c))
			client_close(c, "closed by client");
		else
			set_events(c);
		return;
	}
	frame_reader_commit(c->rd, (size_t)n);
	client_touch(c);
	client_update(c);
}

static void on_client_io(struct ev_loop *loop, ev_io *w, int revents)
{
	tcp_client_t *c = w->data;

	(void)loop;
	if ((revents & EV_WRITE) && client_flush(c) < 0)
		return;
	/* The flush may have paused it (answers from the cache): then no read,
	 * or its input buffer would grow. */
	if ((revents & EV_READ) && (c->events & EV_READ))
		client_read(c);
}

static void on_client_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
	tcp_client_t *c = w->data;

	(void)revents;
	if (client_unsent(c) > 0 && !c->unsent)
		client_close(c, "answers not read within tcp-client-timeout");
	else if (c->open > 0)
		ev_timer_again(loop, w);  /* waiting for upstream answers */
	else
		client_close(c, "idle");
}

/* RFC 7766 6.2.3: with the table full, the client idle longest makes
 * room, so that a new one is served now and not when idle ones time out.
 * Never one with a query open or answers unsent. NULL: all are busy. */
static tcp_client_t *idle_longest(listener_tcp_t *l)
{
	tcp_client_t *c;

	TAILQ_FOREACH(c, &l->clients, link)
		if (c->open == 0 && client_unsent(c) == 0)
			return c;
	return NULL;
}

static void client_add(listener_tcp_t *l, int fd,
		       const struct sockaddr_storage *addr, socklen_t addrlen)
{
	tcp_client_t *c = xcalloc(1, sizeof(*c));
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->l = l;
	c->fd = fd;
	c->addr = *addr;
	c->addrlen = addrlen;
	net_format(addr, c->peer, sizeof(c->peer));
	c->rd = frame_reader_create();
	c->wr = frame_writer_create();
	ev_io_init(&c->io, on_client_io, fd, 0);
	c->io.data = c;
	ev_init(&c->idle, on_client_idle);
	c->idle.repeat = l->cfg->tcp_client_timeout_ms / 1000.0;
	c->idle.data = c;
	ev_timer_again(l->loop, &c->idle);
	TAILQ_INSERT_TAIL(&l->clients, c, link);
	l->nclients++;
	set_events(c);
}

/* A new client; with the table full it takes the place of the one idle
 * longest, or is refused when all are busy. */
static void on_accept(void *arg, int fd, const struct sockaddr_storage *addr,
		      socklen_t addrlen)
{
	listener_tcp_t *l = arg;
	tcp_client_t *idle;
	char why[64];

	if (l->nclients >= l->cfg->max_tcp_clients) {
		idle = idle_longest(l);
		if (!idle) {
			char peer[64];
			net_format(addr, peer, sizeof(peer));
			log_debug("client %s: refused, %zu tcp clients already, all busy",
				  peer, l->nclients);
			close(fd);
			return;
		}
		snprintf(why, sizeof(why), "idle longest, %zu tcp clients",
			 l->nclients);
		client_close(idle, why);
	}
	client_add(l, fd, addr, addrlen);
}

listener_tcp_t *listener_tcp_create(struct ev_loop *loop,
				    const config_listen_t *addr,
				    int shared, const config_t *cfg,
				    query_env_t *env, char *err, size_t errlen)
{
	int fd = net_bind(addr, SOCK_STREAM, shared, err, errlen);
	char name[CONFIG_SPEC_MAX + 16];
	listener_tcp_t *l;

	if (fd < 0)
		return NULL;
	if (listen(fd, 128) < 0) {
		snprintf(err, errlen, "%s (tcp): listen: %s", addr->text,
			 strerror(errno));
		close(fd);
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	l->loop = loop;
	l->cfg = cfg;
	l->env = env;
	l->fd = fd;
	snprintf(l->text, sizeof(l->text), "%s", addr->text);
	TAILQ_INIT(&l->clients);
	SLIST_INIT(&l->pending);
	snprintf(name, sizeof(name), "listener %s", addr->text);
	l->acceptor = acceptor_create(loop, fd, name, on_accept, l);
	ev_prepare_init(&l->flush, on_flush);
	l->flush.data = l;
	ev_prepare_start(loop, &l->flush);
	return l;
}

void listener_tcp_stop(listener_tcp_t *l)
{
	tcp_client_t *c, *next;

	acceptor_destroy(l->acceptor);
	l->acceptor = NULL;
	close(l->fd);
	l->fd = -1;
	for (c = TAILQ_FIRST(&l->clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		c->eof = 1;   /* read no more; finish what is open */
		if (client_finished(c))
			client_close(c, "shutdown");
		else
			set_events(c);
	}
}

void listener_tcp_destroy(listener_tcp_t *l)
{
	if (!l)
		return;
	while (!TAILQ_EMPTY(&l->clients))
		client_close(TAILQ_FIRST(&l->clients), "shutdown");
	send_unsent(l);   /* frees the closed clients it held */
	ev_prepare_stop(l->loop, &l->flush);
	acceptor_destroy(l->acceptor);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}
