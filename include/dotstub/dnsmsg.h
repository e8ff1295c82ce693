/* dnsmsg: the DNS message codec, on c-ares (name expansion and validation
 * with ares_expand_name, the header macros of ares_dns.h). c-ares 1.18.1 has
 * no EDNS option API, so the OPT walk, padding (RFC 7830/8467) and
 * truncation live here.
 *
 * Nothing here allocates for the caller: outputs go to caller buffers. */
#ifndef DOTSTUB_DNSMSG_H
#define DOTSTUB_DNSMSG_H

#include <stddef.h>
#include <stdint.h>

#define DNSMSG_HEADER_LEN 12
/* A question section: a name of at most 255 bytes, type and class. */
#define DNSMSG_QUESTION_MAX (255 + 4)
/* Largest message we handle (a TCP/TLS frame). */
#define DNSMSG_MAX 65535
/* The UDP payload size we advertise to clients (DNS Flag Day 2020). */
#define DNSMSG_EDNS_UDP_SIZE 1232
/* A domain name in wire form is at most 255 bytes; in presentation form
 * (c-ares escapes special bytes as \DDD) it fits in this. */
#define DNSMSG_NAME_MAX 255
#define DNSMSG_NAME_TEXT_MAX 1100

enum {
	DNSMSG_RCODE_NOERROR = 0,
	DNSMSG_RCODE_FORMERR = 1,
	DNSMSG_RCODE_SERVFAIL = 2,
	DNSMSG_RCODE_NXDOMAIN = 3,
	DNSMSG_RCODE_NOTIMP = 4,
	DNSMSG_RCODE_REFUSED = 5,
};

/* What to do with a message a client sent. */
typedef enum {
	DNSMSG_OK = 0,     /* a query to forward */
	DNSMSG_DROP,       /* no reply at all: too short, or QR=1 (no loops) */
	DNSMSG_FORMERR,    /* reply FORMERR */
	DNSMSG_NOTIMP,     /* reply NOTIMP: opcode other than QUERY */
} dnsmsg_verdict_t;

/* What a client's query says, as far as forwarding needs it. */
typedef struct {
	uint16_t id;
	uint16_t qtype;
	uint16_t qclass;
	/* The question section in wire form (name, type, class), exactly as
	 * the client sent it; answers are matched against it. */
	uint8_t question[DNSMSG_QUESTION_MAX];
	size_t question_len;
	int has_question;  /* 1 once the question was read (even on FORMERR) */
	int edns;          /* the client sent an OPT record */
	int edns_do;       /* ... with the DO bit */
	int cd;            /* checking disabled: DNSSEC failures not filtered */
	int rd;            /* recursion desired */
	/* Largest answer the client takes over UDP: 512 without EDNS, else its
	 * advertised payload size, within 512..DNSMSG_EDNS_UDP_SIZE: a bigger
	 * answer to a spoofed source would make us an amplifier. */
	uint16_t udp_max;
} dnsmsg_query_t;

/* Check a client's message and fill *q. Anything but DNSMSG_OK leaves *q
 * usable only for dnsmsg_error_reply(). Never reads past len. */
dnsmsg_verdict_t dnsmsg_parse_query(const uint8_t *msg, size_t len,
				    dnsmsg_query_t *q);

/* The question's name in presentation form (via ares_expand_name), for
 * logs. Writes "?" when the name cannot be read. */
void dnsmsg_query_name(const dnsmsg_query_t *q, char *buf, size_t cap);

/* A reply with `rcode` to a client's message: header (q->id; opcode and RD
 * from msg; QR and RA set), the question when it was readable, and an OPT record when
 * the client sent one. Returns the length written, 0 when cap is too
 * small. */
size_t dnsmsg_error_reply(const dnsmsg_query_t *q, const uint8_t *msg,
			  size_t len, int rcode, uint8_t *out, size_t cap);

/* The message to send upstream: the client's query with `id`, its OPT
 * (added when missing, so that padding has a home) with an empty EDNS
 * keepalive option (RFC 7828) and padded with the padding option to a
 * multiple of `pad_block` bytes (0: no padding). The client's own padding,
 * keepalive, Client Subnet (RFC 7871) and COOKIE (RFC 7873) options are
 * not passed on.
 * Returns the length written, or 0 when it does not fit in cap. */
size_t dnsmsg_build_upstream(const uint8_t *msg, size_t len,
			     const dnsmsg_query_t *q, uint16_t id,
			     size_t pad_block, uint8_t *out, size_t cap);

/* The message for a plain DNS server (a "[forward]" group with
 * plaintext = yes): as dnsmsg_build_upstream() with ID 0, but without the
 * keepalive option (not allowed over UDP) and without padding. At most
 * dnsmsg_padded_size(len, 0) bytes. */
size_t dnsmsg_build_plain(const uint8_t *msg, size_t len,
			  const dnsmsg_query_t *q, uint8_t *out, size_t cap);

/* The room dnsmsg_build_upstream() needs for a client query of `len`
 * bytes padded to `pad_block` (0: no padding): enough for our OPT, the
 * keepalive and the whole padding option, so that no query ever goes
 * unpadded for want of space. At most DNSMSG_MAX. */
size_t dnsmsg_padded_size(size_t len, size_t pad_block);
/* REFUSED to a client we do not serve: header and (when readable) the
 * question, no OPT, so never longer than its message of len bytes.
 * Returns the length written, 0 when even that does not fit (drop). */
size_t dnsmsg_refused_reply(const dnsmsg_query_t *q, const uint8_t *msg,
			    size_t len, uint8_t *out, size_t cap);

/* Replace the ID of a message of at least a header's length. */
void dnsmsg_set_id(uint8_t *msg, uint16_t id);
uint16_t dnsmsg_get_id(const uint8_t *msg);

/* 1 when `ans` is a response (QR=1) whose single question equals
 * `question`: the name compared case-insensitively (ASCII), QTYPE and
 * QCLASS exactly. Else 0. */
int dnsmsg_answer_matches(const uint8_t *ans, size_t len,
			  const uint8_t *question, size_t question_len);

/* The question (wire form, `len` bytes) as a lookup key into out (`len`
 * bytes): the name's ASCII letters folded to lower case, QTYPE and QCLASS
 * as they are. */
void dnsmsg_fold_question(const uint8_t *question, size_t len, uint8_t *out);

/* The answer as the client gets it: the client's ID, RD bit and question
 * exactly as it sent them (letter case included), the per-hop options
 * removed as in dnsmsg_strip_answer() (and the whole OPT when the client
 * sent none), and, when longer than `max` (the client's UDP size; 0 = no
 * limit, TCP), cut to header, question and OPT with TC=1. Returns the
 * length written, 0 when the answer cannot be read or is not for q's
 * question (the caller answers SERVFAIL). */
size_t dnsmsg_build_client_answer(const uint8_t *ans, size_t len,
				  const dnsmsg_query_t *q, size_t max,
				  uint8_t *out, size_t cap);

/* The upstream's answer as it is kept (in the cache) and built from: the
 * options that were for dotstub as the upstream's client removed (padding,
 * keepalive, COOKIE, Client Subnet, EXPIRE), the OPT itself, the ID and
 * everything else kept. Returns the length, 0 when it cannot be read. */
size_t dnsmsg_strip_answer(const uint8_t *ans, size_t len, uint8_t *out,
			   size_t cap);

/* The message (a query or an answer) without its EDNS padding options
 * (RFC 7830), for the query log: everything else, the ID and the other
 * options included, as it is. Returns the length written to out, or 0
 * when there is no padding to remove, the message cannot be read or out
 * is too small: then log `msg` as it is. */
size_t dnsmsg_unpad(const uint8_t *msg, size_t len, uint8_t *out, size_t cap);

/* A recursive query for name/type (class IN) with `id`, built by
 * ares_create_query, for --probe. Returns the length, 0 on failure. */
size_t dnsmsg_build_probe(const char *name, uint16_t qtype, uint16_t id,
			  uint8_t *out, size_t cap);

/* The EDNS TCP keepalive timeout (RFC 7828) an answer carries, in units of
 * 100 ms, or -1 when it carries none. */
int dnsmsg_answer_keepalive(const uint8_t *ans, size_t len);

/* How long an answer may be cached, in seconds: the smallest TTL of its
 * records (the OPT excepted); for a negative answer, its SOA's TTL capped
 * by the SOA's MINIMUM (RFC 2308). -1 when it must not be cached: not a
 * NOERROR or NXDOMAIN response, truncated, unreadable, or nothing to
 * take a TTL from. */
long dnsmsg_cache_ttl(const uint8_t *msg, size_t len);

/* Bring every TTL (the OPT excepted) into lo..hi: above hi down to hi,
 * below lo up to lo (hi wins when lo > hi). The message must be readable
 * (as dnsmsg_cache_ttl() found it). */
void dnsmsg_clamp_ttls(uint8_t *msg, size_t len, uint32_t lo, uint32_t hi);

/* Subtract `age` seconds from every TTL (the OPT excepted), not below 0.
 * The message must be readable (as dnsmsg_cache_ttl() found it). */
void dnsmsg_age_ttls(uint8_t *msg, size_t len, uint32_t age);

/* 1 when a cacheable answer (at least a header's length) is negative:
 * NXDOMAIN, or NOERROR with no answer record (NODATA, RFC 2308). */
int dnsmsg_negative(const uint8_t *msg);

/* Extended DNS Error INFO-CODE "Stale Answer" (RFC 8914 4.4). */
#define DNSMSG_EDE_STALE_ANSWER 3

/* A cached answer past its TTL, as the client gets it (RFC 8767): built
 * as by dnsmsg_build_client_answer(), every TTL set to `ttl`, and, when
 * the client sent EDNS, an EDE option "Stale Answer" in the OPT (an OPT
 * added when the answer had none). Still within `max`. Returns the
 * length written, 0 as dnsmsg_build_client_answer() does. */
size_t dnsmsg_build_stale_answer(const uint8_t *ans, size_t len,
				 const dnsmsg_query_t *q, size_t max,
				 uint32_t ttl, uint8_t *out, size_t cap);

/* What a local zone (include/dotstub/zones.h) holds. Each has the SOA of
 * RFC 6303 section 3 at its apex, "@ 10800 SOA @ nobody.invalid. 1 3600
 * 1200 604800 10800", and "@ 10800 NS @"; a negative answer carries that
 * SOA in its authority section, so that clients cache it (RFC 2308) for
 * 10800 s, its MINIMUM. */
typedef enum {
	/* RFC 6303 (and home.arpa, RFC 8375): the apex exists, with only
	 * its SOA and NS (other types NODATA); every name below, NXDOMAIN. */
	DNSMSG_LOCAL_EMPTY = 0,
	/* RFC 6761 6.3 (localhost): every name has A 127.0.0.1 and AAAA
	 * ::1, the apex its SOA and NS too; other types NODATA. */
	DNSMSG_LOCAL_LOOPBACK,
	/* RFC 6761 6.4 (invalid), RFC 7686 (onion), RFC 6762 3 (local):
	 * every name, the apex included, NXDOMAIN. */
	DNSMSG_LOCAL_NXDOMAIN,
} dnsmsg_local_t;

/* The answer to q from a local zone of kind `zone` whose name starts at
 * offset `apex` of q's question name (0: the question is the apex), as
 * an authoritative server gives it: AA set, q's ID, RD and CD, the
 * question exactly as the client sent it (letter case included), and an
 * OPT (our UDP size, the client's DO bit) when the client sent one.
 * Classes other than IN (and ANY) get REFUSED. Never longer than 512
 * bytes, so it fits any client's UDP size untruncated. Returns the length
 * written, 0 when cap is too small or apex is not a label of q's name. */
size_t dnsmsg_local_answer(const dnsmsg_query_t *q, dnsmsg_local_t zone,
			   size_t apex, uint8_t *out, size_t cap);

/* A domain name in presentation form ("corp.example", a trailing dot
 * optional; "." is the root) in wire form: labels of 1..63 bytes of
 * printable ASCII other than the backslash (no escapes), 255 bytes in
 * all. Returns the length written (the root's zero byte included), or 0
 * when the text is not such a name or cap is too small. */
size_t dnsmsg_name_from_text(const char *text, uint8_t *out, size_t cap);

/* A wire-form name (at the start of len bytes, uncompressed) in
 * presentation form without the final dot (via ares_expand_name; the
 * root is "."), for logs and --check-config. Writes "?" when the name
 * cannot be read. */
void dnsmsg_name_text(const uint8_t *name, size_t len, char *buf, size_t cap);

/* ASCII letters folded to lower case, other bytes as they are: DNS names
 * compare so (RFC 4343); label length bytes (< 64) are never changed. */
static inline uint8_t dnsmsg_fold_byte(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* The RCODE of a message of at least a header's length. */
int dnsmsg_rcode(const uint8_t *msg);

/* 1 when the message (at least a header's length) has TC set. */
int dnsmsg_truncated(const uint8_t *msg);

#endif
