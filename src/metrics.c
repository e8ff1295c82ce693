#include "config.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dotstub/acceptor.h"
#include "dotstub/acl.h"
#include "dotstub/config.h"
#include "dotstub/log.h"
#include "dotstub/metrics.h"
#include "dotstub/netutil.h"
#include "dotstub/xmalloc.h"

/* libmicrohttpd runs inside dotstub's main loop (external polling, its
 * epoll descriptor watched by libev), not in a thread of its own: the
 * page reads the first worker's counters, which live on this loop, with
 * no lock and no copy; and no thread stack counts against the memory
 * budget. A scrape costs the loop the render (tens of microseconds); an
 * idle or slow client costs it nothing, MHD only runs when a socket of
 * its own is ready or its timeout is due.
 *
 * Connections come from our acceptor (allow list, EMFILE pauses), then go
 * to MHD with MHD_add_connection. A client holds a slot at most
 * CLIENT_LIFETIME seconds, and MHD closes one idle for IDLE_TIMEOUT. When
 * every slot is taken, a new connection pushes out the oldest one that has
 * not sent a whole request yet (shutdown(), which MHD then sees as the
 * client's close): silent or slow-drip clients cannot keep a scrape out.
 * Only when every slot holds a request being answered is the new one
 * closed. */
#define IDLE_TIMEOUT 5          /* seconds without a byte (MHD's unit) */
#define CLIENT_LIFETIME 10.0    /* seconds a connection may live */
#define MEMORY_PER_CONNECTION 8192  /* request headers and buffers */

typedef struct client {
	TAILQ_ENTRY(client) link;   /* oldest first */
	int fd;
	ev_tstamp accepted;
	int asked;                  /* a whole request came in */
	int pushed_out;             /* shut down by us; MHD closes it next */
} client_t;

struct metrics {
	struct ev_loop *loop;
	int fd;
	acceptor_t *acceptor;
	struct MHD_Daemon *mhd;
	ev_io mhd_io;               /* MHD's epoll descriptor */
	ev_timer mhd_timer;         /* MHD's next timeout */
	ev_timer sweep;             /* CLIENT_LIFETIME */
	metrics_render_fn render;
	void *arg;
	TAILQ_HEAD(, client) clients;
	size_t nclients;            /* not pushed out */
	client_t *adding;           /* for the STARTED notification */
	const acl_t *allow;         /* the DNS clients' list; NULL: loopback */
};

static void run_mhd(metrics_t *m)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(m->mhd);
	ev_timer_stop(m->loop, &m->mhd_timer);
	if (MHD_get_timeout(m->mhd, &ms) == MHD_YES) {
		ev_timer_set(&m->mhd_timer, ms / 1000.0, 0.);
		ev_timer_start(m->loop, &m->mhd_timer);
	}
}

static void on_mhd_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	run_mhd(w->data);
}

static void on_mhd_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	run_mhd(w->data);
}

static void push_out(metrics_t *m, client_t *c, const char *why)
{
	log_debug("metrics: connection %d closed: %s", c->fd, why);
	c->pushed_out = 1;
	m->nclients--;
	shutdown(c->fd, SHUT_RDWR);
}

static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	metrics_t *m = w->data;
	client_t *c;

	(void)revents;
	TAILQ_FOREACH(c, &m->clients, link)
		if (!c->pushed_out && ev_now(loop) - c->accepted >= CLIENT_LIFETIME)
			push_out(m, c, "lifetime over");
	if (TAILQ_EMPTY(&m->clients))
		ev_timer_stop(loop, w);
	run_mhd(m);
}

/* MHD tells when a connection starts (we are inside MHD_add_connection)
 * and when it is gone. */
static void on_connection(void *cls, struct MHD_Connection *conn,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	metrics_t *m = cls;
	client_t *c;

	(void)conn;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = m->adding;
		m->adding = NULL;
		return;
	}
	c = *socket_context;
	if (!c)
		return;
	TAILQ_REMOVE(&m->clients, c, link);
	if (!c->pushed_out)
		m->nclients--;
	free(c);
	acceptor_kick(m->acceptor);   /* a descriptor is free again */
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
			     char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_len, void **req_cls)
{
	metrics_t *m = cls;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	char *body = NULL;
	size_t len = 0;
	FILE *f;

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)req_cls;
	if (ci && ci->socket_context)
		((client_t *)ci->socket_context)->asked = 1;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			     xstrdup("only GET and HEAD\n"), 18);
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, xstrdup("not found: try /metrics\n"), 24);
	f = open_memstream(&body, &len);
	if (!f)
		return MHD_NO;
	m->render(m->arg, f);
	fclose(f);
	return reply(conn, MHD_HTTP_OK, body, len);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("metrics: %s", line);
}

/* Room for a new client: a free slot, or the oldest that has not asked
 * anything yet pushed out. 0 when every slot is answering a request. */
static int make_room(metrics_t *m)
{
	client_t *c;

	if (m->nclients < METRICS_MAX_CLIENTS)
		return 1;
	TAILQ_FOREACH(c, &m->clients, link)
		if (!c->pushed_out && !c->asked) {
			push_out(m, c, "pushed out by a newer one");
			return 1;
		}
	return 0;
}

/* A connection gets a slot if its source may ask DNS questions (the
 * counters tell what the clients do) and there is room. */
static int admit(metrics_t *m, const struct sockaddr_storage *addr)
{
	char peer[64];

	if (!acl_allows(m->allow, addr)) {
		net_format(addr, peer, sizeof(peer));
		log_debug("metrics: client %s closed: not in the allow list", peer);
		return 0;
	}
	return make_room(m);
}

static void on_accept(void *arg, int fd, const struct sockaddr_storage *addr,
		      socklen_t addrlen)
{
	metrics_t *m = arg;
	client_t *c;

	if (!admit(m, addr)) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->accepted = ev_now(m->loop);
	TAILQ_INSERT_TAIL(&m->clients, c, link);
	m->nclients++;
	m->adding = c;
	/* On failure MHD has closed fd and sent no STARTED notification. */
	if (MHD_add_connection(m->mhd, fd, (const struct sockaddr *)addr,
			       addrlen) != MHD_YES) {
		if (m->adding == c) {
			TAILQ_REMOVE(&m->clients, c, link);
			m->nclients--;
			free(c);
		}
		m->adding = NULL;
	}
	if (!ev_is_active(&m->sweep))
		ev_timer_again(m->loop, &m->sweep);
	run_mhd(m);
}

static struct MHD_Daemon *start_mhd(metrics_t *m)
{
	/* MHD's own limit stays above ours: pushed-out connections hold a
	 * slot there until MHD has seen them close. */
	return MHD_start_daemon(
		MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, m,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)(4 * METRICS_MAX_CLIENTS),
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_PER_CONNECTION,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, m,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, m,
		MHD_OPTION_END);
}

static int listen_on(const char *addr, char *err, size_t errlen)
{
	config_listen_t l;
	int fd;

	memset(&l, 0, sizeof(l));
	if (config_parse_addr(addr, 0, &l.addr, &l.addrlen) < 0) {
		snprintf(err, errlen, "metrics: invalid address '%s'", addr);
		return -1;
	}
	snprintf(l.text, sizeof(l.text), "%s", addr);
	fd = net_bind(&l, SOCK_STREAM, 0, err, errlen);
	if (fd >= 0 && listen(fd, 64) < 0) {
		snprintf(err, errlen, "metrics %s: listen: %s", addr, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

metrics_t *metrics_create(struct ev_loop *loop, const char *addr,
			  const acl_t *allow, metrics_render_fn render,
			  void *arg, char *err, size_t errlen)
{
	char name[CONFIG_SPEC_MAX + 16];
	const union MHD_DaemonInfo *info;
	metrics_t *m;
	int fd = listen_on(addr, err, errlen);

	if (fd < 0)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	m->loop = loop;
	m->fd = fd;
	m->allow = allow;
	m->render = render;
	m->arg = arg;
	TAILQ_INIT(&m->clients);
	m->mhd = start_mhd(m);
	info = m->mhd ? MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info) {
		snprintf(err, errlen, "metrics %s: libmicrohttpd did not start", addr);
		metrics_destroy(m);
		return NULL;
	}
	ev_io_init(&m->mhd_io, on_mhd_io, info->epoll_fd, EV_READ);
	m->mhd_io.data = m;
	ev_io_start(loop, &m->mhd_io);
	ev_init(&m->mhd_timer, on_mhd_timer);
	m->mhd_timer.data = m;
	ev_init(&m->sweep, on_sweep);
	m->sweep.repeat = 1.0;
	m->sweep.data = m;
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
	m->acceptor = NULL;   /* MHD's CLOSED notifications kick it */
	ev_io_stop(m->loop, &m->mhd_io);
	ev_timer_stop(m->loop, &m->mhd_timer);
	ev_timer_stop(m->loop, &m->sweep);
	/* Closes every connection, each with its CLOSED notification. */
	if (m->mhd)
		MHD_stop_daemon(m->mhd);
	while (!TAILQ_EMPTY(&m->clients)) {
		client_t *c = TAILQ_FIRST(&m->clients);
		TAILQ_REMOVE(&m->clients, c, link);
		free(c);
	}
	close(m->fd);
	free(m);
}
