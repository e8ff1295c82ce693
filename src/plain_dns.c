#include "config.h"

#include <ares.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#include "dotstub/dnsmsg.h"
#include "dotstub/log.h"
#include "dotstub/plain_dns.h"
#include "dotstub/rand.h"
#include "dotstub/xmalloc.h"

/* Source ports: without ARES_FLAG_STAYOPEN, c-ares 1.18.1 closes a
 * channel's sockets once no query is left, so the next query gets a new
 * socket on a new random ephemeral port (seen with strace: four queries
 * one after the other, four sockets); queries in flight together share one.
 *
 * One round over the group's servers per c-ares query: the query module
 * resends once on failure (a second round), inside its deadline. */
#define PLAIN_TRIES 1
/* "[v6]:port," per server. */
#define SERVER_CSV_MAX (48 + 8 + 1)

typedef struct sock_watch {
	ev_io io;
	plain_channel_t *ch;
	struct sock_watch *next;
} sock_watch_t;

typedef struct pending {
	plain_channel_t *ch;
	dot_req_t *req;   /* NULL: cancelled, or its callback has run */
	int in_send;      /* inside ares_send: a callback now is a refusal */
	int refused;
} pending_t;

struct plain_channel {
	struct ev_loop *loop;
	ares_channel channel;
	sock_watch_t *socks;
	ev_timer timer;
	size_t npending;
	int destroying;
};

static void update_timer(plain_channel_t *ch)
{
	struct timeval tv, *tvp = ares_timeout(ch->channel, NULL, &tv);

	ev_timer_stop(ch->loop, &ch->timer);
	if (!tvp || ch->destroying)
		return;
	ev_timer_set(&ch->timer, tv.tv_sec + tv.tv_usec / 1e6, 0.);
	ev_timer_start(ch->loop, &ch->timer);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	sock_watch_t *s = w->data;
	plain_channel_t *ch = s->ch;
	int fd = w->fd;

	(void)loop;
	/* s may be freed inside: c-ares closes sockets from here. */
	ares_process_fd(ch->channel, revents & EV_READ ? fd : ARES_SOCKET_BAD,
			revents & EV_WRITE ? fd : ARES_SOCKET_BAD);
	update_timer(ch);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	plain_channel_t *ch = w->data;

	(void)loop;
	(void)revents;
	ares_process_fd(ch->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	update_timer(ch);
}

/* c-ares opens, closes and changes interest in a socket. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	plain_channel_t *ch = data;
	sock_watch_t **p = &ch->socks, *s;

	while (*p && (*p)->io.fd != fd)
		p = &(*p)->next;
	s = *p;
	if (!readable && !writable) {
		if (s) {
			ev_io_stop(ch->loop, &s->io);
			*p = s->next;
			free(s);
		}
		return;
	}
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->ch = ch;
		s->next = ch->socks;
		ch->socks = s;
		ev_io_init(&s->io, on_io, fd, 0);
		s->io.data = s;
	}
	ev_io_stop(ch->loop, &s->io);
	ev_io_set(&s->io, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	ev_io_start(ch->loop, &s->io);
}

static int set_servers(plain_channel_t *ch, const config_upstream_t *servers,
		       size_t n, char *err, size_t errlen)
{
	char *csv = xcalloc(n ? n : 1, SERVER_CSV_MAX);
	size_t used = 0;
	int rc;

	for (size_t i = 0; i < n; i++) {
		const config_upstream_t *u = &servers[i];
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)&u->addr;
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&u->addr;
		int v6 = u->addr.ss_family == AF_INET6;
		unsigned port = ntohs(v6 ? in6->sin6_port : in4->sin_port);

		used += (size_t)snprintf(csv + used, n * SERVER_CSV_MAX - used,
					 "%s%s%s%s:%u", i ? "," : "", v6 ? "[" : "",
					 u->ip_text, v6 ? "]" : "", port);
	}
	rc = ares_set_servers_ports_csv(ch->channel, csv);
	if (rc != ARES_SUCCESS)
		snprintf(err, errlen, "plain DNS servers '%s': %s", csv, ares_strerror(rc));
	free(csv);
	return rc == ARES_SUCCESS ? 0 : -1;
}

plain_channel_t *plain_channel_create(struct ev_loop *loop,
				      const config_upstream_t *servers, size_t n,
				      int tcp, unsigned timeout_ms,
				      char *err, size_t errlen)
{
	plain_channel_t *ch = xcalloc(1, sizeof(*ch));
	struct ares_options o;
	int rc;

	memset(&o, 0, sizeof(o));
	ch->loop = loop;
	ev_init(&ch->timer, on_timer);
	ch->timer.data = ch;
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = ch;
	/* Never ARES_FLAG_EDNS (DESIGN.md): the client's OPT goes as it is. */
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | (tcp ? ARES_FLAG_USEVC : 0);
	o.timeout = (int)timeout_ms;
	o.tries = PLAIN_TRIES;
	rc = ares_init_options(&ch->channel, &o,
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS |
			       ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NOROTATE);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(ch);
		return NULL;
	}
	if (set_servers(ch, servers, n, err, errlen) < 0) {
		plain_channel_destroy(ch);
		return NULL;
	}
	return ch;
}

void plain_channel_destroy(plain_channel_t *ch)
{
	if (!ch)
		return;
	ch->destroying = 1;
	ares_destroy(ch->channel);  /* pending: ARES_EDESTRUCTION, freed */
	ev_timer_stop(ch->loop, &ch->timer);
	while (ch->socks) {
		sock_watch_t *s = ch->socks;
		ch->socks = s->next;
		ev_io_stop(ch->loop, &s->io);
		free(s);
	}
	free(ch);
}

/* The pending entry lives until c-ares calls back (always, at the latest
 * from ares_destroy), so a cancel never races a free. */
static void on_done(void *arg, int status, int timeouts, unsigned char *abuf,
		    int alen)
{
	pending_t *p = arg;
	dot_req_t *req = p->req;

	(void)timeouts;
	p->ch->npending--;
	if (p->in_send) {
		p->refused = 1;   /* plain_send reports it and frees p */
		return;
	}
	p->req = NULL;
	if (req && status != ARES_EDESTRUCTION) {
		if (status == ARES_SUCCESS && abuf && alen > 0)
			req->on_answer(req, abuf, (size_t)alen);
		else
			req->on_failed(req, 1, ares_strerror(status));
	}
	free(p);
}

/* Off the wire, unlike DoT's: an off-path spoofer must not predict it,
 * so from the kernel rather than the fast generator. */
static uint16_t random_id(void)
{
	uint16_t id;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
		id = (uint16_t)rand_u32();
	return id;
}

void *plain_send(plain_channel_t *ch, dot_req_t *req, uint8_t *msg, size_t len)
{
	pending_t *p;

	if (ch->npending >= PLAIN_PENDING_MAX || len > DNSMSG_MAX)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->ch = ch;
	p->req = req;
	ch->npending++;
	/* c-ares 1.18.1 keeps the caller's ID: a fresh one, not the client's.
	 * The client's comes back with the answer (dnsmsg_build_client_answer). */
	dnsmsg_set_id(msg, random_id());
	p->in_send = 1;
	ares_send(ch->channel, msg, (int)len, on_done, p);
	p->in_send = 0;
	if (p->refused) {
		free(p);
		return NULL;
	}
	update_timer(ch);
	return p;
}

void plain_cancel(void *token)
{
	if (token)
		((pending_t *)token)->req = NULL;
}

size_t plain_pending(const plain_channel_t *ch)
{
	return ch->npending;
}
