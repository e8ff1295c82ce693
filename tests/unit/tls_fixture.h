/* Test PKI made at test time, shared by the suites that run a real TLS
 * peer (check_tls_io, check_dot_conn, check_upstream, check_query): one
 * self-signed ECDSA certificate for FIXTURE_AUTH_NAME that the client
 * trusts as its only anchor and the server presents as its whole chain. */
#ifndef TLS_FIXTURE_H
#define TLS_FIXTURE_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "dotstub/tls.h"

#define FIXTURE_AUTH_NAME "cloudflare-dns.com"

/* ck_assert that a GnuTLS call succeeded, naming it. */
void gnutls_ok(int rc, const char *what);

/* A fresh key and certificate (the caller deinits both). */
void fixture_make_cert(gnutls_x509_privkey_t *key, gnutls_x509_crt_t *crt);

/* crt in PEM in a new temporary file; its path (PATH_MAX) goes to path.
 * The caller unlinks it. */
void fixture_write_pem(gnutls_x509_crt_t crt, char *path, size_t cap);

/* A client context whose only anchor is crt. */
tls_ctx_t *fixture_client_ctx(gnutls_x509_crt_t crt);

/* A non-blocking server session of the test policy (TLS 1.3/1.2, ALPN
 * "dot") over cred, issuing session tickets under ticket_key unless it is
 * NULL. The caller sets its transport. */
void fixture_server_session(gnutls_session_t *s,
			    gnutls_certificate_credentials_t cred,
			    const gnutls_datum_t *ticket_key);

/* A growable byte buffer. */
struct bytes {
	uint8_t *data;
	size_t len, cap;
};

void bytes_add(struct bytes *b, const void *data, size_t len);
void bytes_free(struct bytes *b);

#endif
