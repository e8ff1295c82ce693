#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dotstub/xmalloc.h"

#include "tls_fixture.h"

void gnutls_ok(int rc, const char *what)
{
	ck_assert_msg(rc >= 0, "%s: %s", what, gnutls_strerror(rc));
}

void fixture_make_cert(gnutls_x509_privkey_t *key, gnutls_x509_crt_t *crt)
{
	static const unsigned char serial[] = { 0x01, 0x23, 0x45, 0x67 };
	static const char name[] = FIXTURE_AUTH_NAME;
	time_t now = time(NULL);

	gnutls_ok(gnutls_x509_privkey_init(key), "privkey_init");
	gnutls_ok(gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA,
		GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), "privkey_generate");
	gnutls_ok(gnutls_x509_crt_init(crt), "crt_init");
	gnutls_ok(gnutls_x509_crt_set_version(*crt, 3), "set_version");
	gnutls_ok(gnutls_x509_crt_set_serial(*crt, serial, sizeof(serial)), "set_serial");
	gnutls_ok(gnutls_x509_crt_set_activation_time(*crt, now - 3600), "set_activation");
	gnutls_ok(gnutls_x509_crt_set_expiration_time(*crt, now + 86400), "set_expiration");
	gnutls_ok(gnutls_x509_crt_set_dn_by_oid(*crt, GNUTLS_OID_X520_COMMON_NAME, 0,
		name, strlen(name)), "set_dn");
	gnutls_ok(gnutls_x509_crt_set_subject_alt_name(*crt, GNUTLS_SAN_DNSNAME,
		name, strlen(name), GNUTLS_FSAN_SET), "set_san");
	gnutls_ok(gnutls_x509_crt_set_basic_constraints(*crt, 1, -1), "set_ca");
	gnutls_ok(gnutls_x509_crt_set_key_usage(*crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
		GNUTLS_KEY_KEY_CERT_SIGN), "set_key_usage");
	gnutls_ok(gnutls_x509_crt_set_key(*crt, *key), "set_key");
	gnutls_ok(gnutls_x509_crt_sign2(*crt, *crt, *key, GNUTLS_DIG_SHA256, 0), "sign");
}

void fixture_write_pem(gnutls_x509_crt_t crt, char *path, size_t cap)
{
	gnutls_datum_t pem = { NULL, 0 };
	int fd;

	ck_assert_uint_gt(cap, sizeof("/tmp/dotstub_ca_XXXXXX"));
	snprintf(path, cap, "/tmp/dotstub_ca_XXXXXX");
	gnutls_ok(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem), "export");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, pem.data, pem.size), (ssize_t)pem.size);
	close(fd);
	gnutls_free(pem.data);
}

/* The client context reads its anchors from a file: write one, load it,
 * and remove it at once. */
tls_ctx_t *fixture_client_ctx(gnutls_x509_crt_t crt)
{
	char path[64], err[256] = "";
	tls_ctx_t *ctx;

	fixture_write_pem(crt, path, sizeof(path));
	ctx = tls_ctx_create(path, err, sizeof(err));
	unlink(path);
	ck_assert_msg(ctx != NULL, "tls_ctx_create: %s", err);
	return ctx;
}

void fixture_server_session(gnutls_session_t *s,
			    gnutls_certificate_credentials_t cred,
			    const gnutls_datum_t *ticket_key)
{
	static const gnutls_datum_t alpn = { (unsigned char *)"dot", 3 };

	gnutls_ok(gnutls_init(s, GNUTLS_SERVER | GNUTLS_NONBLOCK), "server init");
	/* Without it GnuTLS on bookworm still offers TLS 1.1. */
	gnutls_ok(gnutls_priority_set_direct(*s,
		"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", NULL), "server priority");
	gnutls_ok(gnutls_credentials_set(*s, GNUTLS_CRD_CERTIFICATE, cred),
		  "server credentials");
	gnutls_ok(gnutls_alpn_set_protocols(*s, &alpn, 1, 0), "server alpn");
	/* Tickets make the server send NewSessionTicket records after the
	 * handshake (and on demand, gnutls_session_ticket_send). */
	if (ticket_key)
		gnutls_ok(gnutls_session_ticket_enable_server(*s, ticket_key), "tickets");
}

void bytes_add(struct bytes *b, const void *data, size_t len)
{
	if (len == 0)
		return;  /* data may be NULL; memcpy must not see it */
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void bytes_free(struct bytes *b)
{
	free(b->data);
	*b = (struct bytes){ NULL, 0, 0 };
}
