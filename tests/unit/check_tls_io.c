/* tls I/O: the client session's read-ahead, over a real socket pair, against
 * an in-process GnuTLS server driven step by step in the same thread.
 *
 * The client does one recv() of up to 16 KiB and hands GnuTLS records out of
 * that buffer. Bytes parked there are invisible to poll(), so the contract is:
 * tls_session_recv answers TLS_AGAIN_* only when the buffer is empty, and
 * tls_session_pending counts the buffered bytes. Nothing here ever polls:
 * whatever the server wrote must come out of tls_session_recv calls alone,
 * and at TLS_AGAIN_INPUT nothing may be left behind.
 *
 * The server's output is captured in memory (its push function) and written
 * to the socket by the test, so the test decides which bytes share a read:
 * that is how a TLS 1.3 NewSessionTicket (after which GnuTLS answers
 * GNUTLS_E_AGAIN although more records may follow) is made to arrive alone,
 * with the next records, or cut in two. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dotstub/tls.h"

#include "check_main.h"
#include "tls_fixture.h"

#define AUTH_NAME FIXTURE_AUTH_NAME
#define MAX_RECORD 16384 /* TLS plaintext limit: one gnutls_record_send */

/* ---- the server: reads the socket, writes into memory ------------------ */

struct server {
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t ticket_key;
	int fd;
	struct bytes out; /* what GnuTLS wrote, not yet on the socket */
};

static ssize_t server_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct server *srv = ptr;
	ssize_t n = recv(srv->fd, data, len, MSG_DONTWAIT);

	if (n < 0)
		gnutls_transport_set_errno(srv->s, errno);
	return n;
}

static ssize_t server_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	struct server *srv = ptr;

	bytes_add(&srv->out, data, len);
	return (ssize_t)len;
}

static void server_open(struct server *srv, int fd, gnutls_x509_crt_t crt,
			gnutls_x509_privkey_t key, int tickets)
{
	*srv = (struct server){ .fd = fd };
	gnutls_ok(gnutls_certificate_allocate_credentials(&srv->cred), "server cred");
	gnutls_ok(gnutls_certificate_set_x509_key(srv->cred, &crt, 1, key), "server key");
	if (tickets)
		gnutls_ok(gnutls_session_ticket_key_generate(&srv->ticket_key), "ticket key");
	fixture_server_session(&srv->s, srv->cred, tickets ? &srv->ticket_key : NULL);
	gnutls_transport_set_ptr(srv->s, srv);
	gnutls_transport_set_pull_function(srv->s, server_pull);
	gnutls_transport_set_push_function(srv->s, server_push);
}

static void server_close(struct server *srv)
{
	gnutls_deinit(srv->s);
	gnutls_certificate_free_credentials(srv->cred);
	gnutls_free(srv->ticket_key.data);
	bytes_free(&srv->out);
}

/* One application record, into srv->out. */
static void server_send(struct server *srv, const void *data, size_t len)
{
	ssize_t n = gnutls_record_send(srv->s, data, len);

	ck_assert_msg(n == (ssize_t)len, "server record_send: %zd", n);
}

static void write_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		ck_assert_msg(n > 0, "write: %s", strerror(errno));
		data += n;
		len -= (size_t)n;
	}
}

/* Put everything the server has written on the socket, in one write. */
static void server_flush(struct server *srv)
{
	write_all(srv->fd, srv->out.data, srv->out.len);
	srv->out.len = 0;
}

/* ---- a connected client and server ------------------------------------- */

struct pair {
	struct server srv;
	tls_ctx_t *ctx;
	tls_session_t *cli;
	int cli_fd;
};

/* Alternate non-blocking steps of both handshakes until both are done. */
static void handshake(struct pair *p)
{
	int cli_done = 0, srv_done = 0;

	for (int step = 0; step < 50 && !(cli_done && srv_done); step++) {
		if (!cli_done) {
			tls_status_t st = tls_session_handshake(p->cli);
			ck_assert_msg(st == TLS_OK || st == TLS_AGAIN_INPUT ||
				      st == TLS_AGAIN_OUTPUT,
				      "client handshake: %s", tls_session_error(p->cli));
			cli_done = st == TLS_OK;
		}
		if (!srv_done) {
			int rc = gnutls_handshake(p->srv.s);
			ck_assert_msg(rc == 0 || !gnutls_error_is_fatal(rc),
				      "server handshake: %s", gnutls_strerror(rc));
			srv_done = rc == 0;
		}
		server_flush(&p->srv);
	}
	ck_assert_msg(cli_done && srv_done, "handshake did not finish");
	/* Tickets arrive after the handshake only in TLS 1.3. */
	ck_assert_int_eq(gnutls_protocol_get_version(p->srv.s), GNUTLS_TLS1_3);
}

static void pair_open(struct pair *p, int tickets)
{
	static const tls_peer_t peer = { .auth_name = AUTH_NAME };
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	char err[256] = "";
	int sv[2];

	fixture_make_cert(&key, &crt);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
	p->cli_fd = sv[0];
	p->ctx = fixture_client_ctx(crt);
	p->cli = tls_session_create(p->ctx, sv[0], &peer, err, sizeof(err));
	ck_assert_msg(p->cli != NULL, "tls_session_create: %s", err);
	server_open(&p->srv, sv[1], crt, key, tickets); /* copies crt and key */
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	handshake(p);
}

static void pair_close(struct pair *p)
{
	tls_session_destroy(p->cli);
	tls_ctx_destroy(p->ctx);
	close(p->cli_fd);
	close(p->srv.fd);
	server_close(&p->srv);
}

/* Call tls_session_recv until it asks to wait, appending what it delivers,
 * and return tls_session_pending() at that point: the callers require 0,
 * since a caller would now wait for readability and those bytes would never
 * be announced. No poll() anywhere. */
static size_t client_read_until_again(struct pair *p, struct bytes *got)
{
	uint8_t buf[MAX_RECORD];

	for (int calls = 0; calls < 1000; calls++) {
		size_t n = 0;
		tls_status_t st = tls_session_recv(p->cli, buf, sizeof(buf), &n);

		if (st != TLS_OK) {
			ck_assert_msg(st == TLS_AGAIN_INPUT, "client recv: status %d: %s",
				      (int)st, tls_session_error(p->cli));
			return tls_session_pending(p->cli);
		}
		ck_assert_uint_gt(n, 0);
		bytes_add(got, buf, n);
	}
	ck_abort_msg("tls_session_recv never asked to wait");
	return 0;
}

static void assert_bytes_eq(const struct bytes *got, const char *want)
{
	ck_assert_msg(got->len == strlen(want) && memcmp(got->data, want, got->len) == 0,
		      "got '%.*s', want '%s'", (int)got->len,
		      got->len ? (const char *)got->data : "", want);
}

/* ---- cases ------------------------------------------------------------- */

/* Three records in one write: the first recv() reads all three, so after
 * the first record the other two sit in the read-ahead, and must be
 * delivered without any new socket event. */
START_TEST(test_three_records_in_one_read)
{
	struct pair p;
	struct bytes got = { NULL, 0, 0 };
	uint8_t buf[64];
	size_t n = 0;

	pair_open(&p, 0);
	server_send(&p.srv, "first", 5);
	server_send(&p.srv, "second", 6);
	server_send(&p.srv, "third", 5);
	server_flush(&p.srv);

	ck_assert_int_eq(tls_session_recv(p.cli, buf, sizeof(buf), &n), TLS_OK);
	bytes_add(&got, buf, n);
	assert_bytes_eq(&got, "first");
	ck_assert_msg(tls_session_pending(p.cli) > 0,
		      "two records are read ahead, but pending() says 0");
	ck_assert_uint_eq(client_read_until_again(&p, &got), 0);
	assert_bytes_eq(&got, "firstsecondthird");

	bytes_free(&got);
	pair_close(&p);
}
END_TEST

/* One record, read; then two more in one write: both come out of one new
 * read without waiting in between. */
START_TEST(test_one_then_two_records)
{
	struct pair p;
	struct bytes got = { NULL, 0, 0 };

	pair_open(&p, 0);
	server_send(&p.srv, "first", 5);
	server_flush(&p.srv);
	ck_assert_uint_eq(client_read_until_again(&p, &got), 0);
	assert_bytes_eq(&got, "first");

	got.len = 0;
	server_send(&p.srv, "second", 6);
	server_send(&p.srv, "third", 5);
	server_flush(&p.srv);
	ck_assert_uint_eq(client_read_until_again(&p, &got), 0);
	assert_bytes_eq(&got, "secondthird");

	bytes_free(&got);
	pair_close(&p);
}
END_TEST

/* What the server wrote for one round of case 3, with the record bounds:
 * wire_end[i] is where record i ends on the wire, app_end[i] how many
 * application bytes the records up to and including i carry. */
struct batch {
	struct bytes app;
	size_t nrec;
	size_t wire_end[8], app_end[8];
};

static void batch_mark(struct batch *b, const struct server *srv)
{
	b->wire_end[b->nrec] = srv->out.len;
	b->app_end[b->nrec] = b->app.len;
	b->nrec++;
}

static void batch_ticket(struct batch *b, struct server *srv)
{
	gnutls_ok(gnutls_session_ticket_send(srv->s, 1, 0), "ticket_send");
	batch_mark(b, srv);
}

/* An application record of len bytes whose content depends on seed, so
 * that a lost, repeated or reordered byte shows. */
static void batch_record(struct batch *b, struct server *srv, size_t len, unsigned seed)
{
	uint8_t data[MAX_RECORD] = { 0 };

	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(seed * 31u + i * 7u + (i >> 8));
	server_send(srv, data, len);
	bytes_add(&b->app, data, len);
	batch_mark(b, srv);
}

/* Application bytes carried by the records that end within wire[0, at). */
static size_t batch_app_before(const struct batch *b, size_t at)
{
	size_t app = 0;

	for (size_t i = 0; i < b->nrec && b->wire_end[i] <= at; i++)
		app = b->app_end[i];
	return app;
}

/* The next place after k to cut a batch of total bytes: every byte of a
 * short batch, a sample of a long one, always around each record boundary,
 * and finally total itself (the whole batch in one write). */
static size_t next_split(const struct batch *b, size_t k, size_t total)
{
	size_t stride = total / 300 + 1;

	while (++k < total) {
		if (k % stride == 0)
			return k;
		for (size_t i = 0; i < b->nrec; i++)
			if (k + 3 >= b->wire_end[i] && k <= b->wire_end[i] + 3)
				return k;
	}
	return total;
}

/* Deliver wire[from, to) in one write and read until the client asks to
 * wait: it must have delivered every application byte of the complete
 * records so far, and hold nothing back. */
static void deliver(struct pair *p, const struct bytes *wire, const struct batch *b,
		    size_t from, size_t to, struct bytes *got, const char *what)
{
	size_t pending, want;

	write_all(p->srv.fd, wire->data + from, to - from);
	pending = client_read_until_again(p, got);
	want = batch_app_before(b, to);
	ck_assert_msg(pending == 0,
		      "%s: TLS_AGAIN_INPUT with %zu bytes pending (wire %zu of %zu)",
		      what, pending, to, wire->len);
	ck_assert_msg(got->len == want &&
		      (want == 0 || memcmp(got->data, b->app.data, want) == 0),
		      "%s: %zu of %zu application bytes delivered, want %zu (wire %zu of %zu)",
		      what, got->len, b->app.len, want, to, wire->len);
}

/* Tickets mixed with application records, the wire cut in two at many
 * points: a ticket alone in one read, a ticket with records behind it in
 * the same read, a ticket or record cut across two reads. GnuTLS answers
 * GNUTLS_E_AGAIN after a post-handshake message even with records read
 * ahead behind it; the session must go on reading them. */
START_TEST(test_tickets_split_reads)
{
	static const size_t sizes[][2] = {
		{ 1, 1 }, { 40, 300 }, { 1000, 17 }, { 5000, 5000 }, { MAX_RECORD, 100 },
	};
	struct pair p;
	struct bytes got = { NULL, 0, 0 }, wire = { NULL, 0, 0 }, ticket = { NULL, 0, 0 };
	uint8_t *t;
	size_t tlen, rounds = 0;
	unsigned seed = 0;

	pair_open(&p, 1);
	/* The tickets sent with the handshake. */
	ck_assert_uint_eq(client_read_until_again(&p, &got), 0);
	ck_assert_uint_eq(got.len, 0);
	ck_assert_msg(tls_session_take_ticket(p.cli, &t, &tlen), "no ticket after the handshake");
	bytes_add(&ticket, t, tlen);
	free(t);
	while (tls_session_take_ticket(p.cli, &t, &tlen))
		free(t);

	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		/* One fresh batch per cut: the client must see every record the
		 * server sealed, in order, or decryption fails. */
		size_t k = 0;

		do {
			struct batch b = { .nrec = 0 };
			char what[96];

			/* ticket, record, two tickets in a row, record */
			batch_ticket(&b, &p.srv);
			batch_record(&b, &p.srv, sizes[z][0], seed++);
			batch_ticket(&b, &p.srv);
			batch_ticket(&b, &p.srv);
			batch_record(&b, &p.srv, sizes[z][1], seed++);
			wire.len = 0;
			bytes_add(&wire, p.srv.out.data, p.srv.out.len);
			p.srv.out.len = 0;
			k = next_split(&b, k, wire.len);

			snprintf(what, sizeof(what), "records %zu+%zu, cut at %zu",
				 sizes[z][0], sizes[z][1], k);
			got.len = 0;
			deliver(&p, &wire, &b, 0, k, &got, what);
			deliver(&p, &wire, &b, k, wire.len, &got, what);
			/* The tickets were read, not skipped: three new ones, each
			 * handed out once, none equal to the one before it. */
			for (int n = 0; n < 3; n++) {
				ck_assert_msg(tls_session_take_ticket(p.cli, &t, &tlen),
					      "%s: ticket %d of 3 missing", what, n + 1);
				ck_assert_msg(tlen != ticket.len ||
					      memcmp(t, ticket.data, tlen) != 0,
					      "%s: ticket %d of 3 is the one before", what, n + 1);
				ticket.len = 0;
				bytes_add(&ticket, t, tlen);
				free(t);
			}
			ck_assert_msg(!tls_session_take_ticket(p.cli, &t, &tlen),
				      "%s: a ticket handed out twice, or one too many", what);
			bytes_free(&b.app);
			rounds++;
		} while (k < wire.len);
	}
	ck_assert_uint_gt(rounds, 1000);

	bytes_free(&got);
	bytes_free(&wire);
	bytes_free(&ticket);
	pair_close(&p);
}
END_TEST

/* A server may send any number of tickets: the session keeps the newest
 * TLS_TICKETS_MAX, and hands each out once. */
START_TEST(test_tickets_bounded_each_once)
{
	struct pair p;
	struct bytes got = { NULL, 0, 0 };
	struct bytes seen[TLS_TICKETS_MAX + 1] = { { NULL, 0, 0 } };
	uint8_t *t;
	size_t tlen, n = 0;

	pair_open(&p, 1);
	ck_assert_uint_eq(client_read_until_again(&p, &got), 0);
	while (tls_session_take_ticket(p.cli, &t, &tlen))
		free(t);
	gnutls_ok(gnutls_session_ticket_send(p.srv.s, TLS_TICKETS_MAX + 5, 0),
		  "ticket_send");
	server_flush(&p.srv);
	ck_assert_uint_eq(client_read_until_again(&p, &got), 0);
	while (n <= TLS_TICKETS_MAX && tls_session_take_ticket(p.cli, &t, &tlen)) {
		for (size_t i = 0; i < n; i++)
			ck_assert_msg(seen[i].len != tlen || memcmp(seen[i].data, t, tlen) != 0,
				      "ticket %zu is ticket %zu again", n, i);
		bytes_add(&seen[n++], t, tlen);
		free(t);
	}
	ck_assert_uint_eq(n, TLS_TICKETS_MAX);
	ck_assert_uint_eq(got.len, 0);
	for (size_t i = 0; i < n; i++)
		bytes_free(&seen[i]);
	bytes_free(&got);
	pair_close(&p);
}
END_TEST

static Suite *tls_io_suite(void)
{
	Suite *s = suite_create("tls_io");
	TCase *tc = tcase_create("read_ahead");

	/* Case 3 runs ~1500 handshake-free rounds: under a second even with
	 * ASan, but leave room for a slow CI machine. */
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_three_records_in_one_read);
	tcase_add_test(tc, test_one_then_two_records);
	tcase_add_test(tc, test_tickets_split_reads);
	tcase_add_test(tc, test_tickets_bounded_each_once);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(tls_io_suite)
