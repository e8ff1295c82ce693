#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fstrm.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dotstub/dnstap.h"
#include "dotstub/dnstap_enc.h"
#include "dotstub/log.h"
#include "dotstub/xmalloc.h"

/* The content type every dnstap reader expects in the stream's header. */
#define CONTENT_TYPE "protobuf:dnstap.Dnstap"
/* Messages a worker may have queued for the I/O thread (libfstrm's queue;
 * a power of 2). The bytes they hold are bounded by RING_BYTES below,
 * which is what fills first at ~130 bytes a message or more (a client
 * query is ~110, an upstream answer ~550). */
#define QUEUE_SIZE 2048
/* The I/O thread is woken when a queue holds this many messages (or after
 * a second). libfstrm signals when the queue's FREE room falls to its
 * "notify threshold" (iothr.c compares the insert's remaining space), not
 * when this many are queued as its header says: the threshold is set to
 * QUEUE_SIZE - 1 - WAKE_MSGS. 256 messages are ~40 KB, and at 350,000
 * messages a second (udp-hit) ~1,400 wake-ups a second. With 4096/256
 * the thread slept until 3840 messages were queued: the frames they held
 * took RSS from 7.3 to 11.8 MiB and the queue overflowed. Known limit:
 * libfstrm signals without its lock, and its thread checks the queues
 * before it takes the lock to wait, so a signal landing in between is
 * lost and the thread sleeps out its 1 s flush timeout while the ring
 * fills and drops (bursts of 0.1-1 s worth in the bench's overload runs).
 * Our own writer thread, woken under the lock, would fix it. */
#define WAKE_MSGS 256
/* Each worker encodes its messages straight into a ring of its own, and
 * the I/O thread gives the space back in order as it writes them: no
 * malloc() per message, no free() in another thread (a frame malloc'd in
 * the worker and freed in the I/O thread cost 14 % of a loaded dotstub's
 * time in glibc's arena code), no list of frames to pass around. It is
 * all resident once it has wrapped, and what bounds the RSS dnstap adds
 * (the acceptance: 8 MiB with metrics and dnstap on; 512 KiB measured
 * 8.1): 256 KiB is ~5 ms at udp-hit's 50 MB/s, ~10 ms at udp-miss's, for
 * the I/O thread to be scheduled on a busy machine. A full ring drops and
 * counts, like a full queue. Power of 2. */
#define RING_BYTES (256u * 1024)
/* Messages bigger than this (a large TCP answer) are malloc'd instead. */
#define RING_MAX_MSG (RING_BYTES / 8)
/* The I/O thread writes when it holds this many bytes or this many
 * messages: one writev() for ~100 messages rather than for ~30. */
#define WRITE_BYTES (32u * 1024)
#define WRITE_MSGS 256

/* A message in the ring: where the next one may start (a running byte
 * count, so the I/O thread's "given back up to" is one store). */
typedef struct slot {
	size_t end;
	uint8_t data[];
} slot_t;

struct dnstap_queue {
	dnstap_t *tap;
	struct fstrm_iothr_queue *ioq;
	uint8_t *ring;
	size_t head;               /* the worker's: bytes handed out, ever */
	size_t tail_seen;          /* the worker's copy of tail, maybe older */
	atomic_ulong dropped;      /* written by its worker, read by anyone */
	/* The I/O thread's: bytes given back, ever (the ends of written
	 * slots, in order: libfstrm frees a queue's messages in order). On
	 * its own cache line, away from what the worker writes. */
	alignas(64) _Atomic size_t tail;
	char pad[64 - sizeof(size_t)];
};

struct dnstap {
	struct fstrm_iothr *iothr;
	dnstap_queue_t *queues;
	unsigned nqueues;
	char identity[256];        /* the host name */
	size_t identity_len;
};

static const char TAP_VERSION[] = PACKAGE_NAME " " PACKAGE_VERSION;

int dnstap_built_in(void)
{
	return 1;
}

/* libfstrm's own file writer fwrite()s each frame and its length into a
 * stdio buffer: that copy was half of the I/O thread's time (perf,
 * udp-hit). This one hands the batch to writev(), which copies once. */
typedef struct file_out {
	int fd;
	char path[];
} file_out_t;

static fstrm_res file_open(void *obj)
{
	file_out_t *f = obj;

	if (f->fd < 0)
		f->fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	return f->fd < 0 ? fstrm_res_failure : fstrm_res_success;
}

static fstrm_res file_close(void *obj)
{
	file_out_t *f = obj;

	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	return fstrm_res_success;
}

static fstrm_res file_destroy(void *obj)
{
	file_close(obj);
	free(obj);
	return fstrm_res_success;
}

/* What a short writev() left: the rest of iov from byte `done` on. */
static int write_rest(int fd, const struct iovec *iov, int iovcnt, size_t done)
{
	for (int i = 0; i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		if (done >= len) {
			done -= len;
			continue;
		}
		p += done;
		len -= done;
		done = 0;
		while (len > 0) {
			ssize_t n = write(fd, p, len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return -1;
			p += n;
			len -= (size_t)n;
		}
	}
	return 0;
}

static fstrm_res file_write(void *obj, const struct iovec *iov, int iovcnt)
{
	file_out_t *f = obj;
	size_t total = 0;
	ssize_t n;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	do
		n = writev(f->fd, iov, iovcnt);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fstrm_res_failure;
	if ((size_t)n == total || write_rest(f->fd, iov, iovcnt, (size_t)n) == 0)
		return fstrm_res_success;
	return fstrm_res_failure;
}

/* The file is opened (truncated) here rather than in the I/O thread,
 * maybe after privileges are dropped, where a failure would only be
 * retried every few seconds, silently: errno says why it cannot be. */
static struct fstrm_writer *open_file(const char *path,
				      const struct fstrm_writer_options *wopt,
				      char *err, size_t errlen)
{
	file_out_t *f = xmalloc(sizeof(*f) + strlen(path) + 1);
	struct fstrm_rdwr *rdwr;
	struct fstrm_writer *w;

	f->fd = -1;
	strcpy(f->path, path);
	if (file_open(f) != fstrm_res_success) {
		snprintf(err, errlen, "dnstap file:%s: %s", path, strerror(errno));
		free(f);
		return NULL;
	}
	rdwr = fstrm_rdwr_init(f);
	fstrm_rdwr_set_open(rdwr, file_open);
	fstrm_rdwr_set_close(rdwr, file_close);
	fstrm_rdwr_set_destroy(rdwr, file_destroy);
	fstrm_rdwr_set_write(rdwr, file_write);
	w = fstrm_writer_init(wopt, &rdwr);   /* owns f from here */
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
	fstrm_iothr_options_set_queue_notify_threshold(opt, QUEUE_SIZE - 1 - WAKE_MSGS);
	fstrm_iothr_options_set_buffer_hint(opt, WRITE_BYTES);
	fstrm_iothr_options_set_output_queue_size(opt, WRITE_MSGS);
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
		t->queues[i].ring = xmalloc(RING_BYTES);
		atomic_init(&t->queues[i].dropped, 0);
		atomic_init(&t->queues[i].tail, 0);
	}
	if (gethostname(t->identity, sizeof(t->identity) - 1) < 0)
		t->identity[0] = '\0';
	t->identity_len = strlen(t->identity);
	return t;
fail:
	free(t);
	return NULL;
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
	for (unsigned i = 0; i < t->nqueues; i++)
		free(t->queues[i].ring);
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
static void set_peer(dnstap_enc_msg_t *m, const struct sockaddr_storage *ss,
		     int initiator)
{
	m->initiator = initiator;
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		m->addr = (dnstap_enc_bytes_t){ sin6->sin6_addr.s6_addr, 16 };
		m->port = ntohs(sin6->sin6_port);
		m->family = DNSTAP_ENC_INET6;
	} else {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		m->addr = (dnstap_enc_bytes_t){ (const uint8_t *)&sin->sin_addr, 4 };
		m->port = ntohs(sin->sin_port);
		m->family = DNSTAP_ENC_INET;
	}
}

static void set_time(double when, uint64_t *sec, uint32_t *nsec)
{
	*sec = (uint64_t)when;
	*nsec = (uint32_t)((when - (double)*sec) * 1e9);
}

static void set_query(dnstap_enc_msg_t *m, double asked, const uint8_t *msg,
		      size_t len)
{
	set_time(asked, &m->query_sec, &m->query_nsec);
	m->query = (dnstap_enc_bytes_t){ msg, msg ? len : 0 };
}

static void set_response(dnstap_enc_msg_t *m, double now, const uint8_t *msg,
			 size_t len)
{
	set_time(now, &m->response_sec, &m->response_nsec);
	m->response = (dnstap_enc_bytes_t){ msg, len };
	m->has_response = 1;
}

/* Room for `len` bytes in q's ring, or NULL when the I/O thread has not
 * given enough back yet. A slot never wraps: the end of the ring is
 * skipped when it is too short. Nothing is taken until the caller sets
 * head to the slot's end. The I/O thread's tail is read again only when
 * the copy seen last does not leave room: one cache line less bounced. */
static slot_t *reserve_slot(dnstap_queue_t *q, size_t len)
{
	size_t need = (offsetof(slot_t, data) + len + 7) & ~(size_t)7;
	size_t pos = q->head & (RING_BYTES - 1);
	size_t start = q->head + (pos + need > RING_BYTES ? RING_BYTES - pos : 0);
	slot_t *s;

	if (start + need - q->tail_seen > RING_BYTES) {
		q->tail_seen = atomic_load_explicit(&q->tail, memory_order_acquire);
		if (start + need - q->tail_seen > RING_BYTES)
			return NULL;
	}
	s = (slot_t *)(q->ring + (start & (RING_BYTES - 1)));
	s->end = start + need;
	return s;
}

/* libfstrm is done with a ring message (the I/O thread's side): its space
 * and everything before it is free again. */
static void give_back(void *data, void *arg)
{
	dnstap_queue_t *q = arg;
	const slot_t *s = (const slot_t *)((uint8_t *)data - offsetof(slot_t, data));

	atomic_store_explicit(&q->tail, s->end, memory_order_release);
}

static void count_drop(dnstap_queue_t *q)
{
	atomic_fetch_add_explicit(&q->dropped, 1, memory_order_relaxed);
}

/* A message too big for the ring, malloc'd (and freed by libfstrm). */
static void submit_big(dnstap_queue_t *q, const dnstap_enc_msg_t *m, size_t cap)
{
	uint8_t *buf = xmalloc(cap);
	size_t len = dnstap_enc_write(m, buf);

	if (fstrm_iothr_submit(q->tap->iothr, q->ioq, buf, len,
			       fstrm_free_wrapper, NULL) != fstrm_res_success) {
		free(buf);
		count_drop(q);
	}
}

/* Encode m into q's ring and hand it to the I/O thread, or count a drop. */
static void submit(dnstap_queue_t *q, dnstap_enc_msg_t *m)
{
	const dnstap_t *t = q->tap;
	size_t len, end;
	slot_t *s;

	m->identity = (dnstap_enc_bytes_t){ (const uint8_t *)t->identity, t->identity_len };
	m->version = (dnstap_enc_bytes_t){ (const uint8_t *)TAP_VERSION, sizeof(TAP_VERSION) - 1 };
	len = dnstap_enc_size(m);
	if (len > RING_MAX_MSG) {
		submit_big(q, m, len);
		return;
	}
	s = reserve_slot(q, len);
	if (!s) {
		count_drop(q);
		return;
	}
	end = s->end;
	dnstap_enc_write(m, s->data);
	if (fstrm_iothr_submit(t->iothr, q->ioq, s->data, len, give_back, q)
	    != fstrm_res_success) {
		count_drop(q);        /* the slot stays free: head did not move */
		return;
	}
	q->head = end;
}

static void client_message(dnstap_queue_t *q, dnstap_enc_msg_t *m,
			   const struct sockaddr_storage *client, int tcp)
{
	m->protocol = tcp ? DNSTAP_ENC_TCP : DNSTAP_ENC_UDP;
	set_peer(m, client, 1);
	submit(q, m);
}

void dnstap_client_query(dnstap_queue_t *q, const struct sockaddr_storage *client,
			 int tcp, double now, const uint8_t *msg, size_t len)
{
	dnstap_enc_msg_t m = { .type = DNSTAP_ENC_CLIENT_QUERY };

	set_query(&m, now, msg, len);
	client_message(q, &m, client, tcp);
}

void dnstap_client_response(dnstap_queue_t *q,
			    const struct sockaddr_storage *client, int tcp,
			    double asked, double now, const uint8_t *msg,
			    size_t len)
{
	dnstap_enc_msg_t m = { .type = DNSTAP_ENC_CLIENT_RESPONSE };

	set_query(&m, asked, NULL, 0);
	set_response(&m, now, msg, len);
	client_message(q, &m, client, tcp);
}

/* Upstream messages: the upstream is the responder, over DoT. */
static void forwarder_message(dnstap_queue_t *q, dnstap_enc_msg_t *m,
			      const struct sockaddr_storage *upstream)
{
	m->protocol = DNSTAP_ENC_DOT;
	set_peer(m, upstream, 0);
	submit(q, m);
}

void dnstap_forwarder_query(dnstap_queue_t *q,
			    const struct sockaddr_storage *upstream, double now,
			    const uint8_t *msg, size_t len)
{
	dnstap_enc_msg_t m = { .type = DNSTAP_ENC_FORWARDER_QUERY };

	set_query(&m, now, msg, len);
	forwarder_message(q, &m, upstream);
}

void dnstap_forwarder_response(dnstap_queue_t *q,
			       const struct sockaddr_storage *upstream,
			       double asked, double now, const uint8_t *msg,
			       size_t len)
{
	dnstap_enc_msg_t m = { .type = DNSTAP_ENC_FORWARDER_RESPONSE };

	set_query(&m, asked, NULL, 0);
	set_response(&m, now, msg, len);
	forwarder_message(q, &m, upstream);
}
