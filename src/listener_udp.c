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
/* Datagrams read (one recvmmsg) per wake-up, so one busy socket cannot
 * starve the rest; and answers sent per sendmmsg. */
#define UDP_BATCH 32
/* Room for one query: a question, an OPT and its options fit many times
 * over. A longer datagram is no query we can answer; it is dropped. */
#define UDP_QUERY_MAX 4096
/* Answers of one loop pass wait here for one sendmmsg; any one answer
 * (at most 65535 bytes) fits an empty arena. */
#define UDP_ARENA (128 << 10)

struct listener_udp {
	struct ev_loop *loop;
	int fd;
	ev_io io;
	ev_prepare flush;      /* sends the pass's answers before sleeping */
	query_env_t *env;
	query_client_t client;
	char text[CONFIG_SPEC_MAX];
	struct mmsghdr in[UDP_BATCH];
	struct iovec in_iov[UDP_BATCH];
	struct sockaddr_storage in_addr[UDP_BATCH];
	uint8_t *in_buf;       /* UDP_BATCH slots of UDP_QUERY_MAX */
	struct mmsghdr out[UDP_BATCH];
	struct iovec out_iov[UDP_BATCH];
	struct sockaddr_storage out_addr[UDP_BATCH];
	unsigned nout;
	size_t arena_used;
	uint8_t *arena;
};

static void log_send_error(listener_udp_t *l, unsigned i)
{
	char peer[64];

	net_format(&l->out_addr[i], peer, sizeof(peer));
	log_debug("client %s: udp send: %s", peer, strerror(errno));
}

/* Send every queued answer; a datagram the kernel refuses is skipped
 * (logged), the rest still go. */
static void flush_answers(listener_udp_t *l)
{
	unsigned i = 0;

	while (i < l->nout) {
		int n = sendmmsg(l->fd, l->out + i, l->nout - i, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_send_error(l, i);
			i++;
			continue;
		}
		i += (unsigned)n;
	}
	l->nout = 0;
	l->arena_used = 0;
}

static void udp_reply(void *owner, const struct sockaddr_storage *addr,
		      socklen_t addrlen, const uint8_t *msg, size_t len)
{
	listener_udp_t *l = owner;
	unsigned i;

	if (l->nout == UDP_BATCH || UDP_ARENA - l->arena_used < len)
		flush_answers(l);
	i = l->nout++;
	memcpy(l->arena + l->arena_used, msg, len);
	memcpy(&l->out_addr[i], addr, addrlen);
	l->out_iov[i].iov_base = l->arena + l->arena_used;
	l->out_iov[i].iov_len = len;
	l->out[i].msg_hdr.msg_namelen = addrlen;
	l->arena_used += len;
}

static void on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
	listener_udp_t *l = w->data;

	(void)loop;
	(void)revents;
	if (l->nout)
		flush_answers(l);
}

static void arm_receive(listener_udp_t *l)
{
	for (unsigned i = 0; i < UDP_BATCH; i++) {
		l->in[i].msg_hdr.msg_namelen = sizeof(l->in_addr[i]);
		l->in[i].msg_hdr.msg_flags = 0;
	}
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	listener_udp_t *l = w->data;
	int n;

	(void)loop;
	(void)revents;
	arm_receive(l);
	n = recvmmsg(l->fd, l->in, UDP_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			log_debug("listener %s: udp receive: %s", l->text,
				  strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		const struct msghdr *h = &l->in[i].msg_hdr;
		if (h->msg_flags & MSG_TRUNC) {
			query_drop(l->env);
			continue;
		}
		query_submit(l->env, l->in_iov[i].iov_base, l->in[i].msg_len,
			     &l->client, &l->in_addr[i], h->msg_namelen);
	}
}

static void size_buffer(int fd)
{
	int size = UDP_RCVBUF;

	/* FORCE passes rmem_max when we are root; else take what we get. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

/* The message headers point at their slots once and for all. */
static void init_headers(listener_udp_t *l)
{
	for (unsigned i = 0; i < UDP_BATCH; i++) {
		l->in_iov[i].iov_base = l->in_buf + (size_t)i * UDP_QUERY_MAX;
		l->in_iov[i].iov_len = UDP_QUERY_MAX;
		l->in[i].msg_hdr.msg_name = &l->in_addr[i];
		l->in[i].msg_hdr.msg_iov = &l->in_iov[i];
		l->in[i].msg_hdr.msg_iovlen = 1;
		l->out[i].msg_hdr.msg_name = &l->out_addr[i];
		l->out[i].msg_hdr.msg_iov = &l->out_iov[i];
		l->out[i].msg_hdr.msg_iovlen = 1;
	}
}

listener_udp_t *listener_udp_create(struct ev_loop *loop,
				    const config_listen_t *addr, int shared,
				    query_env_t *env, char *err, size_t errlen)
{
	int fd = net_bind(addr, SOCK_DGRAM, shared, err, errlen);
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
	l->in_buf = xmalloc((size_t)UDP_BATCH * UDP_QUERY_MAX);
	l->arena = xmalloc(UDP_ARENA);
	init_headers(l);
	snprintf(l->text, sizeof(l->text), "%s", addr->text);
	ev_io_init(&l->io, on_readable, fd, EV_READ);
	l->io.data = l;
	ev_io_start(loop, &l->io);
	ev_prepare_init(&l->flush, on_flush);
	l->flush.data = l;
	ev_prepare_start(loop, &l->flush);
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
	ev_prepare_stop(l->loop, &l->flush);
	if (l->nout)
		flush_answers(l);
	close(l->fd);
	free(l->in_buf);
	free(l->arena);
	free(l);
}
