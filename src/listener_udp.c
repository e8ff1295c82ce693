#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dotstub/dnsmsg.h"
#include "dotstub/listener_udp.h"
#include "dotstub/log.h"
#include "dotstub/netutil.h"
#include "dotstub/xmalloc.h"

/* A burst of several hundred queries overflows the default receive
 * buffer; this holds a few thousand. */
#define UDP_RCVBUF (4 << 20)
/* Datagrams read per wake-up, so one busy socket cannot starve the rest. */
#define UDP_BATCH 64

struct listener_udp {
	struct ev_loop *loop;
	int fd;
	ev_io io;
	query_env_t *env;
	query_client_t client;
	char text[CONFIG_SPEC_MAX];
	uint8_t buf[DNSMSG_MAX];
};

static void udp_reply(void *owner, const struct sockaddr_storage *addr,
		      socklen_t addrlen, const uint8_t *msg, size_t len)
{
	listener_udp_t *l = owner;

	if (sendto(l->fd, msg, len, 0, (const struct sockaddr *)addr,
		   addrlen) < 0) {
		char peer[64];
		net_format(addr, peer, sizeof(peer));
		log_debug("client %s: udp send: %s", peer, strerror(errno));
	}
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	listener_udp_t *l = w->data;

	(void)loop;
	(void)revents;
	for (int i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(l->fd, l->buf, sizeof(l->buf), 0,
				     (struct sockaddr *)&from, &fromlen);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_debug("listener %s: udp receive: %s", l->text,
					  strerror(errno));
			return;
		}
		query_submit(l->env, l->buf, (size_t)n, &l->client, &from, fromlen);
	}
}

static void size_buffer(int fd)
{
	int size = UDP_RCVBUF;

	/* FORCE passes rmem_max when we are root; else take what we get. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

listener_udp_t *listener_udp_create(struct ev_loop *loop,
				    const config_listen_t *addr,
				    query_env_t *env, char *err, size_t errlen)
{
	int fd = net_bind(addr, SOCK_DGRAM, err, errlen);
	listener_udp_t *l;

	if (fd < 0)
		return NULL;
	size_buffer(fd);
	l = xcalloc(1, sizeof(*l));
	l->loop = loop;
	l->fd = fd;
	l->env = env;
	l->client.reply = udp_reply;
	l->client.owner = l;
	l->client.udp = 1;
	snprintf(l->text, sizeof(l->text), "%s", addr->text);
	ev_io_init(&l->io, on_readable, fd, EV_READ);
	l->io.data = l;
	ev_io_start(loop, &l->io);
	return l;
}

void listener_udp_stop(listener_udp_t *l)
{
	ev_io_stop(l->loop, &l->io);
}

void listener_udp_destroy(listener_udp_t *l)
{
	if (!l)
		return;
	ev_io_stop(l->loop, &l->io);
	close(l->fd);
	free(l);
}
