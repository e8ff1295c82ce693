#include "config.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "dotstub/tls.h"
#include "dotstub/xmalloc.h"

/* GnuTLS's default priority on bookworm still negotiates TLS 1.1 with a
 * willing server, so the policy is spelled out. */
static const char PRIORITY[] =
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
	"-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:"
	"-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
	"-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"
	/* NORMAL still lets a TLS 1.2 server sign the handshake with SHA-1. */
	"-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1:"
	"%PROFILE_MEDIUM";

struct tls_ctx {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
};

/* Socket bytes read ahead of GnuTLS. GnuTLS reads a record's header and
 * then its body, two recv calls per record, and a DoT server writes one
 * record per answer: under load that was two system calls per query. One
 * recv now fills this, and the records come out of it. */
#define TLS_READ_AHEAD 16384

/* Longest path from the leaf to a trust anchor that is followed; GnuTLS's
 * own verification depth limit is the same. */
#define TLS_MAX_PATH 16

/* The path verification took: which sent certificates are on it, and the
 * trust anchor that validated it (from the trust list: the server need
 * not send it). Pins are matched against this, never against what the
 * server merely sent. */
typedef struct {
	int ok;                          /* leaf to anchor, every link checked */
	unsigned nsent;                  /* certificates looked at */
	unsigned char on_path[TLS_MAX_PATH];
	unsigned char has_pin[TLS_MAX_PATH];  /* pin[i] holds sent[i]'s key */
	uint8_t pin[TLS_MAX_PATH][TLS_PIN_LEN];
	gnutls_x509_crt_t anchor;        /* a copy, or NULL: the last
					  * certificate on the path is itself
					  * in the trust list */
} verified_path_t;

struct tls_session {
	gnutls_session_t s;
	tls_ctx_t *ctx;
	int fd;
	size_t in_pos, in_len;   /* unread bytes: in[in_pos, in_len) */
	unsigned long in_taken;  /* bytes GnuTLS has taken, ever */
	uint8_t *in;             /* TLS_READ_AHEAD bytes */
	tls_peer_t peer;
	int send_again;      /* a record is half sent: finish it first */
	/* Verification verdict, kept for the error text and --probe. */
	int verified;        /* the callback ran */
	unsigned status;     /* gnutls_certificate_status_t bits */
	int pin_match;       /* index of the pin that matched, -1 none */
	verified_path_t path;
	time_t leaf_expiry;  /* notAfter of the leaf the server sent */
	/* Tickets received and not yet taken, oldest first. */
	gnutls_datum_t tickets[TLS_TICKETS_MAX];
	size_t ntickets;
	char error[256];
};

int tls_pin_parse(const char *text, tls_pin_t *pin)
{
	gnutls_datum_t in, out = { NULL, 0 };
	int ok;

	if (strncmp(text, "pin-sha256:", 11) == 0)
		text += 11;
	if (strlen(text) != TLS_PIN_B64_LEN)
		return -EINVAL;
	in.data = (unsigned char *)text;
	in.size = TLS_PIN_B64_LEN;
	if (gnutls_base64_decode2(&in, &out) < 0)
		return -EINVAL;
	ok = out.size == TLS_PIN_LEN;
	if (ok)
		memcpy(pin->sha256, out.data, TLS_PIN_LEN);
	gnutls_free(out.data);
	return ok ? 0 : -EINVAL;
}

void tls_pin_format(const tls_pin_t *pin, char *buf, size_t cap)
{
	gnutls_datum_t in = { (unsigned char *)pin->sha256, TLS_PIN_LEN };
	gnutls_datum_t out = { NULL, 0 };

	buf[0] = '\0';
	if (gnutls_base64_encode2(&in, &out) < 0)
		return;
	snprintf(buf, cap, "%.*s", (int)out.size, out.data);
	gnutls_free(out.data);
}

tls_ctx_t *tls_ctx_create(const char *ca_file, char *err, size_t errlen)
{
	tls_ctx_t *ctx = xcalloc(1, sizeof(*ctx));
	const char *where = NULL;
	int n;

	if (gnutls_certificate_allocate_credentials(&ctx->cred) < 0) {
		snprintf(err, errlen, "cannot allocate TLS credentials");
		goto fail;
	}
	if (ca_file)
		n = gnutls_certificate_set_x509_trust_file(ctx->cred, ca_file,
							   GNUTLS_X509_FMT_PEM);
	else
		n = gnutls_certificate_set_x509_system_trust(ctx->cred);
	if (n <= 0) {
		snprintf(err, errlen, "%s: %s", ca_file ? ca_file : "system trust store",
			 n < 0 ? gnutls_strerror(n) : "no certificate found");
		goto fail;
	}
	n = gnutls_priority_init(&ctx->prio, PRIORITY, &where);
	if (n < 0) {
		snprintf(err, errlen, "TLS priority string rejected at '%s': %s",
			 where ? where : "?", gnutls_strerror(n));
		goto fail;
	}
	return ctx;
fail:
	tls_ctx_destroy(ctx);
	return NULL;
}

void tls_ctx_destroy(tls_ctx_t *ctx)
{
	if (!ctx)
		return;
	if (ctx->prio)
		gnutls_priority_deinit(ctx->prio);
	if (ctx->cred)
		gnutls_certificate_free_credentials(ctx->cred);
	free(ctx);
}

/* The SPKI SHA-256 of crt into id; 0, or -1 when it cannot be had. */
static int crt_pin(gnutls_x509_crt_t crt, uint8_t id[TLS_PIN_LEN])
{
	size_t idlen = TLS_PIN_LEN;

	if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, id, &idlen) < 0 ||
	    idlen != TLS_PIN_LEN)
		return -1;
	return 0;
}

/* 1 when issuer issued and signed crt (the issuer taken as trusted). */
static int signed_by(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer)
{
	unsigned status = 0;

	return gnutls_x509_crt_check_issuer(crt, issuer) &&
	       gnutls_x509_crt_verify(crt, &issuer, 1, 0, &status) >= 0 &&
	       status == 0;
}

static gnutls_x509_trust_list_t trust_list(tls_session_t *ts)
{
	gnutls_x509_trust_list_t tl = NULL;

	gnutls_certificate_get_trust_list(ts->ctx->cred, &tl);
	return tl;
}

/* A trust anchor that signed crt (crt itself when it is a self-signed
 * anchor), or NULL. */
static gnutls_x509_crt_t anchor_of(tls_session_t *ts, gnutls_x509_crt_t crt)
{
	gnutls_x509_trust_list_t tl = trust_list(ts);
	gnutls_x509_crt_t issuer = NULL;

	if (!tl || gnutls_x509_trust_list_get_issuer(tl, crt, &issuer,
						     GNUTLS_TL_GET_COPY) < 0)
		return NULL;
	if (gnutls_x509_crt_equals(crt, issuer) || signed_by(crt, issuer))
		return issuer;
	gnutls_x509_crt_deinit(issuer);
	return NULL;
}

/* 1 when the trust list accepts crt on its own: a server certificate the
 * user put in the CA file itself is an anchor, as GnuTLS treats it. */
static int trusted_alone(tls_session_t *ts, gnutls_x509_crt_t crt)
{
	gnutls_x509_trust_list_t tl = trust_list(ts);
	unsigned status = 1;

	return tl && gnutls_x509_trust_list_verify_crt2(tl, &crt, 1, NULL, 0, 0,
							 &status, NULL) >= 0 &&
	       status == 0;
}

/* Rebuild the path GnuTLS verified, as it does: from the leaf, stop at the
 * first certificate a trust anchor signed (or that is one); otherwise go on
 * to a sent certificate that issued and signed this one. The result is a
 * chain of checked signatures from the leaf to an anchor, so a certificate
 * the server appended without being on it can satisfy no pin. */
static void build_path(tls_session_t *ts, gnutls_x509_crt_t *sent, unsigned n)
{
	verified_path_t *p = &ts->path;
	unsigned cur = 0;

	p->nsent = n;
	p->on_path[0] = 1;
	for (unsigned depth = 0; depth < n; depth++) {
		unsigned next = n;

		p->anchor = anchor_of(ts, sent[cur]);
		if (p->anchor || trusted_alone(ts, sent[cur])) {
			p->ok = 1;
			return;
		}
		for (unsigned i = 0; i < n && next == n; i++)
			if (!p->on_path[i] && signed_by(sent[cur], sent[i]))
				next = i;
		if (next == n)
			return;
		p->on_path[next] = 1;
		cur = next;
	}
}

/* Import what the server sent (at most TLS_MAX_PATH certificates, which is
 * all GnuTLS follows) and build the verified path from it. */
static void find_path(tls_session_t *ts)
{
	unsigned n = 0, got = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(ts->s, &n);
	gnutls_x509_crt_t sent[TLS_MAX_PATH];

	if (!chain || n == 0)
		return;
	if (n > TLS_MAX_PATH)
		n = TLS_MAX_PATH;
	for (; got < n; got++) {
		if (gnutls_x509_crt_init(&sent[got]) < 0)
			break;
		if (gnutls_x509_crt_import(sent[got], &chain[got], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(sent[got]);
			break;
		}
	}
	/* An unreadable certificate ends the path where it stands. */
	if (got > 0) {
		build_path(ts, sent, got);
		ts->leaf_expiry = gnutls_x509_crt_get_expiration_time(sent[0]);
	}
	for (unsigned i = 0; i < got; i++) {
		if (ts->path.ok && ts->path.on_path[i])
			ts->path.has_pin[i] = crt_pin(sent[i], ts->path.pin[i]) == 0;
		gnutls_x509_crt_deinit(sent[i]);
	}
}

static int pin_index(const tls_session_t *ts, const uint8_t id[TLS_PIN_LEN])
{
	for (size_t p = 0; p < ts->peer.npins; p++)
		if (memcmp(ts->peer.pins[p].sha256, id, TLS_PIN_LEN) == 0)
			return (int)p;
	return -1;
}

/* Index of the pin matching a certificate of the verified path (leaf,
 * intermediates, anchor), or -1. */
static int match_pins(tls_session_t *ts)
{
	uint8_t id[TLS_PIN_LEN];
	int found = -1;

	if (!ts->path.ok)
		return -1;
	if (ts->path.anchor && crt_pin(ts->path.anchor, id) == 0)
		found = pin_index(ts, id);
	for (unsigned i = 0; found < 0 && i < ts->path.nsent; i++)
		if (ts->path.has_pin[i])
			found = pin_index(ts, ts->path.pin[i]);
	return found;
}

static void explain_status(tls_session_t *ts)
{
	gnutls_datum_t txt = { NULL, 0 };

	if (gnutls_certificate_verification_status_print(
		    ts->status, GNUTLS_CRT_X509, &txt, 0) < 0) {
		snprintf(ts->error, sizeof(ts->error), "certificate rejected");
		return;
	}
	snprintf(ts->error, sizeof(ts->error), "certificate rejected: %s",
		 (const char *)txt.data);
	gnutls_free(txt.data);
}

/* One callback checks name, key purpose, trust and pins:
 * gnutls_session_set_verify_cert would replace it, and pins need the
 * verified path anyway. */
static int verify_peer(gnutls_session_t s)
{
	tls_session_t *ts = gnutls_session_get_ptr(s);
	gnutls_typed_vdata_st want[2] = {
		{ .type = GNUTLS_DT_DNS_HOSTNAME,
		  .data = (void *)(ts->peer.auth_name ? ts->peer.auth_name
						       : ts->peer.ip_text) },
		/* A certificate for code signing is no server's. */
		{ .type = GNUTLS_DT_KEY_PURPOSE_OID,
		  .data = (void *)GNUTLS_KP_TLS_WWW_SERVER },
	};
	int rc = gnutls_certificate_verify_peers(s, want, 2, &ts->status);

	ts->verified = 1;
	if (rc < 0) {
		snprintf(ts->error, sizeof(ts->error),
			 "certificate verification error: %s", gnutls_strerror(rc));
		return -1;
	}
	find_path(ts);
	ts->pin_match = ts->peer.npins ? match_pins(ts) : -1;
	if (ts->status != 0) {
		explain_status(ts);
		return -1;
	}
	if (!ts->path.ok) {
		/* GnuTLS accepted a path this code cannot find: refuse rather
		 * than match pins against something else. */
		snprintf(ts->error, sizeof(ts->error),
			 "no verified path from the certificate to a trust anchor");
		return -1;
	}
	if (ts->peer.npins && ts->pin_match < 0) {
		snprintf(ts->error, sizeof(ts->error),
			 "no certificate of the verified path matches a pinned key");
		return -1;
	}
	return 0;
}

/* TLS 1.3 tickets arrive after the handshake, usually two or more (one
 * for each connection the client may open next). Keep each one: after the
 * hook the session's resumption data is overwritten by the next ticket.
 * A server that sends many costs at most TLS_TICKETS_MAX (the newest). */
static int on_ticket(gnutls_session_t s, unsigned htype, unsigned when,
		     unsigned incoming, const gnutls_datum_t *msg)
{
	tls_session_t *ts = gnutls_session_get_ptr(s);
	gnutls_datum_t d = { NULL, 0 };

	(void)htype;
	(void)when;
	(void)incoming;
	(void)msg;
	if (gnutls_session_get_data2(s, &d) < 0)
		return 0;
	if (ts->ntickets == TLS_TICKETS_MAX) {
		gnutls_free(ts->tickets[0].data);
		memmove(ts->tickets, ts->tickets + 1,
			(TLS_TICKETS_MAX - 1) * sizeof(ts->tickets[0]));
		ts->ntickets--;
	}
	ts->tickets[ts->ntickets++] = d;
	return 0;
}

/* Bytes read from the socket that GnuTLS has not taken yet. */
static size_t read_ahead(const tls_session_t *ts)
{
	return ts->in_len - ts->in_pos;
}

static ssize_t pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	tls_session_t *ts = ptr;
	size_t n;

	if (read_ahead(ts) == 0) {
		ssize_t got = recv(ts->fd, ts->in, TLS_READ_AHEAD, 0);
		if (got <= 0) {
			if (got < 0)
				gnutls_transport_set_errno(ts->s, errno);
			return got;
		}
		ts->in_pos = 0;
		ts->in_len = (size_t)got;
	}
	n = read_ahead(ts);
	if (n > len)
		n = len;
	memcpy(data, ts->in + ts->in_pos, n);
	ts->in_pos += n;
	ts->in_taken += n;
	return (ssize_t)n;
}

/* GnuTLS asks this (blocking use: --probe) whether input is there. */
static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
	tls_session_t *ts = ptr;
	struct pollfd p = { .fd = ts->fd, .events = POLLIN };

	if (read_ahead(ts) > 0)
		return 1;
	return poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static ssize_t push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	tls_session_t *ts = ptr;
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t n = sendmsg(ts->fd, &m, MSG_NOSIGNAL);

	if (n < 0)
		gnutls_transport_set_errno(ts->s, errno);
	return n;
}

static void set_transport(tls_session_t *ts, int fd)
{
	ts->fd = fd;
	ts->in = xmalloc(TLS_READ_AHEAD);
	gnutls_transport_set_ptr(ts->s, ts);
	gnutls_transport_set_pull_function(ts->s, pull);
	gnutls_transport_set_pull_timeout_function(ts->s, pull_timeout);
	gnutls_transport_set_vec_push_function(ts->s, push);
}

tls_session_t *tls_session_create(tls_ctx_t *ctx, int fd,
				  const tls_peer_t *peer,
				  char *err, size_t errlen)
{
	static const gnutls_datum_t alpn = { (unsigned char *)"dot", 3 };
	tls_session_t *ts = xcalloc(1, sizeof(*ts));
	int rc;

	ts->peer = *peer;
	ts->ctx = ctx;
	ts->pin_match = -1;
	rc = gnutls_init(&ts->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (rc < 0)
		goto fail;
	gnutls_session_set_ptr(ts->s, ts);
	if ((rc = gnutls_priority_set(ts->s, ctx->prio)) < 0 ||
	    (rc = gnutls_credentials_set(ts->s, GNUTLS_CRD_CERTIFICATE,
					 ctx->cred)) < 0)
		goto fail;
	if (peer->auth_name &&
	    (rc = gnutls_server_name_set(ts->s, GNUTLS_NAME_DNS, peer->auth_name,
					 strlen(peer->auth_name))) < 0)
		goto fail;
	if ((rc = gnutls_alpn_set_protocols(ts->s, &alpn, 1, 0)) < 0)
		goto fail;
	gnutls_session_set_verify_function(ts->s, verify_peer);
	gnutls_handshake_set_hook_function(ts->s,
					   GNUTLS_HANDSHAKE_NEW_SESSION_TICKET,
					   GNUTLS_HOOK_POST, on_ticket);
	gnutls_handshake_set_timeout(ts->s, 0);  /* our loop times it */
	set_transport(ts, fd);
	return ts;
fail:
	snprintf(err, errlen, "TLS session setup: %s", gnutls_strerror(rc));
	tls_session_destroy(ts);
	return NULL;
}

void tls_session_destroy(tls_session_t *ts)
{
	if (!ts)
		return;
	if (ts->s)
		gnutls_deinit(ts->s);
	if (ts->path.anchor)
		gnutls_x509_crt_deinit(ts->path.anchor);
	for (size_t i = 0; i < ts->ntickets; i++)
		gnutls_free(ts->tickets[i].data);
	free(ts->in);
	free(ts);
}

void tls_session_set_ticket(tls_session_t *ts, const uint8_t *data, size_t len)
{
	gnutls_session_set_data(ts->s, data, len);
}

int tls_session_take_ticket(tls_session_t *ts, uint8_t **data, size_t *len)
{
	gnutls_datum_t *t = &ts->tickets[0];

	if (ts->ntickets == 0)
		return 0;
	*data = xmalloc(t->size);
	memcpy(*data, t->data, t->size);
	*len = t->size;
	gnutls_free(t->data);
	memmove(ts->tickets, ts->tickets + 1, --ts->ntickets * sizeof(*t));
	return 1;
}

int tls_session_resumed(tls_session_t *ts)
{
	return gnutls_session_is_resumed(ts->s) != 0;
}

static tls_status_t again(tls_session_t *ts)
{
	return gnutls_record_get_direction(ts->s) ? TLS_AGAIN_OUTPUT
						   : TLS_AGAIN_INPUT;
}

/* Map a negative GnuTLS result, keeping the reason. */
static tls_status_t failure(tls_session_t *ts, int rc)
{
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return again(ts);
	if (rc == GNUTLS_E_PREMATURE_TERMINATION) {
		snprintf(ts->error, sizeof(ts->error), "connection closed by peer");
		return TLS_CLOSED;
	}
	/* A verification failure already wrote the better reason. */
	if (!(ts->verified && ts->error[0] &&
	      (rc == GNUTLS_E_CERTIFICATE_ERROR ||
	       rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)))
		snprintf(ts->error, sizeof(ts->error), "%s", gnutls_strerror(rc));
	return TLS_FAILED;
}

tls_status_t tls_session_handshake(tls_session_t *ts)
{
	int rc;

	do {
		rc = gnutls_handshake(ts->s);
	} while (rc < 0 && !gnutls_error_is_fatal(rc) && rc != GNUTLS_E_AGAIN &&
		 rc != GNUTLS_E_INTERRUPTED);
	return rc == 0 ? TLS_OK : failure(ts, rc);
}

tls_status_t tls_session_send(tls_session_t *ts, const uint8_t *data,
			      size_t len, size_t *sent)
{
	ssize_t rc;

	if (ts->send_again)
		rc = gnutls_record_send(ts->s, NULL, 0);
	else
		rc = gnutls_record_send(ts->s, data, len);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
		ts->send_again = 1;
		return again(ts);
	}
	ts->send_again = 0;
	if (rc < 0)
		return failure(ts, (int)rc);
	*sent = (size_t)rc;
	return TLS_OK;
}

tls_status_t tls_session_recv(tls_session_t *ts, uint8_t *buf, size_t cap,
			      size_t *got)
{
	for (;;) {
		unsigned long before = ts->in_taken;
		ssize_t rc = gnutls_record_recv(ts->s, buf, cap);
		if (rc > 0) {
			*got = (size_t)rc;
			return TLS_OK;
		}
		if (rc == 0) {
			snprintf(ts->error, sizeof(ts->error), "connection closed by peer");
			return TLS_CLOSED;
		}
		/* Warning alerts and the like are not the end. */
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED &&
		    !gnutls_error_is_fatal((int)rc))
			continue;
		/* AGAIN after a post-handshake message (a ticket) with more read
		 * ahead: the socket may have nothing more to say, so no event
		 * would bring us back for those bytes. */
		if (rc == GNUTLS_E_AGAIN && read_ahead(ts) > 0 &&
		    ts->in_taken != before)
			continue;
		return failure(ts, (int)rc);
	}
}

size_t tls_session_pending(tls_session_t *ts)
{
	return gnutls_record_check_pending(ts->s) + read_ahead(ts);
}

void tls_session_bye(tls_session_t *ts)
{
	gnutls_bye(ts->s, GNUTLS_SHUT_WR);
}

tls_failure_t tls_session_failure(const tls_session_t *ts)
{
	const unsigned other = GNUTLS_CERT_UNEXPECTED_OWNER |
			       GNUTLS_CERT_PURPOSE_MISMATCH | GNUTLS_CERT_INVALID |
			       GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED;

	if (!ts->verified)
		return TLS_FAIL_OTHER;
	/* Most fundamental first: a stranger's certificate is untrusted
	 * before it is anything else. */
	if (ts->status & ~other)
		return TLS_FAIL_TRUST;
	if (ts->status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
		return TLS_FAIL_EXPIRED;
	if (ts->status & GNUTLS_CERT_PURPOSE_MISMATCH)
		return TLS_FAIL_EKU;
	if (ts->status & GNUTLS_CERT_UNEXPECTED_OWNER)
		return TLS_FAIL_NAME;
	if (ts->status || !ts->path.ok)
		return TLS_FAIL_TRUST;
	if (ts->peer.npins && ts->pin_match < 0)
		return TLS_FAIL_PIN;
	return TLS_FAIL_OTHER;
}

time_t tls_session_peer_expiry(const tls_session_t *ts)
{
	int pinned = ts->peer.npins == 0 || ts->pin_match >= 0;

	return ts->verified && ts->status == 0 && ts->path.ok && pinned ?
	       ts->leaf_expiry : 0;
}

const char *tls_session_error(const tls_session_t *ts)
{
	return ts->error[0] ? ts->error : "unknown TLS error";
}

static void crt_info(gnutls_x509_crt_t crt, tls_role_t role,
		     tls_cert_info_t *c)
{
	gnutls_datum_t dn = { NULL, 0 }, idn = { NULL, 0 };
	uint8_t id[TLS_PIN_LEN];

	memset(c, 0, sizeof(*c));
	c->role = role;
	gnutls_x509_crt_get_dn3(crt, &dn, 0);
	gnutls_x509_crt_get_issuer_dn3(crt, &idn, 0);
	snprintf(c->subject, sizeof(c->subject), "%s", dn.data ? (char *)dn.data : "?");
	snprintf(c->issuer, sizeof(c->issuer), "%s", idn.data ? (char *)idn.data : "?");
	gnutls_free(dn.data);
	gnutls_free(idn.data);
	if (crt_pin(crt, id) == 0) {
		tls_pin_t p;
		memcpy(p.sha256, id, TLS_PIN_LEN);
		tls_pin_format(&p, c->pin, sizeof(c->pin));
	}
	c->not_before = gnutls_x509_crt_get_activation_time(crt);
	c->not_after = gnutls_x509_crt_get_expiration_time(crt);
}

/* Where the i-th certificate sent stands. */
static tls_role_t sent_role(const tls_session_t *ts, unsigned i,
			    gnutls_x509_crt_t crt)
{
	if (!ts->path.ok)
		return TLS_ROLE_NO_PATH;
	if (i < ts->path.nsent && ts->path.on_path[i])
		return i == 0 ? TLS_ROLE_LEAF : TLS_ROLE_PATH;
	if (ts->path.anchor && gnutls_x509_crt_equals(crt, ts->path.anchor))
		return TLS_ROLE_ANCHOR_SENT;
	return TLS_ROLE_UNUSED;
}

/* Each certificate the server sent, marked by whether verification used
 * it, then the trust anchor (which the server need not send). */
static void chain_info(tls_session_t *ts, tls_info_t *info)
{
	unsigned n = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(ts->s, &n);

	info->nsent = chain ? n : 0;
	for (unsigned i = 0; i < info->nsent && i < TLS_INFO_CERTS; i++) {
		tls_cert_info_t *c = &info->chain[info->nchain++];
		gnutls_x509_crt_t crt;

		if (gnutls_x509_crt_init(&crt) < 0) {
			info->nchain--;
			break;
		}
		if (gnutls_x509_crt_import(crt, &chain[i], GNUTLS_X509_FMT_DER) < 0) {
			memset(c, 0, sizeof(*c));
			c->role = TLS_ROLE_UNREADABLE;
		} else {
			crt_info(crt, sent_role(ts, i, crt), c);
		}
		gnutls_x509_crt_deinit(crt);
	}
	info->has_anchor = ts->path.anchor != NULL;
	if (info->has_anchor)
		crt_info(ts->path.anchor, TLS_ROLE_ANCHOR, &info->anchor);
}

static void verdict_info(const tls_session_t *ts, tls_info_t *info)
{
	info->auth_name = ts->peer.auth_name;
	info->reached = ts->verified;
	info->name_ok = !(ts->status & GNUTLS_CERT_UNEXPECTED_OWNER);
	info->purpose_ok = !(ts->status & GNUTLS_CERT_PURPOSE_MISMATCH);
	/* INVALID accompanies every failure, a name mismatch included. */
	info->trust_ok = !(ts->status & ~(unsigned)(GNUTLS_CERT_UNEXPECTED_OWNER |
						    GNUTLS_CERT_PURPOSE_MISMATCH |
						    GNUTLS_CERT_INVALID));
	info->npins = ts->peer.npins;
	if (ts->peer.npins && ts->pin_match >= 0)
		tls_pin_format(&ts->peer.pins[ts->pin_match], info->pin_matched,
			       sizeof(info->pin_matched));
	if (ts->status || !ts->verified)
		snprintf(info->why, sizeof(info->why), "%s", tls_session_error(ts));
}

void tls_session_info(tls_session_t *ts, tls_info_t *info)
{
	gnutls_datum_t alpn = { NULL, 0 };
	const char *vers = gnutls_protocol_get_name(gnutls_protocol_get_version(ts->s));
	const char *cipher = gnutls_cipher_get_name(gnutls_cipher_get(ts->s));

	memset(info, 0, sizeof(*info));
	chain_info(ts, info);
	snprintf(info->version, sizeof(info->version), "%s", vers ? vers : "?");
	snprintf(info->cipher, sizeof(info->cipher), "%s", cipher ? cipher : "?");
	if (gnutls_alpn_get_selected_protocol(ts->s, &alpn) == 0)
		snprintf(info->alpn, sizeof(info->alpn), "%.*s", (int)alpn.size,
			 alpn.data);
	verdict_info(ts, info);
}

/* Each role's word (JSON) and words (the text), in tls_role_t's order. */
static const struct {
	const char *word, *text;
} ROLES[] = {
	[TLS_ROLE_NO_PATH] = { "no-path", "no verified path" },
	[TLS_ROLE_UNUSED] = { "not-on-path", "not on the verified path (sent, not used)" },
	[TLS_ROLE_LEAF] = { "leaf", "verified (leaf)" },
	[TLS_ROLE_PATH] = { "intermediate", "verified" },
	[TLS_ROLE_ANCHOR_SENT] = { "anchor-sent", "verified (the trust anchor, also sent)" },
	[TLS_ROLE_ANCHOR] = { "anchor", "verified (anchor, from the trust store)" },
	[TLS_ROLE_UNREADABLE] = { "unreadable", "unreadable" },
};

const char *tls_role_text(tls_role_t role)
{
	return (unsigned)role < sizeof(ROLES) / sizeof(ROLES[0]) ? ROLES[role].text : "?";
}

const char *tls_role_word(tls_role_t role)
{
	return (unsigned)role < sizeof(ROLES) / sizeof(ROLES[0]) ? ROLES[role].word : "?";
}

int tls_role_on_path(tls_role_t role)
{
	return role == TLS_ROLE_LEAF || role == TLS_ROLE_PATH ||
	       role == TLS_ROLE_ANCHOR_SENT || role == TLS_ROLE_ANCHOR;
}

static void print_crt(FILE *out, const char *label, const tls_cert_info_t *c)
{
	char from[32] = "?", until[32] = "?";
	time_t t;

	if (c->role == TLS_ROLE_UNREADABLE) {
		fprintf(out, "%s: unreadable\n", label);
		return;
	}
	t = (time_t)c->not_before;
	strftime(from, sizeof(from), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	t = (time_t)c->not_after;
	strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	fprintf(out, "%s:\n  subject:    %s\n  issuer:     %s\n"
		"  valid:      %s to %s\n  pin-sha256: %s\n  path:       %s\n", label,
		c->subject, c->issuer, from, until, c->pin[0] ? c->pin : "?",
		tls_role_text(c->role));
}

static void print_chain(const tls_info_t *info, FILE *out)
{
	char label[32];

	if (info->nsent == 0)
		fprintf(out, "no certificate received\n");
	for (unsigned i = 0; i < info->nchain; i++) {
		snprintf(label, sizeof(label), "certificate %u", i);
		print_crt(out, label, &info->chain[i]);
	}
	if (info->nsent > info->nchain)
		fprintf(out, "(%u more certificates not shown)\n",
			info->nsent - info->nchain);
	if (info->has_anchor)
		print_crt(out, "trust anchor", &info->anchor);
}

void tls_info_print(const tls_info_t *info, FILE *out)
{
	print_chain(info, out);
	fprintf(out, "protocol:     %s\n", info->version);
	fprintf(out, "cipher:       %s\n", info->cipher);
	fprintf(out, "alpn:         %s\n", info->alpn[0] ? info->alpn : "(none)");
	fprintf(out, "auth name:    %s\n",
		info->auth_name ? info->auth_name : "(none: checking the IP address)");
	if (!info->reached) {
		fprintf(out, "verification: not reached (%s)\n", info->why);
		return;
	}
	fprintf(out, "name:         %s\n", info->name_ok ? "ok" : "MISMATCH");
	fprintf(out, "purpose:      %s\n", info->purpose_ok ? "ok"
		: "MISMATCH (not a TLS server certificate)");
	fprintf(out, "trust:        %s\n", info->trust_ok ? "ok" : "NOT TRUSTED");
	if (info->npins && info->pin_matched[0])
		fprintf(out, "pin:          matched %s\n", info->pin_matched);
	else if (info->npins)
		fprintf(out, "pin:          NO MATCH among %zu pin(s)\n", info->npins);
	if (info->why[0])
		fprintf(out, "why:          %s\n", info->why);
}
