#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dotstub/acceptor.h"
#include "dotstub/acl.h"
#include "dotstub/config.h"
#include "dotstub/log.h"
#include "dotstub/metrics.h"
#include "dotstub/netutil.h"
#include "dotstub/xmalloc.h"

#define REQUEST_MAX 4096
#define CLIENT_TIMEOUT 5.0   /* seconds to send a request */
#define MAX_CLIENTS METRICS_MAX_CLIENTS

typedef struct client {
	struct metrics *m;
	struct client *next;
	int fd;
	ev_io io;
	ev_timer timer;
	char req[REQUEST_MAX];
	size_t reqlen;
	char *resp;
	size_t resplen, sent;
} client_t;

struct metrics {
	struct ev_loop *loop;
	int fd;
	acceptor_t *acceptor;
	metrics_render_fn render;
	void *arg;
	client_t *clients;
	size_t nclients;
	const acl_t *allow;   /* the DNS clients' list; NULL: loopback */
};

static void client_close(client_t *c)
{
	metrics_t *m = c->m;

	for (client_t **p = &m->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	m->nclients--;
	ev_io_stop(m->loop, &c->io);
	ev_timer_stop(m->loop, &c->timer);
	close(c->fd);
	free(c->resp);
	free(c);
	acceptor_kick(m->acceptor);   /* a descriptor is free again */
}

/* Build the whole response once the request line is known. */
static void respond(client_t *c)
{
	FILE *f = open_memstream(&c->resp, &c->resplen);
	char *body = NULL;
	size_t bodylen = 0;
	const char *status = "404 Not Found";

	if (strncmp(c->req, "GET /metrics ", 13) == 0 ||
	    strncmp(c->req, "GET /metrics?", 13) == 0) {
		FILE *b = open_memstream(&body, &bodylen);
		c->m->render(c->m->arg, b);
		fclose(b);
		status = "200 OK";
	} else if (strncmp(c->req, "GET ", 4) != 0) {
		status = "400 Bad Request";
	}
	fprintf(f, "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
		"Content-Length: %zu\r\nConnection: close\r\n\r\n",
		status, body ? bodylen : 0);
	if (body)
		fwrite(body, 1, bodylen, f);
	fclose(f);
	free(body);
	ev_io_stop(c->m->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_io_start(c->m->loop, &c->io);
}

static void on_client(struct ev_loop *loop, ev_io *w, int revents)
{
	client_t *c = w->data;
	ssize_t n;

	(void)loop;
	if (revents & EV_WRITE) {
		n = send(c->fd, c->resp + c->sent, c->resplen - c->sent, MSG_NOSIGNAL);
		if (n > 0)
			c->sent += (size_t)n;
		if ((n < 0 && errno != EAGAIN && errno != EINTR) || c->sent == c->resplen)
			client_close(c);
		return;
	}
	n = recv(c->fd, c->req + c->reqlen, sizeof(c->req) - 1 - c->reqlen, 0);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			client_close(c);
		return;
	}
	c->reqlen += (size_t)n;
	c->req[c->reqlen] = '\0';
	if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n") ||
	    c->reqlen == sizeof(c->req) - 1)
		respond(c);
}

static void on_client_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	client_close(w->data);
}

/* A connection gets a slot if there is one and its source may ask DNS
 * questions: the counters tell what the clients do. */
static int admit(const metrics_t *m, const struct sockaddr_storage *addr)
{
	char peer[64];

	if (m->nclients >= MAX_CLIENTS)
		return 0;
	if (acl_allows(m->allow, addr))
		return 1;
	net_format(addr, peer, sizeof(peer));
	log_debug("metrics: client %s closed: not in the allow list", peer);
	return 0;
}

static void on_accept(void *arg, int fd, const struct sockaddr_storage *addr,
		      socklen_t addrlen)
{
	metrics_t *m = arg;
	client_t *c;

	(void)addrlen;
	if (!admit(m, addr)) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->m = m;
	c->fd = fd;
	c->next = m->clients;
	m->clients = c;
	m->nclients++;
	ev_io_init(&c->io, on_client, fd, EV_READ);
	c->io.data = c;
	ev_io_start(m->loop, &c->io);
	ev_timer_init(&c->timer, on_client_timeout, CLIENT_TIMEOUT, 0.);
	c->timer.data = c;
	ev_timer_start(m->loop, &c->timer);
}

metrics_t *metrics_create(struct ev_loop *loop, const char *addr,
			  const acl_t *allow, metrics_render_fn render,
			  void *arg, char *err, size_t errlen)
{
	config_listen_t l;
	char name[CONFIG_SPEC_MAX + 16];
	metrics_t *m;
	int fd;

	memset(&l, 0, sizeof(l));
	if (config_parse_addr(addr, 0, &l.addr, &l.addrlen) < 0) {
		snprintf(err, errlen, "metrics: invalid address '%s'", addr);
		return NULL;
	}
	snprintf(l.text, sizeof(l.text), "%s", addr);
	fd = net_bind(&l, SOCK_STREAM, 0, err, errlen);
	if (fd < 0)
		return NULL;
	if (listen(fd, 16) < 0) {
		snprintf(err, errlen, "metrics %s: listen: %s", addr, strerror(errno));
		close(fd);
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	m->loop = loop;
	m->fd = fd;
	m->allow = allow;
	m->render = render;
	m->arg = arg;
	snprintf(name, sizeof(name), "metrics %s", addr);
	m->acceptor = acceptor_create(loop, fd, name, on_accept, m);
	return m;
}

void metrics_set_allow(metrics_t *m, const acl_t *allow)
{
	if (m)
		m->allow = allow;
}

void metrics_destroy(metrics_t *m)
{
	if (!m)
		return;
	acceptor_destroy(m->acceptor);
	m->acceptor = NULL;
	while (m->clients)
		client_close(m->clients);
	close(m->fd);
	free(m);
}
