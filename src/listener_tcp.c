#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dotstub/acceptor.h"
#include "dotstub/frame.h"
#include "dotstub/listener_tcp.h"
#include "dotstub/log.h"
#include "dotstub/netutil.h"
#include "dotstub/xmalloc.h"

/* Queries one client may have open before we stop reading from it. */
#define TCP_CLIENT_MAX_OPEN 256

typedef struct tcp_client {
	listener_tcp_t *l;
	struct tcp_client *prev, *next;
	struct tcp_client *next_unsent;  /* answers waiting for the pass end */
	int unsent;
	int fd;                 /* -1 once closed */
	ev_io io;
	int events;
	ev_timer idle;
	frame_reader_t *rd;
	frame_writer_t *wr;
	unsigned open;          /* queries holding this client */
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
	tcp_client_t *clients;
	size_t nclients;
	tcp_client_t *unsent;   /* clients with answers to send */
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
	if (c->prev)
		c->prev->next = c->next;
	else
		l->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	l->nclients--;
	acceptor_kick(l->acceptor);   /* a descriptor is free again */
	/* Queries still open hold it; the last release frees it. */
	if (c->open == 0)
		client_free(c);
}

static void set_events(tcp_client_t *c)
{
	const uint8_t *data;
	int ev = 0;

	if (!c->eof && c->open < TCP_CLIENT_MAX_OPEN && c->l->fd >= 0)
		ev |= EV_READ;
	if (frame_writer_data(c->wr, &data) > 0)
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

/* Done when the client has sent all it will and has all its answers. */
static int client_finished(tcp_client_t *c)
{
	const uint8_t *data;

	return c->eof && c->open == 0 && frame_writer_data(c->wr, &data) == 0;
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
	if (client_finished(c)) {
		client_close(c, "done");
		return -1;
	}
	set_events(c);
	return 0;
}

static void tcp_hold(void *owner)
{
	((tcp_client_t *)owner)->open++;
}

/* Answers wait for the end of the loop pass, so that the many answers of
 * one upstream record leave in one send; the wait holds the client. */
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
	tcp_hold(c);
	c->next_unsent = c->l->unsent;
	c->l->unsent = c;
}

static void tcp_release(void *owner)
{
	tcp_client_t *c = owner;

	c->open--;
	if (c->fd < 0) {
		if (c->open == 0)
			client_free(c);
		return;
	}
	if (client_finished(c))
		client_close(c, "done");
	else
		set_events(c);
}

/* Each client's answers of the pass, then its hold released. */
static void send_unsent(listener_tcp_t *l)
{
	while (l->unsent) {
		tcp_client_t *c = l->unsent;
		l->unsent = c->next_unsent;
		c->unsent = 0;
		if (c->fd >= 0)
			client_flush(c);
		tcp_release(c);
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

/* Hand every complete query to the query module. A query may be answered
 * at once (FORMERR) and so call back into the client: hold it meanwhile.
 * Returns -1 when the client was closed. */
static int client_dispatch(tcp_client_t *c)
{
	query_client_t ops = TCP_CLIENT_OPS;
	const uint8_t *msg;
	size_t len;
	int closed;

	ops.owner = c;
	c->open++;
	while (c->fd >= 0 && frame_reader_next(c->rd, &msg, &len)) {
		if (len == 0) {
			client_close(c, "zero-length message");
			break;
		}
		query_submit(c->l->env, msg, len, &ops, &c->addr, c->addrlen);
	}
	closed = c->fd < 0;
	tcp_release(c);
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
	ev_timer_again(c->l->loop, &c->idle);
	if (client_dispatch(c) == 0)
		set_events(c);
}

static void on_client_io(struct ev_loop *loop, ev_io *w, int revents)
{
	tcp_client_t *c = w->data;

	(void)loop;
	if ((revents & EV_WRITE) && client_flush(c) < 0)
		return;
	if (revents & EV_READ)
		client_read(c);
}

static void on_client_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
	tcp_client_t *c = w->data;

	(void)revents;
	if (c->open > 0)
		ev_timer_again(loop, w);  /* waiting for upstream answers */
	else
		client_close(c, "idle");
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
	c->next = l->clients;
	if (l->clients)
		l->clients->prev = c;
	l->clients = c;
	l->nclients++;
	set_events(c);
}

static void on_accept(void *arg, int fd, const struct sockaddr_storage *addr,
		      socklen_t addrlen)
{
	listener_tcp_t *l = arg;

	if (l->nclients >= l->cfg->max_tcp_clients) {
		char peer[64];
		net_format(addr, peer, sizeof(peer));
		log_debug("client %s: refused, %zu tcp clients already",
			  peer, l->nclients);
		close(fd);
		return;
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
	snprintf(name, sizeof(name), "listener %s", addr->text);
	l->acceptor = acceptor_create(loop, fd, name, on_accept, l);
	ev_prepare_init(&l->flush, on_flush);
	l->flush.data = l;
	ev_prepare_start(loop, &l->flush);
	return l;
}

void listener_tcp_stop(listener_tcp_t *l)
{
	acceptor_destroy(l->acceptor);
	l->acceptor = NULL;
	close(l->fd);
	l->fd = -1;
	for (tcp_client_t *c = l->clients, *next; c; c = next) {
		next = c->next;
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
	while (l->clients)
		client_close(l->clients, "shutdown");
	send_unsent(l);   /* frees the closed clients it held */
	ev_prepare_stop(l->loop, &l->flush);
	acceptor_destroy(l->acceptor);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}
