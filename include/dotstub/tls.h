/* tls: everything GnuTLS, behind dotstub's own status values. No other
 * module calls gnutls_*.
 *
 * Policy (RFC 8310 strict profile): TLS 1.3 or 1.2, AEAD ciphers, ECDHE;
 * SNI and ALPN "dot"; the peer must present a chain trusted by the context's
 * anchors whose leaf matches the auth name (or, without a name, the IP
 * address) and is for a TLS server (key purpose), and when pins are given,
 * one certificate of the verified path (leaf, intermediates that chain it,
 * the trust anchor that validated it, sent or not) must carry a pinned
 * SPKI; a certificate the server merely sent matches nothing. No SHA-1
 * handshake signatures. Anything else fails the handshake. */
#ifndef DOTSTUB_TLS_H
#define DOTSTUB_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

typedef enum {
	TLS_OK = 0,
	TLS_AGAIN_INPUT,   /* call again when the socket is readable */
	TLS_AGAIN_OUTPUT,  /* call again when the socket is writable */
	TLS_CLOSED,        /* the peer closed the session (EOF, close_notify) */
	TLS_FAILED,        /* fatal; tls_session_error() says why */
} tls_status_t;

#define TLS_PIN_LEN 32   /* SHA-256 of the DER SubjectPublicKeyInfo */
#define TLS_PIN_B64_LEN 44
/* Untaken session tickets one session keeps (servers send two or so). */
#define TLS_TICKETS_MAX 8

typedef struct {
	uint8_t sha256[TLS_PIN_LEN];
} tls_pin_t;

/* Parse a base64 pin (as certtool prints after "pin-sha256:"; the prefix
 * is accepted too). Returns 0, or -EINVAL. */
int tls_pin_parse(const char *text, tls_pin_t *pin);
/* Base64 form; buf needs TLS_PIN_B64_LEN + 1 bytes. */
void tls_pin_format(const tls_pin_t *pin, char *buf, size_t cap);

/* Trust anchors and the compiled priority string. */
typedef struct tls_ctx tls_ctx_t;

/* ca_file: PEM anchors, or NULL for the system store. Returns NULL and
 * writes the reason to err on failure (unreadable file, no certificate). */
tls_ctx_t *tls_ctx_create(const char *ca_file, char *err, size_t errlen);
void tls_ctx_destroy(tls_ctx_t *ctx);

/* Who the peer must be. The strings and pins must outlive the session. */
typedef struct {
	const char *auth_name;  /* DNS name for SNI and verification, or NULL */
	const char *ip_text;    /* the address, verified when there is no name */
	const tls_pin_t *pins;
	size_t npins;
} tls_peer_t;

typedef struct tls_session tls_session_t;

/* A client session over the connected (or connecting) non-blocking socket
 * fd, which stays the caller's. Returns NULL with err filled on failure. */
tls_session_t *tls_session_create(tls_ctx_t *ctx, int fd,
				  const tls_peer_t *peer,
				  char *err, size_t errlen);
void tls_session_destroy(tls_session_t *s);

/* Offer a ticket saved from an earlier session with the same peer. */
void tls_session_set_ticket(tls_session_t *s, const uint8_t *data, size_t len);
/* The oldest ticket the server sent (after the handshake, once the first
 * records were read) that was not taken yet: 1 with *data (the caller's
 * to free()) and *len, or 0 when none is left. Each ticket is handed out
 * once, so that no two connections offer the same one (RFC 8446 C.4: a
 * reused ticket links them). The session keeps the newest TLS_TICKETS_MAX
 * untaken ones. */
int tls_session_take_ticket(tls_session_t *s, uint8_t **data, size_t *len);
/* 1 when the handshake resumed a session (no certificate exchanged). */
int tls_session_resumed(tls_session_t *s);

/* Drive the handshake; TLS_OK once it is complete and the peer verified. */
tls_status_t tls_session_handshake(tls_session_t *s);

/* Send up to len bytes; *sent is set on TLS_OK. After TLS_AGAIN_*, call
 * again with the same data (the pending record is completed first). */
tls_status_t tls_session_send(tls_session_t *s, const uint8_t *data,
			      size_t len, size_t *sent);

/* Receive into buf; *got > 0 on TLS_OK. */
tls_status_t tls_session_recv(tls_session_t *s, uint8_t *buf, size_t cap,
			      size_t *got);

/* Bytes read from the socket (decrypted or not) that no poll() will
 * announce: after the handshake, read them before waiting. */
size_t tls_session_pending(tls_session_t *s);

/* Best-effort close_notify (never blocks). */
void tls_session_bye(tls_session_t *s);

/* Why the last call failed: the verification failure (name, trust, pin)
 * or the GnuTLS error text. Valid until the session is destroyed. */
const char *tls_session_error(const tls_session_t *s);

/* Where a certificate stands in the verification. */
typedef enum {
	TLS_ROLE_NO_PATH,      /* verification found no path at all */
	TLS_ROLE_UNUSED,       /* sent, not on the verified path */
	TLS_ROLE_LEAF,
	TLS_ROLE_PATH,         /* an intermediate on the verified path */
	TLS_ROLE_ANCHOR_SENT,  /* the trust anchor, also sent */
	TLS_ROLE_ANCHOR,       /* the trust anchor, from the trust store */
	TLS_ROLE_UNREADABLE,   /* sent, not a readable X.509 certificate */
} tls_role_t;

/* Certificates of a chain described; a server may send more (nsent). */
#define TLS_INFO_CERTS 16
#define TLS_DN_MAX 512

/* One certificate. subject and issuer are the peer's text (RFC 4514,
 * truncated to TLS_DN_MAX - 1 bytes): escape them before printing them
 * into a structured format. */
typedef struct {
	char subject[TLS_DN_MAX];
	char issuer[TLS_DN_MAX];
	int64_t not_before, not_after;   /* seconds since the epoch */
	char pin[TLS_PIN_B64_LEN + 1];   /* pin-sha256; "" when unknown */
	tls_role_t role;
} tls_cert_info_t;

/* What --probe reports about a session: the chain as sent, the anchor,
 * the parameters negotiated and the verdicts. */
typedef struct {
	tls_cert_info_t chain[TLS_INFO_CERTS];
	unsigned nchain;        /* described (at most TLS_INFO_CERTS) */
	unsigned nsent;         /* the server sent */
	int has_anchor;
	tls_cert_info_t anchor;
	char version[32], cipher[32];
	char alpn[32];          /* "" when none was negotiated */
	const char *auth_name;  /* NULL: the IP address was checked */
	int reached;            /* verification ran (else the handshake
				 * failed before it, or resumed) */
	int name_ok, purpose_ok, trust_ok;
	size_t npins;
	char pin_matched[TLS_PIN_B64_LEN + 1];  /* "" when none */
	char why[256];          /* the rejection; "" when accepted */
} tls_info_t;

/* Fill info about s; works after a failed verification too. info owns
 * its text but auth_name, the peer's (which outlives s). */
void tls_session_info(tls_session_t *s, tls_info_t *info);

/* What a role means, in --probe's words ("verified (leaf)"), and as one
 * word for scripts ("leaf"); 1 when verification used the certificate. */
const char *tls_role_text(tls_role_t role);
const char *tls_role_word(tls_role_t role);
int tls_role_on_path(tls_role_t role);

/* Print info as --probe shows it: the peer's chain (subject, issuer,
 * validity, pin-sha256 of each certificate, and whether it is on the
 * verified path), the trust anchor, protocol, cipher, ALPN, and the
 * verification verdict. */
void tls_info_print(const tls_info_t *info, FILE *out);

/* What failed a handshake, for counting: the verification's verdict
 * (name, trust, pin, key purpose, validity dates), or OTHER (no
 * verification reached: a TLS error). */
typedef enum {
	TLS_FAIL_OTHER,
	TLS_FAIL_NAME,
	TLS_FAIL_TRUST,
	TLS_FAIL_PIN,
	TLS_FAIL_EKU,
	TLS_FAIL_EXPIRED,
} tls_failure_t;
tls_failure_t tls_session_failure(const tls_session_t *s);

/* The notAfter of the leaf certificate of a verified handshake (Unix
 * time); 0 when nothing was verified (a resumed session, a failure). */
time_t tls_session_peer_expiry(const tls_session_t *s);

/* The clock for certificate dates (clock-floor). With `on`, a wall clock
 * earlier than the build time reads as the build time, a warning naming
 * both times is logged when that starts and a note when the clock has
 * passed it; without, the clock as it is. Affects every session of the
 * process; call it before the first session and again at a reload. */
void tls_clock_floor(int on);
/* The build time (SOURCE_DATE_EPOCH, else when configure ran). */
time_t tls_clock_build_time(void);
/* What the clock reads as for certificate dates when it says `now`. */
time_t tls_clock_floored(time_t now, int on);

#endif
