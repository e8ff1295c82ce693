#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <netinet/in.h>
#include <signal.h>
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
#include "dotstub/dnstap_out.h"
#include "dotstub/xmalloc.h"

/* Each worker encodes its messages straight into a ring of its own as
 * Frame Streams data frames (4-byte big-endian length, then the message),
 * and the writer thread hands whole stretches of the ring to one
 * writev(): no malloc() per message, no free() in another thread (that
 * cost 14 % of a loaded dotstub's time in glibc's arena code), no
 * per-message queue entry, no copy. It is all resident once it has
 * wrapped, and it is what dnstap adds to the RSS. At the bench's 80 MB/s
 * (tcp, udp-miss: four messages, ~1 KB a query while the upstream
 * messages were logged padded; ~0.5 KB since) 256 KiB rings dropped
 * ~1 % of the messages, 1 MiB none; 2 MiB leaves room to wake the writer
 * only every 512 KiB (below). A full ring drops the message and counts
 * it: a worker never waits. Power of 2. */
#define RING_BYTES (2048u * 1024)
/* The longest frame a ring takes: a DNS message is at most 65,535 bytes,
 * and a frame never wraps, so half the ring always fits once the writer
 * has caught up. */
#define MAX_FRAME (RING_BYTES / 2)
/* A worker wakes the writer each time it has added this much since it
 * last did (and the writer sleeps): ~160 wake-ups a second at 80 MB/s,
 * each write 0.5-1 MiB. Each wake-up is two context switches on a machine
 * that is busy with the queries themselves: every 128 KiB, dnstap cost
 * the unpinned tcp bench ~10 % q/s; every 512 KiB, ~5 %. Less than this
 * waits for the writer's own FLUSH_SECONDS timer, so a quiet server's log
 * is at most that late. */
#define WAKE_BYTES DNSTAP_WAKE_BYTES
#define FLUSH_SECONDS 1

/* One worker's ring. Positions are running byte counts (never wrapped),
 * so "free space" is one subtraction and the handover is one store each
 * way: the worker publishes `published` after writing a frame, the
 * writer publishes `tail` after writing a stretch out. */
struct dnstap_queue {
	dnstap_t *tap;
	uint8_t *ring;
	size_t head;               /* the worker's: where the next frame goes */
	size_t tail_seen;          /* the worker's copy of tail, maybe older */
	size_t unwoken;            /* bytes added since the writer was woken */
	atomic_ulong dropped;      /* by its worker, or the writer's discards */
	_Atomic size_t published;  /* head, for the writer */
	/* Where the data stopped short of the ring's end, the last time a
	 * frame went to the ring's start instead. A stretch the writer takes
	 * crosses the end at most once, and the worker cannot wrap again
	 * before the writer has given that stretch back. */
	_Atomic size_t wrap_at;
	/* The writer's: bytes given back, ever. On its own cache line, away
	 * from what the worker writes. */
	alignas(64) _Atomic size_t tail;
	char pad[64 - sizeof(size_t)];
};

struct dnstap {
	dnstap_out_t *out;
	dnstap_queue_t *queues;
	unsigned nqueues;
	pthread_t thread;
	sem_t wake;
	/* The writer is (about to be) asleep: set under lock. */
	atomic_int sleeping;
	atomic_int stopping;
	atomic_uint flush_seconds;
	char identity[256];        /* the host name */
	size_t identity_len;
};

static const char TAP_VERSION[] = PACKAGE_NAME " " PACKAGE_VERSION;

int dnstap_built_in(void)
{
	return 1;
}

static void count_drops(dnstap_queue_t *q, unsigned long n)
{
	atomic_fetch_add_explicit(&q->dropped, n, memory_order_relaxed);
}

/* ---- the writer thread ---------------------------------------------- */

/* q's published frames not yet written: one or two iovecs (the stretch
 * crosses the ring's end at most once). Returns the new tail. */
static size_t take_stretch(dnstap_queue_t *q, struct iovec *iov, int *n)
{
	size_t h = atomic_load_explicit(&q->published, memory_order_acquire);
	size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	size_t pos = t & (RING_BYTES - 1);

	if (pos + (h - t) <= RING_BYTES) {
		iov[(*n)++] = (struct iovec){ q->ring + pos, h - t };
	} else {
		size_t w = atomic_load_explicit(&q->wrap_at, memory_order_relaxed);

		iov[(*n)++] = (struct iovec){ q->ring + pos, w - t };
		iov[(*n)++] = (struct iovec){ q->ring, h - (t - pos + RING_BYTES) };
	}
	return h;
}

/* The frames in iov, counted (only for what is thrown away). */
static unsigned long count_frames(const struct iovec *iov, int n)
{
	unsigned long frames = 0;

	for (int i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base, *end = p + iov[i].iov_len;

		for (; p + 4 <= end; frames++)
			p += 4 + ((size_t)p[0] << 24 | (size_t)p[1] << 16 |
				  (size_t)p[2] << 8 | p[3]);
	}
	return frames;
}

/* Write (or, with no stream open, throw away and count) what every queue
 * holds, then give the space back. Returns the bytes taken. */
static size_t write_pending(dnstap_t *t)
{
	struct iovec iov[2 * t->nqueues];
	size_t until[t->nqueues], bytes = 0;
	int first[t->nqueues + 1], n = 0;

	for (unsigned i = 0; i < t->nqueues; i++) {
		first[i] = n;
		until[i] = take_stretch(&t->queues[i], iov, &n);
	}
	first[t->nqueues] = n;
	for (int i = 0; i < n; i++)
		bytes += iov[i].iov_len;
	if (bytes == 0)
		return 0;
	if (!dnstap_out_ready(t->out) || dnstap_out_write(t->out, iov, n) < 0)
		for (unsigned i = 0; i < t->nqueues; i++)
			count_drops(&t->queues[i],
				    count_frames(iov + first[i], first[i + 1] - first[i]));
	for (unsigned i = 0; i < t->nqueues; i++)
		atomic_store_explicit(&t->queues[i].tail, until[i], memory_order_release);
	return bytes;
}

static size_t pending_bytes(dnstap_t *t)
{
	size_t n = 0;

	for (unsigned i = 0; i < t->nqueues; i++)
		n += atomic_load(&t->queues[i].published) -
		     atomic_load_explicit(&t->queues[i].tail, memory_order_relaxed);
	return n;
}

/* Sleep until a worker has WAKE_BYTES for us, or flush_seconds. `sleeping`
 * is set before the rings are looked at again, and a worker publishes its
 * frames before it looks at `sleeping` (both sequentially consistent): so
 * either we see its bytes here, or it sees us asleep and posts. A post is
 * never lost (a semaphore keeps it; one that lands after we decided not
 * to sleep only makes the next sleep return at once). libfstrm's I/O
 * thread lost wake-ups sent between its last look at its queues and its
 * wait, and slept out its second while the rings filled and dropped. No
 * mutex: a worker never waits for the writer, and the writer is not woken
 * into a lock its waker still holds. */
static void sleep_until_woken(dnstap_t *t)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += atomic_load(&t->flush_seconds);
	atomic_store(&t->sleeping, 1);
	if (!atomic_load(&t->stopping) && pending_bytes(t) < WAKE_BYTES)
		while (sem_clockwait(&t->wake, CLOCK_MONOTONIC, &until) < 0 &&
		       errno == EINTR)
			;
	atomic_store(&t->sleeping, 0);
}

static void *writer_main(void *arg)
{
	dnstap_t *t = arg;

	for (;;) {
		/* Read before the last pass: the workers had stopped when
		 * stopping was set, so that pass writes everything. */
		int stop = atomic_load(&t->stopping);

		if (write_pending(t) < WAKE_BYTES && !stop)
			sleep_until_woken(t);
		else if (stop)
			break;
	}
	dnstap_out_close(t->out);   /* STOP, and a collector's FINISH */
	t->out = NULL;
	return NULL;
}

/* Only the worker that finds `sleeping` set posts: one wake-up, however
 * many workers cross the line at once. */
static void wake_writer(dnstap_t *t)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&t->sleeping) &&
	    atomic_exchange(&t->sleeping, 0))
		sem_post(&t->wake);
}

/* ---- set-up and shut-down --------------------------------------------- */

static int start_writer(dnstap_t *t)
{
	struct sched_param none = { .sched_priority = 0 };
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	sem_init(&t->wake, 0, 0);
	/* SCHED_BATCH: a writer woken on a busy machine does not preempt the
	 * worker that woke it (which would then wait out the write); it
	 * still gets its fair share of the CPU, and the ring's ~25 ms of
	 * messages at full load (80 MB/s) cover its wait for it. */
	pthread_attr_init(&attr);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_BATCH);
	pthread_attr_setschedparam(&attr, &none);
	/* Signals stay with the main thread's loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&t->thread, &attr, writer_main, t);
	if (rc == EPERM || rc == EINVAL) {
		pthread_attr_setinheritsched(&attr, PTHREAD_INHERIT_SCHED);
		rc = pthread_create(&t->thread, &attr, writer_main, t);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return rc;
}

static void free_tap(dnstap_t *t)
{
	for (unsigned i = 0; t->queues && i < t->nqueues; i++)
		free(t->queues[i].ring);
	free(t->queues);
	free(t);
}

dnstap_t *dnstap_create(const char *target, unsigned nqueues,
			char *err, size_t errlen)
{
	dnstap_t *t = xcalloc(1, sizeof(*t));

	t->out = dnstap_out_open(target, err, errlen);
	if (!t->out) {
		free(t);
		return NULL;
	}
	t->flush_seconds = FLUSH_SECONDS;
	t->nqueues = nqueues ? nqueues : 1;
	t->queues = xcalloc(t->nqueues, sizeof(*t->queues));
	for (unsigned i = 0; i < t->nqueues; i++) {
		t->queues[i].tap = t;
		t->queues[i].ring = xmalloc(RING_BYTES);
	}
	if (gethostname(t->identity, sizeof(t->identity) - 1) < 0)
		t->identity[0] = '\0';
	t->identity_len = strlen(t->identity);
	if (start_writer(t) != 0) {
		snprintf(err, errlen, "dnstap %s: cannot start the writer thread", target);
		dnstap_out_close(t->out);
		free_tap(t);
		return NULL;
	}
	return t;
}

int dnstap_destroy(dnstap_t *t)
{
	struct timespec until;

	if (!t)
		return 0;
	atomic_store(&t->stopping, 1);
	sem_post(&t->wake);
	/* A collector that stopped reading holds the writer in a write for
	 * up to DNSTAP_OUT_TIMEOUT: wait this long, then leave the thread
	 * (and t) behind, the process is ending. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += DNSTAP_CLOSE_SECONDS;
	if (pthread_timedjoin_np(t->thread, NULL, &until) != 0) {
		pthread_detach(t->thread);
		return -ETIMEDOUT;
	}
	sem_destroy(&t->wake);
	free_tap(t);
	return 0;
}

void dnstap_set_flush_seconds(dnstap_t *t, unsigned seconds)
{
	atomic_store(&t->flush_seconds, seconds);
}

size_t dnstap_queue_unwritten(const dnstap_queue_t *q)
{
	return atomic_load(&q->published) - atomic_load(&q->tail);
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


/* ---- the workers' side ------------------------------------------------ */

/* Room for a frame of `need` bytes in q's ring, or NULL when the writer
 * has not given enough back yet. A frame never wraps: when the ring's end
 * is too short it is left out (wrap_at says where the data stopped) and
 * the frame goes to the start. The writer's tail is read again only when
 * the copy seen last does not leave room: one cache line less bounced. */
static uint8_t *reserve_frame(dnstap_queue_t *q, size_t need)
{
	size_t pos = q->head & (RING_BYTES - 1);
	size_t start = q->head + (pos + need > RING_BYTES ? RING_BYTES - pos : 0);

	if (start + need - q->tail_seen > RING_BYTES) {
		q->tail_seen = atomic_load_explicit(&q->tail, memory_order_acquire);
		if (start + need - q->tail_seen > RING_BYTES)
			return NULL;
	}
	if ((start & (RING_BYTES - 1)) == 0)
		atomic_store_explicit(&q->wrap_at, q->head, memory_order_relaxed);
	q->unwoken += start - q->head;
	q->head = start;
	return q->ring + (start & (RING_BYTES - 1));
}

/* The frame of `need` bytes at head is written: hand it to the writer. */
static void publish_frame(dnstap_queue_t *q, size_t need)
{
	q->head += need;
	q->unwoken += need;
	/* Sequentially consistent, for sleep_until_woken()'s handshake; on
	 * x86 only the wake-up check below adds a fence. */
	if (q->unwoken < WAKE_BYTES) {
		atomic_store_explicit(&q->published, q->head, memory_order_release);
		return;
	}
	atomic_store(&q->published, q->head);
	q->unwoken = 0;
	wake_writer(q->tap);
}

/* Encode m into q's ring and hand it to the writer, or count a drop. */
static void submit(dnstap_queue_t *q, dnstap_enc_msg_t *m)
{
	const dnstap_t *t = q->tap;
	size_t len;
	uint8_t *p;

	m->identity = (dnstap_enc_bytes_t){ (const uint8_t *)t->identity, t->identity_len };
	m->version = (dnstap_enc_bytes_t){ (const uint8_t *)TAP_VERSION, sizeof(TAP_VERSION) - 1 };
	len = dnstap_enc_size(m);
	p = len + 4 <= MAX_FRAME ? reserve_frame(q, len + 4) : NULL;
	if (!p) {
		count_drops(q, 1);
		return;
	}
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	dnstap_enc_write(m, p + 4);
	publish_frame(q, len + 4);
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
