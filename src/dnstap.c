#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fstrm.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnstap.pb-c.h"
#include "dotstub/dnstap.h"
#include "dotstub/log.h"
#include "dotstub/xmalloc.h"

/* The content type every dnstap reader expects in the stream's header. */
#define CONTENT_TYPE "protobuf:dnstap.Dnstap"
/* Messages a worker may have queued for the I/O thread. At 30,000
 * queries a second, four messages each, this is about 35 ms of traffic:
 * enough to ride over a write that stalls briefly; with the frames it
 * holds, at most 4 MiB. Must be a power of 2 (libfstrm). */
#define QUEUE_SIZE 4096
/* The I/O thread is woken after this many messages (or after a second):
 * fewer wake-ups, fewer context switches on a busy machine. */
#define NOTIFY_THRESHOLD 256
/* Frames up to this size come from the queue's own pool, not malloc():
 * nearly all do (a padded upstream answer is 468 bytes, plus ~80). A
 * frame malloc'd in the worker and freed in the I/O thread cost 14 % of
 * a loaded dotstub's time in glibc's arena code (perf, udp-miss). */
#define POOL_FRAME 1024
/* Room for everything in a frame but the DNS message, the identity and
 * the version: the field keys, the length varints, two addresses of 16
 * bytes, two ports, two times (varint seconds, fixed32 nanoseconds) and
 * the enums come to about 80 bytes. */
#define FRAME_OVERHEAD 256

/* A pool frame; libfstrm is handed `data`. */
typedef struct frame {
	struct frame *next;
	uint8_t data[POOL_FRAME];
} frame_t;

struct dnstap_queue {
	dnstap_t *tap;
	struct fstrm_iothr_queue *ioq;
	atomic_ulong dropped;      /* written by its worker, read by anyone */
	/* Frames come back from the I/O thread onto `returned` (pushed one by
	 * one); the worker takes the whole list at once into `spare`. One
	 * pusher, one taker that empties the list: no ABA. */
	_Atomic(frame_t *) returned;
	frame_t *spare;
};

struct dnstap {
	struct fstrm_iothr *iothr;
	dnstap_queue_t *queues;
	unsigned nqueues;
	char identity[256];        /* the host name */
	ProtobufCBinaryData id, version;
};

static const char TAP_VERSION[] = PACKAGE_NAME " " PACKAGE_VERSION;

int dnstap_built_in(void)
{
	return 1;
}

/* libfstrm would open the file in its I/O thread, maybe after privileges
 * are dropped, and on failure try again every few seconds, silently: it
 * is opened here (fstrm_writer_open() is then a no-op in the thread),
 * after a plain open() whose errno says why it cannot be. */
static struct fstrm_writer *open_file(const char *path,
				      const struct fstrm_writer_options *wopt,
				      char *err, size_t errlen)
{
	struct fstrm_file_options *fopt;
	struct fstrm_writer *w;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

	if (fd < 0) {
		snprintf(err, errlen, "dnstap file:%s: %s", path, strerror(errno));
		return NULL;
	}
	close(fd);
	fopt = fstrm_file_options_init();
	fstrm_file_options_set_file_path(fopt, path);
	w = fstrm_file_writer_init(fopt, wopt);
	fstrm_file_options_destroy(&fopt);
	if (w && fstrm_writer_open(w) != fstrm_res_success)
		fstrm_writer_destroy(&w);
	return w;
}

static struct fstrm_writer *open_unix(const char *path,
				      const struct fstrm_writer_options *wopt)
{
	struct fstrm_unix_writer_options *uopt = fstrm_unix_writer_options_init();
	struct fstrm_writer *w;

	fstrm_unix_writer_options_set_socket_path(uopt, path);
	w = fstrm_unix_writer_init(uopt, wopt);
	fstrm_unix_writer_options_destroy(&uopt);
	/* Connected now while we may still be root; a collector not there
	 * yet is tried again every 5 s (meanwhile messages are discarded). */
	if (w && fstrm_writer_open(w) != fstrm_res_success)
		log_warn("dnstap unix:%s: no collector there yet; trying every 5 s",
			 path);
	return w;
}

/* The writer for "file:PATH" or "unix:PATH"; NULL with err. */
static struct fstrm_writer *open_writer(const char *target, char *err,
					size_t errlen)
{
	struct fstrm_writer_options *wopt = fstrm_writer_options_init();
	struct fstrm_writer *w = NULL;

	fstrm_writer_options_add_content_type(wopt, CONTENT_TYPE,
					      strlen(CONTENT_TYPE));
	snprintf(err, errlen, "dnstap %s: cannot open it", target);
	if (strncmp(target, "file:", 5) == 0)
		w = open_file(target + 5, wopt, err, errlen);
	else if (strncmp(target, "unix:", 5) == 0)
		w = open_unix(target + 5, wopt);
	else
		snprintf(err, errlen, "dnstap %s: expected file:PATH or unix:PATH",
			 target);
	fstrm_writer_options_destroy(&wopt);
	return w;
}

static struct fstrm_iothr *start_iothr(struct fstrm_writer **w,
				       unsigned nqueues)
{
	struct fstrm_iothr_options *opt = fstrm_iothr_options_init();
	struct fstrm_iothr *iothr;

	fstrm_iothr_options_set_num_input_queues(opt, nqueues);
	/* One producer per queue (its worker), one consumer. */
	fstrm_iothr_options_set_queue_model(opt, FSTRM_IOTHR_QUEUE_MODEL_SPSC);
	fstrm_iothr_options_set_input_queue_size(opt, QUEUE_SIZE);
	fstrm_iothr_options_set_queue_notify_threshold(opt, NOTIFY_THRESHOLD);
	iothr = fstrm_iothr_init(opt, w);
	fstrm_iothr_options_destroy(&opt);
	return iothr;
}

dnstap_t *dnstap_create(const char *target, unsigned nqueues,
			char *err, size_t errlen)
{
	dnstap_t *t = xcalloc(1, sizeof(*t));
	struct fstrm_writer *w = open_writer(target, err, errlen);

	if (!w)
		goto fail;
	t->iothr = start_iothr(&w, nqueues ? nqueues : 1);
	if (!t->iothr) {
		fstrm_writer_destroy(&w);
		snprintf(err, errlen, "dnstap %s: cannot start the I/O thread", target);
		goto fail;
	}
	t->nqueues = nqueues ? nqueues : 1;
	t->queues = xcalloc(t->nqueues, sizeof(*t->queues));
	for (unsigned i = 0; i < t->nqueues; i++) {
		t->queues[i].tap = t;
		t->queues[i].ioq = fstrm_iothr_get_input_queue_idx(t->iothr, i);
		atomic_init(&t->queues[i].dropped, 0);
		atomic_init(&t->queues[i].returned, NULL);
	}
	if (gethostname(t->identity, sizeof(t->identity) - 1) < 0)
		t->identity[0] = '\0';
	t->id = (ProtobufCBinaryData){ strlen(t->identity), (uint8_t *)t->identity };
	t->version = (ProtobufCBinaryData){ sizeof(TAP_VERSION) - 1, (uint8_t *)TAP_VERSION };
	return t;
fail:
	free(t);
	return NULL;
}

static void free_frames(frame_t *f)
{
	while (f) {
		frame_t *next = f->next;
		free(f);
		f = next;
	}
}

static void *stop_iothr(void *arg)
{
	dnstap_t *t = arg;

	/* Writes what is queued first; every frame comes back. */
	fstrm_iothr_destroy(&t->iothr);
	return NULL;
}

int dnstap_destroy(dnstap_t *t)
{
	struct timespec until;
	pthread_t th;

	if (!t)
		return 0;
	/* A collector that stopped reading holds the writer in write()
	 * forever, and fstrm_iothr_destroy() with it: wait a while, then
	 * leave the thread (and t) behind, the process is ending. */
	if (pthread_create(&th, NULL, stop_iothr, t) != 0)
		return -EAGAIN;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += DNSTAP_CLOSE_SECONDS;
	if (pthread_timedjoin_np(th, NULL, &until) != 0) {
		pthread_detach(th);
		return -ETIMEDOUT;
	}
	for (unsigned i = 0; i < t->nqueues; i++) {
		free_frames(t->queues[i].spare);
		free_frames(atomic_load(&t->queues[i].returned));
	}
	free(t->queues);
	free(t);
	return 0;
}

dnstap_queue_t *dnstap_queue(dnstap_t *t, unsigned index)
{
	return t && index < t->nqueues ? &t->queues[index] : NULL;
}

unsigned long dnstap_queue_dropped(const dnstap_queue_t *q)
{
	return atomic_load_explicit(&q->dropped, memory_order_relaxed);
}

unsigned long dnstap_dropped(const dnstap_t *t)
{
	unsigned long n = 0;

	for (unsigned i = 0; t && i < t->nqueues; i++)
		n += dnstap_queue_dropped(&t->queues[i]);
	return n;
}

/* The peer's family, address bytes and port. */
static void set_peer(Dnstap__Message *m, const struct sockaddr_storage *ss,
		     int initiator)
{
	ProtobufCBinaryData addr;
	uint32_t port;

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		addr = (ProtobufCBinaryData){ 16, (uint8_t *)&sin6->sin6_addr };
		port = ntohs(sin6->sin6_port);
		m->socket_family = DNSTAP__SOCKET_FAMILY__INET6;
	} else {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		addr = (ProtobufCBinaryData){ 4, (uint8_t *)&sin->sin_addr };
		port = ntohs(sin->sin_port);
		m->socket_family = DNSTAP__SOCKET_FAMILY__INET;
	}
	m->has_socket_family = 1;
	if (initiator) {
		m->query_address = addr;
		m->has_query_address = 1;
		m->query_port = port;
		m->has_query_port = 1;
	} else {
		m->response_address = addr;
		m->has_response_address = 1;
		m->response_port = port;
		m->has_response_port = 1;
	}
}

static void set_time(double when, uint64_t *sec, uint32_t *nsec)
{
	*sec = (uint64_t)when;
	*nsec = (uint32_t)((when - (double)*sec) * 1e9);
}

static void set_query(Dnstap__Message *m, double asked, const uint8_t *msg,
		      size_t len)
{
	set_time(asked, &m->query_time_sec, &m->query_time_nsec);
	m->has_query_time_sec = m->has_query_time_nsec = 1;
	if (msg) {
		m->query_message = (ProtobufCBinaryData){ len, (uint8_t *)msg };
		m->has_query_message = 1;
	}
}

static void set_response(Dnstap__Message *m, double now, const uint8_t *msg,
			 size_t len)
{
	set_time(now, &m->response_time_sec, &m->response_time_nsec);
	m->has_response_time_sec = m->has_response_time_nsec = 1;
	m->response_message = (ProtobufCBinaryData){ len, (uint8_t *)msg };
	m->has_response_message = 1;
}

/* A frame from the pool (the worker's side). */
static frame_t *get_frame(dnstap_queue_t *q)
{
	frame_t *f = q->spare;

	if (!f)
		f = atomic_exchange_explicit(&q->returned, NULL, memory_order_acquire);
	if (!f)
		return xmalloc(sizeof(*f));
	q->spare = f->next;
	return f;
}

/* libfstrm is done with a pool frame (the I/O thread's side). */
static void put_frame(void *data, void *arg)
{
	dnstap_queue_t *q = arg;
	frame_t *f = (frame_t *)((uint8_t *)data - offsetof(frame_t, data));

	f->next = atomic_load_explicit(&q->returned, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&q->returned, &f->next, f,
						      memory_order_release,
						      memory_order_relaxed))
		;
}

/* Pack m (carrying a DNS message of msglen bytes) into a frame and hand
 * it to the I/O thread, or count a drop. The buffer is sized from
 * FRAME_OVERHEAD rather than by dnstap__dnstap__get_packed_size(), which
 * walks the message once more: a quarter of the time spent here. */
static void submit(dnstap_queue_t *q, Dnstap__Message *m, size_t msglen)
{
	Dnstap__Dnstap d = DNSTAP__DNSTAP__INIT;
	const dnstap_t *t = q->tap;
	frame_t *f;
	uint8_t *buf;
	size_t len, cap;

	d.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
	d.message = m;
	d.identity = t->id;
	d.has_identity = t->id.len > 0;
	d.version = t->version;
	d.has_version = 1;
	cap = msglen + t->id.len + t->version.len + FRAME_OVERHEAD;
	f = cap <= POOL_FRAME ? get_frame(q) : NULL;
	buf = f ? f->data : xmalloc(cap);
	len = dnstap__dnstap__pack(&d, buf);
	if (fstrm_iothr_submit(t->iothr, q->ioq, buf, len,
			       f ? put_frame : fstrm_free_wrapper,
			       f ? q : NULL) == fstrm_res_success)
		return;
	if (f) {
		f->next = q->spare;   /* never left this thread */
		q->spare = f;
	} else {
		free(buf);
	}
	atomic_fetch_add_explicit(&q->dropped, 1, memory_order_relaxed);
}

static void client_message(dnstap_queue_t *q, Dnstap__Message *m,
			   const struct sockaddr_storage *client, int tcp,
			   size_t msglen)
{
	m->socket_protocol = tcp ? DNSTAP__SOCKET_PROTOCOL__TCP
				 : DNSTAP__SOCKET_PROTOCOL__UDP;
	m->has_socket_protocol = 1;
	set_peer(m, client, 1);
	submit(q, m, msglen);
}

void dnstap_client_query(dnstap_queue_t *q, const struct sockaddr_storage *client,
			 int tcp, double now, const uint8_t *msg, size_t len)
{
	Dnstap__Message m = DNSTAP__MESSAGE__INIT;

	m.type = DNSTAP__MESSAGE__TYPE__CLIENT_QUERY;
	set_query(&m, now, msg, len);
	client_message(q, &m, client, tcp, len);
}

void dnstap_client_response(dnstap_queue_t *q,
			    const struct sockaddr_storage *client, int tcp,
			    double asked, double now, const uint8_t *msg,
			    size_t len)
{
	Dnstap__Message m = DNSTAP__MESSAGE__INIT;

	m.type = DNSTAP__MESSAGE__TYPE__CLIENT_RESPONSE;
	set_query(&m, asked, NULL, 0);
	set_response(&m, now, msg, len);
	client_message(q, &m, client, tcp, len);
}

/* Upstream messages: the upstream is the responder, over DoT. */
static void forwarder_message(dnstap_queue_t *q, Dnstap__Message *m,
			      const struct sockaddr_storage *upstream,
			      size_t msglen)
{
	m->socket_protocol = DNSTAP__SOCKET_PROTOCOL__DOT;
	m->has_socket_protocol = 1;
	set_peer(m, upstream, 0);
	submit(q, m, msglen);
}

void dnstap_forwarder_query(dnstap_queue_t *q,
			    const struct sockaddr_storage *upstream, double now,
			    const uint8_t *msg, size_t len)
{
	Dnstap__Message m = DNSTAP__MESSAGE__INIT;

	m.type = DNSTAP__MESSAGE__TYPE__FORWARDER_QUERY;
	set_query(&m, now, msg, len);
	forwarder_message(q, &m, upstream, len);
}

void dnstap_forwarder_response(dnstap_queue_t *q,
			       const struct sockaddr_storage *upstream,
			       double asked, double now, const uint8_t *msg,
			       size_t len)
{
	Dnstap__Message m = DNSTAP__MESSAGE__INIT;

	m.type = DNSTAP__MESSAGE__TYPE__FORWARDER_RESPONSE;
	set_query(&m, asked, NULL, 0);
	set_response(&m, now, msg, len);
	forwarder_message(q, &m, upstream, len);
}
