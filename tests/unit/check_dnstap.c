/* dnstap: what the module writes reads back with libfstrm's reader and
 * protobuf-c (the fields a dnstap reader needs, per type), from several
 * worker threads at once, with every message either written or counted
 * as dropped. Built only with dnstap. */
#include <arpa/inet.h>
#include <check.h>
#include <fstrm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnstap.pb-c.h"
#include "dotstub/dnstap.h"

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

START_TEST(test_four_types_read_back)
{
	char path[] = "/tmp/check_dnstap.XXXXXX", target[64], err[256];
	int fd = mkstemp(path), seen[16] = { 0 };
	struct sockaddr_storage client = addr4("127.0.0.7", 40000);
	struct sockaddr_storage up = addr6("::1", 853);
	dnstap_t *t;
	dnstap_queue_t *q;

	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(target, sizeof(target), "file:%s", path);
	t = dnstap_create(target, 1, err, sizeof(err));
	ck_assert_msg(t != NULL, "%s", err);
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
START_TEST(test_threads_written_or_counted)
{
	char path[] = "/tmp/check_dnstap.XXXXXX", target[64], err[256];
	int fd = mkstemp(path);
	pthread_t th[THREADS];
	dnstap_t *t;
	unsigned long dropped;
	size_t written;

	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(target, sizeof(target), "file:%s", path);
	t = dnstap_create(target, THREADS, err, sizeof(err));
	ck_assert_msg(t != NULL, "%s", err);
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
	tcase_add_test(tc, test_bad_targets);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dnstap_suite)
