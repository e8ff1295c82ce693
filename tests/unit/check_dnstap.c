/* dnstap: what the module writes reads back with libfstrm's reader and
 * protobuf-c (the fields a dnstap reader needs, per type), from several
 * worker threads at once, with every message either written or counted
 * as dropped. Built only with dnstap. */
#include <arpa/inet.h>
#include <check.h>
#include <stdint.h>
#include <fstrm.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dnstap.pb-c.h"
#include "dotstub/dnstap.h"
#include "dotstub/dnstap_enc.h"

#include "check_main.h"

static struct sockaddr_storage addr4(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &sin->sin_addr);
	return ss;
}

static struct sockaddr_storage addr6(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	inet_pton(AF_INET6, ip, &sin6->sin6_addr);
	return ss;
}

typedef void (*each_fn)(const Dnstap__Dnstap *d, void *arg);

/* Calls fn for each message of the file; returns how many. */
static size_t read_back(const char *path, each_fn fn, void *arg)
{
	struct fstrm_file_options *fopt = fstrm_file_options_init();
	struct fstrm_reader_options *ropt = fstrm_reader_options_init();
	struct fstrm_reader *r;
	const uint8_t *data;
	size_t len, n = 0;

	fstrm_file_options_set_file_path(fopt, path);
	fstrm_reader_options_add_content_type(ropt, "protobuf:dnstap.Dnstap", 22);
	r = fstrm_file_reader_init(fopt, ropt);
	ck_assert_ptr_nonnull(r);
	while (fstrm_reader_read(r, &data, &len) == fstrm_res_success) {
		Dnstap__Dnstap *d = dnstap__dnstap__unpack(NULL, len, data);
		ck_assert_ptr_nonnull(d);
		ck_assert_ptr_nonnull(d->message);
		if (fn)
			fn(d, arg);
		dnstap__dnstap__free_unpacked(d, NULL);
		n++;
	}
	fstrm_reader_destroy(&r);
	fstrm_reader_options_destroy(&ropt);
	fstrm_file_options_destroy(&fopt);
	return n;
}

static const uint8_t QUERY[] = { 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
				 3, 'w', 'w', 'w', 0, 0, 1, 0, 1 };

static void check_fields(const Dnstap__Dnstap *d, void *arg)
{
	const Dnstap__Message *m = d->message;
	static const uint8_t v4[4] = { 127, 0, 0, 7 };
	int *seen = arg;

	ck_assert_int_eq(d->type, DNSTAP__DNSTAP__TYPE__MESSAGE);
	ck_assert(d->has_version);
	ck_assert(m->has_socket_family && m->has_socket_protocol);
	seen[m->type]++;
	switch (m->type) {
	case DNSTAP__MESSAGE__TYPE__CLIENT_QUERY:
		ck_assert_int_eq(m->socket_family, DNSTAP__SOCKET_FAMILY__INET);
		ck_assert_int_eq(m->socket_protocol, DNSTAP__SOCKET_PROTOCOL__UDP);
		ck_assert(m->has_query_address && m->query_address.len == 4);
		ck_assert_mem_eq(m->query_address.data, v4, 4);
		ck_assert_uint_eq(m->query_port, 40000);
		ck_assert(!m->has_response_address);
		ck_assert_uint_eq(m->query_time_sec, 1700000000);
		ck_assert_uint_le(m->query_time_nsec - 250000000u + 1000u, 2000u);
		ck_assert(m->has_query_message && m->query_message.len == sizeof(QUERY));
		ck_assert_mem_eq(m->query_message.data, QUERY, sizeof(QUERY));
		break;
	case DNSTAP__MESSAGE__TYPE__CLIENT_RESPONSE:
		ck_assert_int_eq(m->socket_protocol, DNSTAP__SOCKET_PROTOCOL__TCP);
		ck_assert_uint_eq(m->query_time_sec, 1700000000);
		ck_assert_uint_eq(m->response_time_sec, 1700000001);
		ck_assert(m->has_response_message && !m->has_query_message);
		break;
	case DNSTAP__MESSAGE__TYPE__FORWARDER_QUERY:
	case DNSTAP__MESSAGE__TYPE__FORWARDER_RESPONSE:
		ck_assert_int_eq(m->socket_family, DNSTAP__SOCKET_FAMILY__INET6);
		ck_assert_int_eq(m->socket_protocol, DNSTAP__SOCKET_PROTOCOL__DOT);
		ck_assert(m->has_response_address && m->response_address.len == 16);
		ck_assert_uint_eq(m->response_port, 853);
		ck_assert(!m->has_query_address);
		break;
	default:
		ck_abort_msg("unexpected message type %d", m->type);
	}
}

/* A dnstap writing to a new file; its name is left in path. */
static dnstap_t *create_in_tmp(char *path, unsigned nqueues)
{
	char target[64], err[256];
	int fd = mkstemp(path);
	dnstap_t *t;

	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(target, sizeof(target), "file:%s", path);
	t = dnstap_create(target, nqueues, err, sizeof(err));
	ck_assert_msg(t != NULL, "%s", err);
	return t;
}

START_TEST(test_four_types_read_back)
{
	char path[] = "/tmp/check_dnstap.XXXXXX";
	int seen[16] = { 0 };
	struct sockaddr_storage client = addr4("127.0.0.7", 40000);
	struct sockaddr_storage up = addr6("::1", 853);
	dnstap_t *t = create_in_tmp(path, 1);
	dnstap_queue_t *q;

	q = dnstap_queue(t, 0);
	ck_assert_ptr_null(dnstap_queue(t, 1));
	dnstap_client_query(q, &client, 0, 1700000000.25, QUERY, sizeof(QUERY));
	dnstap_forwarder_query(q, &up, 1700000000.5, QUERY, sizeof(QUERY));
	dnstap_forwarder_response(q, &up, 1700000000.5, 1700000000.75, QUERY, sizeof(QUERY));
	dnstap_client_response(q, &client, 1, 1700000000.25, 1700000001.0, QUERY, sizeof(QUERY));
	ck_assert_uint_eq(dnstap_dropped(t), 0);
	ck_assert_int_eq(dnstap_destroy(t), 0);
	ck_assert_uint_eq(read_back(path, check_fields, seen), 4);
	for (int type = 5; type <= 8; type++)
		ck_assert_int_eq(seen[type], 1);
	unlink(path);
}
END_TEST

enum { THREADS = 3, PER_THREAD = 30000 };

static void *flood(void *arg)
{
	dnstap_queue_t *q = arg;
	struct sockaddr_storage up = addr4("127.0.0.1", 853);
	uint8_t big[2000];

	memset(big, 0, sizeof(big));
	memcpy(big, QUERY, sizeof(QUERY));
	for (int i = 0; i < PER_THREAD; i++)   /* pool frames, and a few big ones */
		dnstap_forwarder_response(q, &up, 1.0, 2.0, big,
					  i % 97 == 0 ? sizeof(big) : 468);
	return NULL;
}

/* Worker threads at full speed: nothing blocks, and every message is
 * written or counted. */
/* The hand encoder writes what protobuf-c's packer writes for the same
 * message, byte for byte: both kinds of peer, with and without a
 * response, a message long enough for a 3-byte length, no identity. */
static void compare_with_protobuf_c(dnstap_enc_msg_t *e)
{
	Dnstap__Dnstap d = DNSTAP__DNSTAP__INIT;
	Dnstap__Message m = DNSTAP__MESSAGE__INIT;
	ProtobufCBinaryData addr = { e->addr.len, (uint8_t *)e->addr.data };
	size_t want_len, got_len;
	uint8_t *want, *got;

	d.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
	d.message = &m;
	d.identity = (ProtobufCBinaryData){ e->identity.len, (uint8_t *)e->identity.data };
	d.has_identity = e->identity.len > 0;
	d.version = (ProtobufCBinaryData){ e->version.len, (uint8_t *)e->version.data };
	d.has_version = e->version.len > 0;
	m.type = e->type;
	m.socket_family = e->family;
	m.has_socket_family = 1;
	m.socket_protocol = e->protocol;
	m.has_socket_protocol = 1;
	if (e->initiator) {
		m.query_address = addr;
		m.has_query_address = 1;
		m.query_port = e->port;
		m.has_query_port = 1;
	} else {
		m.response_address = addr;
		m.has_response_address = 1;
		m.response_port = e->port;
		m.has_response_port = 1;
	}
	m.query_time_sec = e->query_sec;
	m.query_time_nsec = e->query_nsec;
	m.has_query_time_sec = m.has_query_time_nsec = 1;
	m.query_message = (ProtobufCBinaryData){ e->query.len, (uint8_t *)e->query.data };
	m.has_query_message = e->query.len > 0;
	if (e->has_response) {
		m.response_time_sec = e->response_sec;
		m.response_time_nsec = e->response_nsec;
		m.has_response_time_sec = m.has_response_time_nsec = 1;
		m.response_message = (ProtobufCBinaryData){ e->response.len, (uint8_t *)e->response.data };
		m.has_response_message = 1;
	}
	want_len = dnstap__dnstap__get_packed_size(&d);
	want = malloc(want_len);
	dnstap__dnstap__pack(&d, want);
	ck_assert_uint_eq(dnstap_enc_size(e), want_len);
	got = malloc(want_len);
	got_len = dnstap_enc_write(e, got);
	ck_assert_uint_eq(got_len, want_len);
	ck_assert_mem_eq(got, want, want_len);
	free(got);
	free(want);
}

START_TEST(test_encoder_matches_protobuf_c)
{
	static const uint8_t v4[4] = { 127, 0, 0, 7 }, v6[16] = { [15] = 1 };
	static uint8_t big[70000];
	dnstap_enc_msg_t e = {
		.identity = { (const uint8_t *)"host", 4 },
		.version = { (const uint8_t *)"dotstub 1", 9 },
		.type = DNSTAP_ENC_CLIENT_QUERY, .family = DNSTAP_ENC_INET,
		.protocol = DNSTAP_ENC_UDP, .initiator = 1, .addr = { v4, 4 },
		.port = 40000, .query_sec = 1700000000, .query_nsec = 250000000,
		.query = { QUERY, sizeof(QUERY) },
	};

	compare_with_protobuf_c(&e);
	e.type = DNSTAP_ENC_FORWARDER_RESPONSE;
	e.family = DNSTAP_ENC_INET6;
	e.protocol = DNSTAP_ENC_DOT;
	e.initiator = 0;
	e.addr = (dnstap_enc_bytes_t){ v6, 16 };
	e.port = 853;
	e.query = (dnstap_enc_bytes_t){ NULL, 0 };
	e.has_response = 1;
	e.response_sec = 1700000001;
	e.response_nsec = 999999999;
	e.response = (dnstap_enc_bytes_t){ QUERY, sizeof(QUERY) };
	compare_with_protobuf_c(&e);
	e.identity.len = 0;
	e.response = (dnstap_enc_bytes_t){ big, sizeof(big) };
	compare_with_protobuf_c(&e);
	e.port = 0;
	e.query_sec = e.response_sec = 0;
	e.query_nsec = e.response_nsec = 0;
	compare_with_protobuf_c(&e);
}
END_TEST

/* Each message carries its number in a payload of its own length (so the
 * ring wraps at every offset): read back, none is torn or overwritten. */
enum { RING_MSGS = 40000 };

static size_t ring_msg_len(uint32_t i)
{
	return 12 + (i * 37u) % 1400;
}

static void check_payload(const Dnstap__Dnstap *d, void *arg)
{
	const ProtobufCBinaryData *r = &d->message->response_message;
	uint32_t *last = arg, i;

	ck_assert(d->message->has_response_message);
	ck_assert_uint_ge(r->len, 12);
	memcpy(&i, r->data, sizeof(i));
	ck_assert_uint_lt(i, RING_MSGS);
	ck_assert(*last == UINT32_MAX || i > *last);   /* in order, gaps = drops */
	*last = i;
	ck_assert_uint_eq(r->len, ring_msg_len(i));
	for (size_t k = sizeof(i); k < r->len; k++)
		ck_assert_uint_eq(r->data[k], (uint8_t)(i + k));
}

START_TEST(test_ring_wraps_without_tearing)
{
	char path[] = "/tmp/check_dnstap.XXXXXX";
	struct sockaddr_storage up = addr4("127.0.0.1", 853);
	uint8_t msg[1500];
	uint32_t last = UINT32_MAX;
	unsigned long dropped;
	dnstap_t *t = create_in_tmp(path, 1);
	dnstap_queue_t *q = dnstap_queue(t, 0);

	for (uint32_t i = 0; i < RING_MSGS; i++) {
		size_t len = ring_msg_len(i);

		memcpy(msg, &i, sizeof(i));
		for (size_t k = sizeof(i); k < len; k++)
			msg[k] = (uint8_t)(i + k);
		dnstap_forwarder_response(q, &up, 1.0, 2.0, msg, len);
	}
	dropped = dnstap_dropped(t);
	ck_assert_int_eq(dnstap_destroy(t), 0);
	ck_assert_uint_eq(read_back(path, check_payload, &last) + dropped, RING_MSGS);
	ck_assert_uint_lt(dropped, RING_MSGS);
	unlink(path);
}
END_TEST

START_TEST(test_threads_written_or_counted)
{
	char path[] = "/tmp/check_dnstap.XXXXXX";
	pthread_t th[THREADS];
	dnstap_t *t = create_in_tmp(path, THREADS);
	unsigned long dropped;
	size_t written;

	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, flood, dnstap_queue(t, i)), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	dropped = dnstap_dropped(t);
	ck_assert_int_eq(dnstap_destroy(t), 0);
	written = read_back(path, NULL, NULL);
	ck_assert_uint_eq(written + dropped, THREADS * PER_THREAD);
	unlink(path);
}
END_TEST

/* Every wake-up arrives. The writer's own timer is set to an hour, so only
 * a worker's wake-up makes it write. A worker looks whether the writer
 * sleeps each time it has added DNSTAP_WAKE_BYTES, so at most twice that
 * (and the frames that crossed the line) may wait unwritten; each round
 * adds a bit more than DNSTAP_WAKE_BYTES and waits until no more than
 * that is left. A wake-up lost (libfstrm's I/O thread lost those sent
 * between its last look at its queues and its wait) or never sent leaves
 * a round waiting for the hour. */
START_TEST(test_every_wakeup_arrives)
{
	enum { ROUNDS = 400, MAX_LEFT = 2 * DNSTAP_WAKE_BYTES + 2 * 1500 };
	char path[] = "/tmp/check_dnstap.XXXXXX";
	struct sockaddr_storage up = addr4("127.0.0.1", 853);
	uint8_t msg[1000];
	dnstap_t *t = create_in_tmp(path, 1);
	dnstap_queue_t *q = dnstap_queue(t, 0);
	size_t sent = 0;

	memset(msg, 0, sizeof(msg));
	memcpy(msg, QUERY, sizeof(QUERY));
	dnstap_set_flush_seconds(t, 3600);
	for (int round = 0; round < ROUNDS; round++) {
		size_t before = sent;
		int waited_ms = 0;

		/* A varying overshoot, so the crossing frame's place moves. */
		while (sent - before < DNSTAP_WAKE_BYTES + (size_t)(round % 7) * 300) {
			dnstap_forwarder_response(q, &up, 1.0, 2.0, msg,
						  sizeof(msg) - (size_t)(round % 13));
			sent += sizeof(msg) + 100;
		}
		/* Spin, so that the next round races the writer's way to
		 * sleep; give up after 20 s. */
		for (long spins = 0; dnstap_queue_unwritten(q) > MAX_LEFT &&
				     waited_ms < 20000; spins++) {
			if (spins < 100000) {
				sched_yield();
				continue;
			}
			usleep(1000);
			waited_ms++;
		}
		ck_assert_msg(dnstap_queue_unwritten(q) <= MAX_LEFT,
			      "round %d: %zu bytes unwritten for 20 s: a lost wake-up",
			      round, dnstap_queue_unwritten(q));
	}
	ck_assert_uint_eq(dnstap_dropped(t), 0);
	ck_assert_int_eq(dnstap_destroy(t), 0);
	unlink(path);
}
END_TEST

/* ---- a Frame Streams collector on a unix socket, in a thread ---------- */

typedef struct collector {
	int lfd;
	int conns;                 /* connections to take, one after another */
	int cut_after;             /* the first connection: close after N frames */
	int frames[2];             /* data frames read, per connection */
	int finished[2];           /* STOP read and FINISH sent */
	int handshakes;
	char dir[32], sock[64];    /* the socket's directory and path */
	pthread_t thread;
} collector_t;

static int read_exact(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static uint32_t read_be32(int fd, int *ok)
{
	uint8_t b[4];

	*ok = read_exact(fd, b, 4) == 0;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The next control frame's type, -1 at the end or on a data frame. */
static int read_control(int fd)
{
	struct fstrm_control *c = fstrm_control_init();
	uint8_t buf[512];
	fstrm_control_type type;
	uint32_t len;
	int ok, res = -1;

	if (read_be32(fd, &ok) != 0 || !ok)
		goto out;
	len = read_be32(fd, &ok);
	if (!ok || len > sizeof(buf) || read_exact(fd, buf, len) < 0)
		goto out;
	if (fstrm_control_decode(c, buf, len, 0) == fstrm_res_success &&
	    fstrm_control_get_type(c, &type) == fstrm_res_success)
		res = (int)type;
out:
	fstrm_control_destroy(&c);
	return res;
}

static void send_control(int fd, fstrm_control_type type)
{
	struct fstrm_control *c = fstrm_control_init();
	uint8_t buf[512];
	size_t len = sizeof(buf);

	fstrm_control_set_type(c, type);
	if (type == FSTRM_CONTROL_ACCEPT)
		fstrm_control_add_field_content_type(c, (const uint8_t *)"protobuf:dnstap.Dnstap", 22);
	ck_assert_int_eq(fstrm_control_encode(c, buf, &len, FSTRM_CONTROL_FLAG_WITH_HEADER),
			 fstrm_res_success);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	fstrm_control_destroy(&c);
}

/* One connection: READY/ACCEPT/START, then data frames (each a dnstap
 * message) until STOP, answered with FINISH; or cut after `cut` frames. */
static void collect_one(collector_t *col, int fd, int k, int cut)
{
	uint8_t buf[70000];

	if (read_control(fd) != FSTRM_CONTROL_READY)
		return;
	send_control(fd, FSTRM_CONTROL_ACCEPT);
	if (read_control(fd) != FSTRM_CONTROL_START)
		return;
	col->handshakes++;
	for (;;) {
		int ok;
		uint32_t len = read_be32(fd, &ok);

		if (!ok)
			return;
		if (len == 0) {           /* a control frame: STOP */
			uint32_t clen = read_be32(fd, &ok);
			if (!ok || clen > sizeof(buf) || read_exact(fd, buf, clen) < 0)
				return;
			send_control(fd, FSTRM_CONTROL_FINISH);
			col->finished[k] = 1;
			return;
		}
		if (len > sizeof(buf) || read_exact(fd, buf, len) < 0)
			return;
		Dnstap__Dnstap *d = dnstap__dnstap__unpack(NULL, len, buf);
		ck_assert_ptr_nonnull(d);
		dnstap__dnstap__free_unpacked(d, NULL);
		if (__atomic_add_fetch(&col->frames[k], 1, __ATOMIC_RELAXED) == cut)
			return;
	}
}

static void *collector_main(void *arg)
{
	collector_t *col = arg;

	for (int k = 0; k < col->conns; k++) {
		int fd = accept(col->lfd, NULL, NULL);

		if (fd < 0)
			break;
		collect_one(col, fd, k, k == 0 ? col->cut_after : 0);
		close(fd);
	}
	return NULL;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

/* A collector thread listening in a new directory, and a dnstap with
 * nqueues queues connected to it. */
static dnstap_t *start_collector(collector_t *col, unsigned nqueues)
{
	char target[160], err[256];
	dnstap_t *t;

	snprintf(col->dir, sizeof(col->dir), "/tmp/check_dnstap.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(col->dir));
	snprintf(col->sock, sizeof(col->sock), "%s/tap.sock", col->dir);
	snprintf(target, sizeof(target), "unix:%s", col->sock);
	col->lfd = listen_unix(col->sock);
	ck_assert_int_eq(pthread_create(&col->thread, NULL, collector_main, col), 0);
	t = dnstap_create(target, nqueues, err, sizeof(err));
	ck_assert_msg(t != NULL, "%s", err);
	return t;
}

/* After dnstap_destroy(): the collector has finished; its files go. */
static void end_collector(collector_t *col)
{
	pthread_join(col->thread, NULL);
	close(col->lfd);
	unlink(col->sock);
	rmdir(col->dir);
}

/* unix:PATH speaks the bidirectional handshake, and ends with STOP and the
 * collector's FINISH; every message arrives as one data frame. */
START_TEST(test_unix_collector_handshake)
{
	struct sockaddr_storage client = addr4("127.0.0.7", 40000);
	collector_t col = { .conns = 1 };
	dnstap_t *t = start_collector(&col, 2);

	for (int i = 0; i < 10; i++)
		dnstap_client_query(dnstap_queue(t, (unsigned)i % 2), &client, 0,
				    1700000000.0, QUERY, sizeof(QUERY));
	ck_assert_int_eq(dnstap_destroy(t), 0);
	end_collector(&col);
	ck_assert_int_eq(col.handshakes, 1);
	ck_assert_int_eq(col.frames[0], 10);
	ck_assert_int_eq(col.finished[0], 1);
}
END_TEST

/* A collector that goes away: what cannot be written is counted as
 * dropped, and the writer connects again (every DNSTAP_OUT_REOPEN s) to
 * the next one, which gets a fresh handshake and the later messages. */
START_TEST(test_unix_collector_comes_back)
{
	struct sockaddr_storage client = addr4("127.0.0.7", 40000);
	collector_t col = { .conns = 2, .cut_after = 1 };
	unsigned long sent = 0, dropped;
	dnstap_t *t = start_collector(&col, 1);
	dnstap_queue_t *q = dnstap_queue(t, 0);

	/* The first collector takes one message and hangs up. */
	dnstap_client_query(q, &client, 0, 1700000000.0, QUERY, sizeof(QUERY));
	sent++;
	for (int i = 0; i < 400 && __atomic_load_n(&col.frames[0], __ATOMIC_RELAXED) == 0; i++)
		usleep(50000);
	/* Then one message every 50 ms until the second collector has one. */
	for (int i = 0; i < 400 && __atomic_load_n(&col.frames[1], __ATOMIC_RELAXED) == 0; i++) {
		dnstap_client_query(q, &client, 0, 1700000000.0, QUERY, sizeof(QUERY));
		sent++;
		usleep(50000);
	}
	dropped = dnstap_dropped(t);
	ck_assert_int_eq(dnstap_destroy(t), 0);
	end_collector(&col);
	ck_assert_int_eq(col.handshakes, 2);
	ck_assert_int_eq(col.frames[0], 1);
	ck_assert_int_ge(col.frames[1], 1);
	ck_assert_int_eq(col.finished[1], 1);
	/* Written or counted, but for what sat unread in the first
	 * connection when the collector closed it. */
	ck_assert_uint_ge(dropped, 1);
	ck_assert_uint_le(col.frames[0] + col.frames[1] + dropped, sent);
	ck_assert_uint_ge(col.frames[0] + col.frames[1] + dropped + 2, sent);
}
END_TEST

START_TEST(test_bad_targets)
{
	char err[256];

	ck_assert_ptr_null(dnstap_create("tcp:127.0.0.1", 1, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "file:PATH or unix:PATH"));
	ck_assert_ptr_null(dnstap_create("file:/nonexistent-dir/x", 1, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
	ck_assert_int_eq(dnstap_destroy(NULL), 0);
}
END_TEST

static Suite *dnstap_suite(void)
{
	Suite *s = suite_create("dnstap");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_four_types_read_back);
	tcase_add_test(tc, test_threads_written_or_counted);
	tcase_add_test(tc, test_encoder_matches_protobuf_c);
	tcase_add_test(tc, test_ring_wraps_without_tearing);
	tcase_add_test(tc, test_bad_targets);
	tcase_add_test(tc, test_every_wakeup_arrives);
	tcase_add_test(tc, test_unix_collector_handshake);
	tcase_add_test(tc, test_unix_collector_comes_back);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dnstap_suite)
