/*
 * fake_upstream — a programmable DNS-over-TLS server for dotstub's fault
 * tests (tests/integration/faults.test).
 *
 *   fake_upstream --port P --cert FILE --key FILE [--mode MODE]
 *                 [--delay-ms N] [--close-after K] [--stats FILE]
 *                 [--exact-chain] [--priority STRING]
 *
 * --exact-chain sends the certificates of --cert exactly as the file lists
 * them, in that order, none dropped: a hostile server's chain (a rogue leaf
 * with somebody else's certificate appended) that GnuTLS's own loader
 * would not send. --priority replaces the TLS priority string (e.g. to
 * offer only SHA-1 signatures).
 *                 [--ttl N] [--answer-edns] [--dump FILE]
 *                 [--delay-after K] [--delayed-ttl N] [--delayed-rcode N]
 *                 [--idle-close-ms N] [--blackhole] [--backlog N]
 *
 * It listens on 127.0.0.1:P only, speaks TLS 1.3/1.2 (ALPN "dot", session
 * tickets on), reads RFC 7858 length-framed queries and answers every query
 * the same way — same ID, QR=1, RA=1, NOERROR, the question copied, and for
 * QTYPE A one record "A 192.0.2.99" (TTL 60, or --ttl N) — except where
 * MODE says otherwise:
 *
 *   normal          answer at once
 *   delay           answer after --delay-ms, without blocking anyone else;
 *                   with --delay-after K the first K queries (of all
 *                   connections) are answered at once, and --delayed-ttl N
 *                   gives the delayed answers TTL N (an upstream that turns
 *                   slow, and whose late answer can be told apart), and
 *                   --delayed-rcode N the RCODE N and no record (2: an
 *                   upstream that turns to SERVFAIL; --delay-ms 0: at once)
 *   reorder         answers go out in reverse order of arrival, in batches
 *                   of up to 4 (a partial batch after 50 ms)
 *   close-after     after --close-after K answers on a connection: TLS
 *                   close_notify, then close; later queries get nothing
 *   reset-mid       the 2nd answer of a connection is cut in half, then the
 *                   TCP connection is reset (RST)
 *   two-in-one      two answers in one gnutls_record_send (one TLS record);
 *                   a lone query is answered after 50 ms
 *   wrong-id        the answer carries ID+1
 *   wrong-question  the answer's question has its first letter changed
 *   silent          never answer
 *   stall-after     after --close-after K answers on a connection, stop
 *                   reading and answering it but keep it open (a half-open
 *                   connection: a server or path that went silent); a
 *                   new connection gets K answers again
 *   garbage         answer every query with a framed message of 40 random
 *                   bytes
 *
 * --idle-close-ms N: a connection with nothing to answer and nothing
 * received for N ms is closed (close_notify, then FIN), as Cloudflare
 * (10 s) and Quad9 (~2 s) close idle DoT connections.
 * --blackhole: start silent: connections are left in the listen backlog
 * (their TCP connect completes, the TLS handshake never does) and open
 * ones are not served; SIGUSR1 toggles it (the network comes back, or goes).
 * --backlog N: the listen backlog (default 128). With --blackhole and a
 * small N, once the backlog is full the kernel drops further SYNs: the
 * TCP connect itself never completes, as behind a dropping firewall.
 *
 * --answer-edns: answers carry an OPT record with a COOKIE (client and
 * server cookie) and an EDNS Client Subnet option, as an upstream that
 * speaks both would send: per-hop data that must not reach other clients.
 * --dump FILE: a line per query received, "size=N options=C,C hex=HH..",
 * the options being the EDNS option codes of its OPT record ("-": none),
 * so that tests see what dotstub sends upstream (padding, ECS, cookies).
 *
 * It prints "fake_upstream ready port=P" once listening. The counters
 * "connections=N handshakes=N resumed=N queries=N answers=N tickets=N
 * offered=N reused=N" (handshakes = full ones; answers = whole framed
 * messages handed to TLS, garbage included, a half answer not; tickets =
 * NewSessionTicket messages sent; offered = ClientHellos that offer a ticket
 * (a TLS 1.3 pre_shared_key identity); reused = those whose ticket had been
 * offered before, on any connection — RFC 8446 C.4 asks clients never to do
 * that) are rewritten to --stats FILE whenever they change and printed on
 * stdout at SIGTERM/SIGINT, after which it exits 0.
 *
 * One thread, one poll loop, non-blocking sockets and GnuTLS sessions: a
 * delayed or slow client never holds up another one. Only GnuTLS (3.7) and
 * libc; DNS is parsed by hand since only the header and the question matter.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define MAX_CONNS       512
#define MAX_MSG         65535
#define DNS_HEADER_LEN  12
#define ANSWER_MAX      512     /* header + question (<= 259) + A + OPT */
#define GARBAGE_LEN     40
#define BATCH_WAIT_MS   50      /* reorder and two-in-one: flush a partial batch */
#define REORDER_BATCH   4
#define RECORD_MAX      16384   /* TLS plaintext record limit */
#define SEEN_MAX        4096    /* ticket identities remembered (hashes) */
#define HASH_LEN        32      /* SHA-256 */
#define EXT_PRE_SHARED_KEY 41   /* RFC 8446 4.2 */

/* Like dotstub's: without it GnuTLS on bookworm still offers TLS 1.1. */
static const char PRIORITY[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";

/* The answer record: name = pointer to the question (offset 12), A, IN,
 * TTL 60, 192.0.2.99. */
static const uint8_t A_RECORD[] = {
	0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c,
	0x00, 0x04, 192, 0, 2, 99,
};
#define A_RECORD_TTL_AT 6

/* --answer-edns: OPT (UDP 1232) with COOKIE (8-byte client + 16-byte
 * server cookie) and ECS 192.0.2.0/24 scope /24. */
static const uint8_t ANSWER_OPT[] = {
	0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x27,
	0x00, 0x0a, 0x00, 0x18,
	1, 2, 3, 4, 5, 6, 7, 8,
	0xc0, 0x0c, 0xc0, 0x0c, 0xc0, 0x0c, 0xc0, 0x0c,
	0xc0, 0x0c, 0xc0, 0x0c, 0xc0, 0x0c, 0xc0, 0x0c,
	0x00, 0x08, 0x00, 0x07, 0x00, 0x01, 24, 24, 192, 0, 2,
};

enum mode {
	M_NORMAL, M_DELAY, M_REORDER, M_CLOSE_AFTER, M_RESET_MID,
	M_TWO_IN_ONE, M_WRONG_ID, M_WRONG_QUESTION, M_SILENT, M_GARBAGE,
	M_STALL_AFTER,
};

static const char *const MODE_NAMES[] = {
	"normal", "delay", "reorder", "close-after", "reset-mid",
	"two-in-one", "wrong-id", "wrong-question", "silent", "garbage",
	"stall-after",
};

struct options {
	int port;
	const char *cert, *key, *stats, *dump;
	const char *priority;           /* NULL: PRIORITY */
	int exact_chain;                /* send --cert's certificates as they are */
	enum mode mode;
	unsigned delay_ms, close_after, delay_after;
	uint32_t ttl;
	uint32_t delayed_ttl;           /* delay mode, after --delay-after */
	int has_delayed_ttl;
	int delayed_rcode;              /* -1: as the others */
	int answer_edns;
	unsigned idle_close_ms;         /* 0: never */
	int blackhole;                  /* at start */
	unsigned backlog;
};

struct counters {
	unsigned long connections, handshakes, resumed, queries, answers;
	unsigned long tickets, offered, reused;
	unsigned long idle_closes;      /* --idle-close-ms closes */
};

/* A framed answer held back by delay, reorder or two-in-one. */
struct held {
	struct held *next;
	uint64_t due_ms;                /* delay mode only */
	size_t len;
	uint8_t data[];
};

enum conn_state { CS_HANDSHAKE, CS_OPEN, CS_BYE, CS_DEAD };

/* What happens to a connection once its output is flushed (END_ABORT: at
 * once, TLS failed). */
enum conn_end { END_NONE, END_BYE, END_RESET, END_ABORT };

struct conn {
	int fd;
	gnutls_session_t s;
	enum conn_state state;
	enum conn_end end;
	uint8_t in[2 + MAX_MSG];        /* always room for one whole frame */
	size_t in_len;
	uint8_t *out;                   /* framed messages not yet sent */
	size_t out_len, out_cap;
	size_t sending;                 /* size of a send that got AGAIN */
	struct held *held, *held_tail;
	unsigned nheld;
	uint64_t batch_due;             /* 0: no partial batch waiting */
	unsigned queries, answers;      /* on this connection */
	uint64_t last_active;           /* open, or the last query (ms) */
	int stalled;                    /* stall-after: neither read nor answered */
};

struct server {
	struct options opt;
	int lfd;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	gnutls_datum_t ticket_key;
	struct conn *conns[MAX_CONNS];
	size_t nconns;
	struct counters count;
	int count_changed;
	/* SHA-256 of every ticket identity offered so far: a second offer of
	 * one is a reuse, whichever connection carries it. */
	uint8_t seen[SEEN_MAX][HASH_LEN];
	size_t nseen;
};

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t blackholed;

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fputs("fake_upstream: out of memory\n", stderr);
		abort();
	}
	return p;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		blackholed = !blackholed;
	else
		stop_signal = 1;
}

/* ------------------------------------------------------------------ */
/* Command line                                                       */
/* ------------------------------------------------------------------ */

static void usage(void)
{
	fputs("usage: fake_upstream --port P --cert FILE --key FILE [--mode MODE]\n"
	      "                     [--delay-ms N] [--close-after K] [--stats FILE]\n"
	      "                     [--exact-chain] [--priority STRING]\n"
	      "                     [--ttl N] [--answer-edns] [--dump FILE]\n"
	      "                     [--delay-after K] [--delayed-ttl N] [--delayed-rcode N]\n"
	      "                     [--idle-close-ms N] [--blackhole] [--backlog N]\n"
	      "modes: normal delay reorder close-after reset-mid two-in-one\n"
	      "       wrong-id wrong-question silent garbage stall-after\n", stderr);
	exit(2);
}

static unsigned parse_uint(const char *s, unsigned max, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max) {
		fprintf(stderr, "fake_upstream: bad %s '%s'\n", what, s);
		exit(2);
	}
	return (unsigned)v;
}

static enum mode parse_mode(const char *s)
{
	for (size_t i = 0; i < sizeof(MODE_NAMES) / sizeof(MODE_NAMES[0]); i++)
		if (strcmp(s, MODE_NAMES[i]) == 0)
			return (enum mode)i;
	fprintf(stderr, "fake_upstream: unknown mode '%s'\n", s);
	usage();
	return M_NORMAL;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "mode", required_argument, NULL, 'm' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "close-after", required_argument, NULL, 'a' },
		{ "stats", required_argument, NULL, 's' },
		{ "exact-chain", no_argument, NULL, 'x' },
		{ "priority", required_argument, NULL, 'P' },
		{ "ttl", required_argument, NULL, 't' },
		{ "answer-edns", no_argument, NULL, 'e' },
		{ "dump", required_argument, NULL, 'D' },
		{ "delay-after", required_argument, NULL, 'A' },
		{ "delayed-ttl", required_argument, NULL, 'T' },
		{ "delayed-rcode", required_argument, NULL, 'R' },
		{ "idle-close-ms", required_argument, NULL, 'i' },
		{ "blackhole", no_argument, NULL, 'b' },
		{ "backlog", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->close_after = 1;
	o->ttl = 60;
	o->delayed_rcode = -1;
	o->backlog = 128;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p': o->port = (int)parse_uint(optarg, 65535, "port"); break;
		case 'c': o->cert = optarg; break;
		case 'k': o->key = optarg; break;
		case 'm': o->mode = parse_mode(optarg); break;
		case 'd': o->delay_ms = parse_uint(optarg, 600000, "delay"); break;
		case 'a': o->close_after = parse_uint(optarg, 1000000, "count"); break;
		case 's': o->stats = optarg; break;
		case 'x': o->exact_chain = 1; break;
		case 'P': o->priority = optarg; break;
		case 't': o->ttl = parse_uint(optarg, 0xffffffffu, "ttl"); break;
		case 'e': o->answer_edns = 1; break;
		case 'D': o->dump = optarg; break;
		case 'A': o->delay_after = parse_uint(optarg, 1000000, "count"); break;
		case 'T':
			o->delayed_ttl = parse_uint(optarg, 0xffffffffu, "ttl");
			o->has_delayed_ttl = 1;
			break;
		case 'R': o->delayed_rcode = (int)parse_uint(optarg, 15, "rcode"); break;
		case 'i': o->idle_close_ms = parse_uint(optarg, 3600000, "idle close"); break;
		case 'b': o->blackhole = 1; break;
		case 'B': o->backlog = parse_uint(optarg, 4096, "backlog"); break;
		default: usage();
		}
	}
	if (optind != argc || !o->port || !o->cert || !o->key)
		usage();
	if ((o->mode == M_CLOSE_AFTER || o->mode == M_STALL_AFTER) && o->close_after == 0) {
		fputs("fake_upstream: --close-after must be at least 1\n", stderr);
		exit(2);
	}
}

/* ------------------------------------------------------------------ */
/* Counters                                                           */
/* ------------------------------------------------------------------ */

static void print_counters(FILE *f, const struct counters *c)
{
	fprintf(f, "connections=%lu handshakes=%lu resumed=%lu queries=%lu answers=%lu "
		"tickets=%lu offered=%lu reused=%lu idle_closes=%lu\n",
		c->connections, c->handshakes, c->resumed, c->queries, c->answers,
		c->tickets, c->offered, c->reused, c->idle_closes);
}

/* Write to a temporary file and rename it, so that a reader never sees a
 * half-written line. */
static void save_counters(struct server *srv)
{
	char tmp[4096];
	FILE *f;

	srv->count_changed = 0;
	if (!srv->opt.stats)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", srv->opt.stats);
	f = fopen(tmp, "w");
	if (!f) {
		perror(tmp);
		return;
	}
	print_counters(f, &srv->count);
	if (fclose(f) != 0 || rename(tmp, srv->opt.stats) != 0)
		perror(srv->opt.stats);
}

/* ------------------------------------------------------------------ */
/* DNS: answers built by hand                                         */
/* ------------------------------------------------------------------ */

/* Length of the question (name, type, class) after the header, or 0 when
 * there is none to copy: QDCOUNT 0, a compression pointer (a query has no
 * earlier name to point to), or a question running past the end. */
static size_t question_len(const uint8_t *msg, size_t len)
{
	size_t off = DNS_HEADER_LEN;

	if (len < DNS_HEADER_LEN || get16(msg + 4) == 0)
		return 0;
	for (;;) {
		if (off >= len)
			return 0;
		uint8_t label = msg[off++];
		if (label == 0)
			break;
		if (label > 63)
			return 0;
		off += label;
	}
	if (off + 4 > len)
		return 0;
	return off + 4 - DNS_HEADER_LEN;
}

/* wrong-question: another letter (or digit) in place of the first one of
 * the name, same length, so that only the name comparison can notice. */
static void change_first_letter(uint8_t *name)
{
	uint8_t *p = name + 1;

	if (name[0] == 0)
		return;         /* the root has no letter to change */
	if ((*p >= 'a' && *p < 'z') || (*p >= 'A' && *p < 'Z') ||
	    (*p >= '0' && *p < '9'))
		(*p)++;
	else if (*p == 'z' || *p == 'Z')
		*p -= 25;
	else if (*p == '9')
		*p = '0';
	else
		*p = 'x';
}

/* The framed answer to query `q` in `out` (ANSWER_MAX bytes); returns its
 * length with the 2-byte prefix, or 0 if the query has no usable question. */
static size_t build_answer(const struct options *o, const uint8_t *q,
			   size_t len, uint8_t *out)
{
	enum mode mode = o->mode;
	size_t ql = question_len(q, len), n;
	uint8_t *m = out + 2;
	int is_a;

	if (!ql || 2 + DNS_HEADER_LEN + ql + sizeof(A_RECORD) +
		   sizeof(ANSWER_OPT) > ANSWER_MAX)
		return 0;
	is_a = get16(q + DNS_HEADER_LEN + ql - 4) == 1 && o->delayed_rcode < 0;
	put16(m, mode == M_WRONG_ID ? (get16(q) + 1) & 0xffff : get16(q));
	m[2] = 0x80 | (q[2] & 0x79);    /* QR, the query's opcode and RD */
	m[3] = 0x80;                    /* RA, NOERROR */
	if (o->delayed_rcode >= 0)
		m[3] |= (uint8_t)o->delayed_rcode;
	put16(m + 4, 1);
	put16(m + 6, is_a ? 1 : 0);
	put16(m + 8, 0);
	put16(m + 10, 0);               /* EDNS is optional in an answer */
	memcpy(m + DNS_HEADER_LEN, q + DNS_HEADER_LEN, ql);
	if (mode == M_WRONG_QUESTION)
		change_first_letter(m + DNS_HEADER_LEN);
	n = DNS_HEADER_LEN + ql;
	if (is_a) {
		memcpy(m + n, A_RECORD, sizeof(A_RECORD));
		put16(m + n + A_RECORD_TTL_AT, o->ttl >> 16);
		put16(m + n + A_RECORD_TTL_AT + 2, o->ttl & 0xffff);
		n += sizeof(A_RECORD);
	}
	if (o->answer_edns) {
		memcpy(m + n, ANSWER_OPT, sizeof(ANSWER_OPT));
		n += sizeof(ANSWER_OPT);
		put16(m + 10, 1);
	}
	put16(out, n);
	return n + 2;
}

/* Step over a name (a pointer ends it); returns the offset after it, or 0
 * when it runs past len. */
static size_t skip_name(const uint8_t *m, size_t len, size_t off)
{
	while (off < len) {
		if (m[off] == 0)
			return off + 1;
		if ((m[off] & 0xc0) == 0xc0)
			return off + 2 <= len ? off + 2 : 0;
		off += (size_t)m[off] + 1;
	}
	return 0;
}

/* The EDNS option codes of the query's OPT record, comma-separated, into
 * buf ("-" when none, "?" when the message cannot be walked). */
static void option_codes(const uint8_t *m, size_t len, char *buf, size_t cap)
{
	size_t ql = question_len(m, len), off = DNS_HEADER_LEN + ql, at = 0;
	unsigned n;

	snprintf(buf, cap, ql ? "-" : "?");
	if (!ql)
		return;
	n = get16(m + 6) + get16(m + 8) + get16(m + 10);
	while (n--) {
		if (!(off = skip_name(m, len, off)) || off + 10 > len)
			break;
		size_t rd = off + 10, end = rd + get16(m + off + 8);
		if (end > len)
			break;
		for (size_t p = rd; get16(m + off) == 41 && p + 4 <= end &&
				    at + 8 < cap; p += 4 + get16(m + p + 2))
			at += (size_t)snprintf(buf + at, cap - at, "%s%u",
					       at ? "," : "", get16(m + p));
		off = end;
	}
}

/* --dump: one line per query, appended (and flushed) as it arrives. */
static void dump_query(const struct options *o, const uint8_t *m, size_t len)
{
	char codes[256];
	FILE *f;

	if (!o->dump || !(f = fopen(o->dump, "a")))
		return;
	option_codes(m, len, codes, sizeof(codes));
	fprintf(f, "size=%zu options=%s hex=", len, codes);
	for (size_t i = 0; i < len; i++)
		fprintf(f, "%02x", m[i]);
	fputc('\n', f);
	fclose(f);
}

/* ------------------------------------------------------------------ */
/* Output: what a connection sends                                    */
/* ------------------------------------------------------------------ */

static void append_out(struct conn *c, const uint8_t *data, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		c->out_cap = (c->out_len + len) * 2;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

/* One whole answer leaves: counted here, sent by send_unit. */
static void emit(struct server *srv, struct conn *c, const uint8_t *data,
		 size_t len)
{
	append_out(c, data, len);
	c->answers++;
	srv->count.answers++;
	srv->count_changed = 1;
}

/* Everything in the output buffer goes to TLS, in one gnutls_record_send
 * (one record) per 16 KiB. Returns -1 on a fatal TLS error. */
static int flush_out(struct conn *c)
{
	while (c->out_len > 0) {
		/* After GNUTLS_E_AGAIN the call must be repeated with the same
		 * size: GnuTLS has already encrypted that record. */
		size_t n = c->sending ? c->sending
				      : (c->out_len < RECORD_MAX ? c->out_len : RECORD_MAX);
		ssize_t r = gnutls_record_send(c->s, c->out, n);

		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			c->sending = n;
			return 0;
		}
		if (r < 0)
			return -1;
		c->sending = 0;
		memmove(c->out, c->out + r, c->out_len - (size_t)r);
		c->out_len -= (size_t)r;
	}
	return 0;
}

/* What was just queued — one answer, a batch, half an answer — leaves now,
 * as one record of its own: the record boundaries are part of the fault
 * (two-in-one, reset-mid). Only when TLS pushed back earlier does it join
 * what waits before it. */
static void send_unit(struct conn *c)
{
	if (flush_out(c) < 0)
		c->end = END_ABORT;
}

/* ------------------------------------------------------------------ */
/* Held answers: delay, reorder, two-in-one                           */
/* ------------------------------------------------------------------ */

static void hold(struct conn *c, const uint8_t *data, size_t len, uint64_t due)
{
	struct held *h = xrealloc(NULL, sizeof(*h) + len);

	h->next = NULL;
	h->due_ms = due;
	h->len = len;
	memcpy(h->data, data, len);
	if (c->held_tail)
		c->held_tail->next = h;
	else
		c->held = h;
	c->held_tail = h;
	c->nheld++;
}

static struct held *pop_held(struct conn *c)
{
	struct held *h = c->held;

	c->held = h->next;
	if (!c->held)
		c->held_tail = NULL;
	c->nheld--;
	return h;
}

static void reverse_held(struct conn *c)
{
	struct held *prev = NULL, *h = c->held;

	c->held_tail = h;
	while (h) {
		struct held *next = h->next;
		h->next = prev;
		prev = h;
		h = next;
	}
	c->held = prev;
}

/* Send the whole batch: appended together, so flushed in one record. */
static void release_batch(struct server *srv, struct conn *c, int reverse)
{
	if (reverse)
		reverse_held(c);
	while (c->held) {
		struct held *h = pop_held(c);
		emit(srv, c, h->data, h->len);
		free(h);
	}
	c->batch_due = 0;
	send_unit(c);
}

static void release_due(struct server *srv, struct conn *c, uint64_t now)
{
	if (srv->opt.mode == M_DELAY) {
		/* One fixed delay: the list is in due order. */
		while (c->held && c->held->due_ms <= now) {
			struct held *h = pop_held(c);
			emit(srv, c, h->data, h->len);
			free(h);
			send_unit(c);
		}
	} else if (c->batch_due && now >= c->batch_due) {
		release_batch(srv, c, srv->opt.mode == M_REORDER);
	}
}

/* When an idle connection is to be closed (--idle-close-ms), or 0. */
static uint64_t idle_due(const struct server *srv, const struct conn *c)
{
	if (!srv->opt.idle_close_ms || c->state != CS_OPEN || c->end != END_NONE ||
	    c->out_len || c->nheld)
		return 0;
	return c->last_active + srv->opt.idle_close_ms;
}

/* When the connection next needs the clock, or 0 for never. */
static uint64_t next_due(const struct server *srv, const struct conn *c)
{
	uint64_t due = srv->opt.mode == M_DELAY ? (c->held ? c->held->due_ms : 0)
						: c->batch_due;
	uint64_t idle = idle_due(srv, c);

	return idle && (!due || idle < due) ? idle : due;
}

/* ------------------------------------------------------------------ */
/* Queries                                                            */
/* ------------------------------------------------------------------ */

static void answer_garbage(struct server *srv, struct conn *c)
{
	uint8_t msg[2 + GARBAGE_LEN];

	put16(msg, GARBAGE_LEN);
	gnutls_rnd(GNUTLS_RND_NONCE, msg + 2, GARBAGE_LEN);
	emit(srv, c, msg, sizeof(msg));
	send_unit(c);
}

/* Queue a batch member; the batch leaves when full or BATCH_WAIT_MS after
 * its first member arrived. */
static void batch_add(struct server *srv, struct conn *c, const uint8_t *ans,
		      size_t n, unsigned size, int reverse)
{
	hold(c, ans, n, 0);
	if (c->nheld == 1)
		c->batch_due = now_ms() + BATCH_WAIT_MS;
	if (c->nheld >= size)
		release_batch(srv, c, reverse);
}

/* One query: answered, held or ignored as the mode says. */
static void handle_query(struct server *srv, struct conn *c,
			 const uint8_t *msg, size_t len)
{
	uint8_t ans[ANSWER_MAX];
	struct options opt = srv->opt;
	size_t n;
	int late;

	srv->count.queries++;
	late = opt.mode == M_DELAY && srv->count.queries > opt.delay_after;
	if (late && opt.has_delayed_ttl)
		opt.ttl = opt.delayed_ttl;
	if (!late)
		opt.delayed_rcode = -1;
	dump_query(&srv->opt, msg, len);
	srv->count_changed = 1;
	c->queries++;
	c->last_active = now_ms();
	if (srv->opt.mode == M_STALL_AFTER && c->answers >= srv->opt.close_after)
		c->stalled = 1;
	if (c->end != END_NONE || srv->opt.mode == M_SILENT || c->stalled)
		return;         /* closing or silent: left unanswered */
	if (srv->opt.mode == M_GARBAGE) {
		answer_garbage(srv, c);
		return;
	}
	n = build_answer(&opt, msg, len, ans);
	if (!n) {
		fprintf(stderr, "fake_upstream: a %zu-byte query without a usable question, not answered\n", len);
		return;
	}
	switch (srv->opt.mode) {
	case M_DELAY:
		if (late) {
			hold(c, ans, n, now_ms() + srv->opt.delay_ms);
		} else {
			emit(srv, c, ans, n);
			send_unit(c);
		}
		break;
	case M_REORDER:
		batch_add(srv, c, ans, n, REORDER_BATCH, 1);
		break;
	case M_TWO_IN_ONE:
		batch_add(srv, c, ans, n, 2, 0);
		break;
	case M_CLOSE_AFTER:
		emit(srv, c, ans, n);
		send_unit(c);
		if (c->answers >= srv->opt.close_after && c->end == END_NONE)
			c->end = END_BYE;
		break;
	case M_RESET_MID:
		if (c->queries == 1) {
			emit(srv, c, ans, n);
		} else {
			append_out(c, ans, n / 2);  /* not an answer: not counted */
			c->end = END_RESET;
		}
		send_unit(c);
		break;
	default:
		emit(srv, c, ans, n);
		send_unit(c);
		break;
	}
}

/* Take every whole frame off the input buffer. */
static void take_frames(struct server *srv, struct conn *c)
{
	size_t off = 0;

	while (c->in_len - off >= 2) {
		size_t len = get16(c->in + off);
		if (c->in_len - off - 2 < len)
			break;
		handle_query(srv, c, c->in + off + 2, len);
		off += 2 + len;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

/* Read until GnuTLS has nothing more. Under TLS 1.3 a record that carries
 * no data (KeyUpdate, a ticket) yields GNUTLS_E_AGAIN while more records
 * may sit decrypted in GnuTLS's buffer, which poll() cannot see: hence the
 * check_pending. Returns -1 when the connection is over. */
static int read_queries(struct server *srv, struct conn *c)
{
	while (c->end != END_ABORT) {
		ssize_t r = gnutls_record_recv(c->s, c->in + c->in_len,
					       sizeof(c->in) - c->in_len);

		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			if (gnutls_record_check_pending(c->s) > 0)
				continue;
			return 0;
		}
		if (r == 0)
			return -1;      /* close_notify */
		if (r < 0) {
			if (gnutls_error_is_fatal((int)r))
				return -1;
			continue;       /* a warning alert, say */
		}
		c->in_len += (size_t)r;
		take_frames(srv, c);
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Session tickets: how many are issued, and whether one comes back   */
/* twice                                                              */
/* ------------------------------------------------------------------ */

/* Skip a vector with a `width`-byte length prefix; -1 if it runs past
 * `end`. */
static int skip_vec(const uint8_t **p, const uint8_t *end, int width)
{
	size_t len;

	if (end - *p < width)
		return -1;
	len = width == 1 ? **p : get16(*p);
	if ((size_t)(end - *p - width) < len)
		return -1;
	*p += width + len;
	return 0;
}

/* The first ticket identity of a ClientHello's pre_shared_key extension
 * (RFC 8446 4.2.11; it is the last extension), or 0 if it offers none. */
static int psk_identity(const uint8_t *m, size_t len, const uint8_t **id,
			size_t *idlen)
{
	const uint8_t *p = m + 2 + 32, *end = m + len;

	if (len < 2 + 32 || skip_vec(&p, end, 1) < 0 || skip_vec(&p, end, 2) < 0 ||
	    skip_vec(&p, end, 1) < 0 || end - p < 2)
		return 0;
	p += 2;                 /* all extensions' length */
	while (end - p >= 4) {
		unsigned type = get16(p), elen = get16(p + 2);
		const uint8_t *e = p + 4;

		if ((size_t)(end - e) < elen)
			return 0;
		/* identities<7..>, then the first one: identity<1..>. */
		if (type == EXT_PRE_SHARED_KEY && elen >= 4 &&
		    get16(e + 2) + 4u <= elen) {
			*id = e + 4;
			*idlen = get16(e + 2);
			return 1;
		}
		p = e + elen;
	}
	return 0;
}

/* A ClientHello that offers a ticket: counted, and a reuse if its hash
 * was seen before. A hash, not the ticket: the ticket's bytes (GnuTLS
 * encrypts each one anew) are what a passive observer links on. */
static void note_offer(struct server *srv, const gnutls_datum_t *msg)
{
	const uint8_t *id;
	size_t idlen;
	uint8_t h[HASH_LEN];

	if (!psk_identity(msg->data, msg->size, &id, &idlen))
		return;
	srv->count.offered++;
	srv->count_changed = 1;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, id, idlen, h) < 0)
		return;
	for (size_t i = 0; i < srv->nseen; i++)
		if (memcmp(srv->seen[i], h, HASH_LEN) == 0) {
			srv->count.reused++;
			return;
		}
	if (srv->nseen < SEEN_MAX)
		memcpy(srv->seen[srv->nseen++], h, HASH_LEN);
}

static int on_handshake_msg(gnutls_session_t s, unsigned htype, unsigned when,
			    unsigned incoming, const gnutls_datum_t *msg)
{
	struct server *srv = gnutls_session_get_ptr(s);

	if (htype == GNUTLS_HANDSHAKE_CLIENT_HELLO && incoming &&
	    when == GNUTLS_HOOK_PRE) {
		note_offer(srv, msg);
	} else if (htype == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET && !incoming &&
		   when == GNUTLS_HOOK_POST) {
		srv->count.tickets++;
		srv->count_changed = 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Connections                                                        */
/* ------------------------------------------------------------------ */

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CS_DEAD;
}

/* reset-mid: SO_LINGER {1, 0} makes close() send RST, discarding
 * anything unsent — like a crashing server or a middlebox. */
static void conn_reset(struct conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_close(c);
}

static void conn_free(struct conn *c)
{
	while (c->held)
		free(pop_held(c));
	if (c->fd >= 0)
		close(c->fd);
	gnutls_deinit(c->s);
	free(c->out);
	free(c);
}

static struct conn *conn_new(struct server *srv, int fd)
{
	static const gnutls_datum_t alpn = { (unsigned char *)"dot", 3 };
	struct conn *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return NULL;
	c->fd = fd;
	c->state = CS_HANDSHAKE;
	if ((rc = gnutls_init(&c->s, GNUTLS_SERVER | GNUTLS_NONBLOCK)) < 0) {
		fprintf(stderr, "fake_upstream: gnutls_init: %s\n", gnutls_strerror(rc));
		free(c);
		return NULL;
	}
	if ((rc = gnutls_priority_set(c->s, srv->prio)) < 0 ||
	    (rc = gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, srv->cred)) < 0 ||
	    (rc = gnutls_session_ticket_enable_server(c->s, &srv->ticket_key)) < 0 ||
	    (rc = gnutls_alpn_set_protocols(c->s, &alpn, 1, 0)) < 0) {
		fprintf(stderr, "fake_upstream: session setup: %s\n", gnutls_strerror(rc));
		gnutls_deinit(c->s);
		free(c);
		return NULL;
	}
	gnutls_session_set_ptr(c->s, srv);
	gnutls_handshake_set_hook_function(c->s, GNUTLS_HANDSHAKE_ANY,
					   GNUTLS_HOOK_BOTH, on_handshake_msg);
	gnutls_transport_set_int(c->s, fd);
	return c;
}

static void handshake_step(struct server *srv, struct conn *c)
{
	int rc = gnutls_handshake(c->s);

	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return;         /* poll follows gnutls_record_get_direction */
	if (rc < 0) {
		if (!gnutls_error_is_fatal(rc))
			return; /* a warning alert: go on next time */
		conn_close(c);  /* client gone or refused us: not our problem */
		return;
	}
	c->state = CS_OPEN;
	c->last_active = now_ms();
	if (gnutls_session_is_resumed(c->s))
		srv->count.resumed++;
	else
		srv->count.handshakes++;
	srv->count_changed = 1;
	/* A query may have come with the client's Finished and already sit
	 * in GnuTLS's buffer, where poll() would never see it. */
	if (read_queries(srv, c) < 0)
		conn_close(c);
}

static void bye_step(struct conn *c)
{
	/* SHUT_WR: send close_notify, do not wait for the client's. */
	int rc = gnutls_bye(c->s, GNUTLS_SHUT_WR);

	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return;
	conn_close(c);
}

static void conn_io(struct server *srv, struct conn *c, short revents)
{
	switch (c->state) {
	case CS_HANDSHAKE:
		handshake_step(srv, c);
		break;
	case CS_OPEN:
		if ((revents & POLLOUT) && flush_out(c) < 0) {
			conn_close(c);
			break;
		}
		if (c->stalled) {
			/* Not read: only the client's going away ends it. */
			if (revents & (POLLHUP | POLLERR))
				conn_close(c);
			break;
		}
		if ((revents & (POLLIN | POLLHUP | POLLERR)) && read_queries(srv, c) < 0)
			conn_close(c);
		break;
	case CS_BYE:
		bye_step(c);
		break;
	case CS_DEAD:
		break;
	}
}

/* Timers, output and planned endings: run for every connection on every
 * pass of the loop. */
static void conn_service(struct server *srv, struct conn *c, uint64_t now)
{
	uint64_t idle = idle_due(srv, c);

	if (c->state != CS_OPEN)
		return;
	if (idle && now >= idle) {
		c->end = END_BYE;
		srv->count.idle_closes++;
		srv->count_changed = 1;
	}
	release_due(srv, c, now);
	if (c->end == END_ABORT || flush_out(c) < 0) {
		conn_close(c);
		return;
	}
	if (c->out_len > 0 || c->end == END_NONE)
		return;
	if (c->end == END_RESET) {
		conn_reset(c);
	} else {
		c->state = CS_BYE;
		bye_step(c);
	}
}

static short conn_events(const struct conn *c)
{
	switch (c->state) {
	case CS_HANDSHAKE:
	case CS_BYE:
		return gnutls_record_get_direction(c->s) ? POLLOUT : POLLIN;
	case CS_OPEN:
		return (c->stalled ? 0 : POLLIN) | (c->out_len ? POLLOUT : 0);
	case CS_DEAD:
		break;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Server                                                             */
/* ------------------------------------------------------------------ */

static int listen_loopback(int port, unsigned backlog)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("socket");
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(fd, (int)backlog) < 0) {
		fprintf(stderr, "fake_upstream: 127.0.0.1:%d: %s\n", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void accept_clients(struct server *srv)
{
	int one = 1;

	for (;;) {
		int fd = accept4(srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;         /* EAGAIN, or out of fds: try next pass */
		srv->count.connections++;
		srv->count_changed = 1;
		if (srv->nconns == MAX_CONNS || !(c = conn_new(srv, fd))) {
			close(fd);
			continue;
		}
		/* Each answer must leave when we say so (reorder, two-in-one,
		 * reset-mid), not when Nagle lets it. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		srv->conns[srv->nconns++] = c;
	}
}

static void sweep_dead(struct server *srv)
{
	size_t k = 0;

	for (size_t i = 0; i < srv->nconns; i++) {
		if (srv->conns[i]->state == CS_DEAD)
			conn_free(srv->conns[i]);
		else
			srv->conns[k++] = srv->conns[i];
	}
	srv->nconns = k;
}

/* The poll timeout: until the earliest held answer is due, or forever. */
static struct timespec *poll_timeout(const struct server *srv, uint64_t now,
				     struct timespec *ts)
{
	uint64_t first = 0;

	for (size_t i = 0; i < srv->nconns; i++) {
		uint64_t due = next_due(srv, srv->conns[i]);
		if (due && (!first || due < first))
			first = due;
	}
	if (!first)
		return NULL;
	first = first > now ? first - now : 0;
	ts->tv_sec = (time_t)(first / 1000);
	ts->tv_nsec = (long)(first % 1000) * 1000000;
	return ts;
}

/* One loop until SIGTERM/SIGINT. The signals stay blocked except inside
 * ppoll(), so one arriving between the check and the wait is not lost. */
static int serve(struct server *srv)
{
	static struct pollfd pfd[1 + MAX_CONNS];
	sigset_t during_poll;

	sigemptyset(&during_poll);
	while (!stop_signal) {
		size_t n = srv->nconns;
		struct timespec ts;

		/* Blackholed: nothing accepted, nothing served (a negative fd
		 * is not polled). */
		int quiet = blackholed;
		pfd[0] = (struct pollfd){ .fd = quiet ? -1 : srv->lfd, .events = POLLIN };
		for (size_t i = 0; i < n; i++)
			pfd[1 + i] = (struct pollfd){ .fd = quiet ? -1 : srv->conns[i]->fd,
						      .events = conn_events(srv->conns[i]) };
		if (ppoll(pfd, 1 + n, quiet ? NULL : poll_timeout(srv, now_ms(), &ts),
			  &during_poll) < 0) {
			if (errno == EINTR)
				continue;
			perror("ppoll");
			return -1;
		}
		for (size_t i = 0; i < n; i++)
			if (pfd[1 + i].revents)
				conn_io(srv, srv->conns[i], pfd[1 + i].revents);
		if (pfd[0].revents)
			accept_clients(srv);
		uint64_t now = now_ms();
		for (size_t i = 0; i < srv->nconns && !quiet; i++)
			conn_service(srv, srv->conns[i], now);
		sweep_dead(srv);
		if (srv->count_changed)
			save_counters(srv);
	}
	return 0;
}

/* --exact-chain: the certificates and key handed to every handshake. */
static gnutls_pcert_st exact_pcerts[16];
static unsigned exact_npcerts;
static gnutls_privkey_t exact_key;

static int exact_retrieve(gnutls_session_t s, const gnutls_datum_t *req_ca,
			  int nreq, const gnutls_pk_algorithm_t *algos, int nalgos,
			  gnutls_pcert_st **pcerts, unsigned *npcerts,
			  gnutls_privkey_t *key)
{
	(void)s; (void)req_ca; (void)nreq; (void)algos; (void)nalgos;
	*pcerts = exact_pcerts;
	*npcerts = exact_npcerts;
	*key = exact_key;
	return 0;
}

/* Load --cert and --key without GnuTLS's chain sorting (which would drop
 * or reorder what a hostile server sends). */
static int load_exact_chain(struct server *srv)
{
	gnutls_datum_t pem = { NULL, 0 };
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrts = 0;
	int rc;

	/* Not gnutls_pcert_list_import_x509_file: it keeps only what chains
	 * to the first certificate. */
	if ((rc = gnutls_load_file(srv->opt.cert, &pem)) < 0 ||
	    (rc = gnutls_x509_crt_list_import2(&crts, &ncrts, &pem,
					       GNUTLS_X509_FMT_PEM, 0)) < 0)
		goto fail;
	for (unsigned i = 0; i < ncrts; i++) {
		if (rc >= 0 && exact_npcerts < sizeof(exact_pcerts) / sizeof(exact_pcerts[0]))
			rc = gnutls_pcert_import_x509(&exact_pcerts[exact_npcerts++],
						      crts[i], 0);
		gnutls_x509_crt_deinit(crts[i]);
	}
	gnutls_free(crts);
	gnutls_free(pem.data);
	pem.data = NULL;
	if (rc < 0)
		goto fail;
	if ((rc = gnutls_load_file(srv->opt.key, &pem)) < 0 ||
	    (rc = gnutls_privkey_init(&exact_key)) < 0 ||
	    (rc = gnutls_privkey_import_x509_raw(exact_key, &pem,
						 GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
		goto fail;
	gnutls_free(pem.data);
	gnutls_certificate_set_retrieve_function2(srv->cred, exact_retrieve);
	return 0;
fail:
	gnutls_free(pem.data);
	fprintf(stderr, "fake_upstream: %s / %s: %s\n", srv->opt.cert,
		srv->opt.key, gnutls_strerror(rc));
	return -1;
}

static int tls_setup(struct server *srv)
{
	const char *where = NULL;
	int rc;

	if ((rc = gnutls_global_init()) < 0 ||
	    (rc = gnutls_certificate_allocate_credentials(&srv->cred)) < 0) {
		fprintf(stderr, "fake_upstream: GnuTLS init: %s\n", gnutls_strerror(rc));
		return -1;
	}
	/* The whole chain in the cert file is sent (server + CA). */
	if (srv->opt.exact_chain) {
		if (load_exact_chain(srv) < 0)
			return -1;
	} else if ((rc = gnutls_certificate_set_x509_key_file(
			    srv->cred, srv->opt.cert, srv->opt.key,
			    GNUTLS_X509_FMT_PEM)) < 0) {
		fprintf(stderr, "fake_upstream: %s / %s: %s\n", srv->opt.cert,
			srv->opt.key, gnutls_strerror(rc));
		return -1;
	}
	if ((rc = gnutls_priority_init(&srv->prio,
				       srv->opt.priority ? srv->opt.priority : PRIORITY,
				       &where)) < 0) {
		fprintf(stderr, "fake_upstream: priority at '%s': %s\n",
			where ? where : "?", gnutls_strerror(rc));
		return -1;
	}
	/* One master key for every session, so that a ticket issued on one
	 * connection resumes on the next. Each session copies it and derives
	 * the time-rotated ticket keys from it (same clock, same keys); a new
	 * process has a new key, so old tickets fall back to a full handshake. */
	if ((rc = gnutls_session_ticket_key_generate(&srv->ticket_key)) < 0) {
		fprintf(stderr, "fake_upstream: ticket key: %s\n", gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

static void tls_teardown(struct server *srv)
{
	if (srv->ticket_key.data) {
		gnutls_memset(srv->ticket_key.data, 0, srv->ticket_key.size);
		gnutls_free(srv->ticket_key.data);
	}
	for (unsigned i = 0; i < exact_npcerts; i++)
		gnutls_pcert_deinit(&exact_pcerts[i]);
	if (exact_key)
		gnutls_privkey_deinit(exact_key);
	if (srv->prio)
		gnutls_priority_deinit(srv->prio);
	if (srv->cred)
		gnutls_certificate_free_credentials(srv->cred);
	gnutls_global_deinit();
}

static void setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);   /* a vanished client is an error code */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
}

int main(int argc, char **argv)
{
	static struct server srv;   /* large (connection table): not on the stack */
	int rc = 1;

	parse_args(argc, argv, &srv.opt);
	blackholed = srv.opt.blackhole;
	setup_signals();
	srv.lfd = -1;
	if (tls_setup(&srv) < 0)
		goto out;
	srv.lfd = listen_loopback(srv.opt.port, srv.opt.backlog);
	if (srv.lfd < 0)
		goto out;
	save_counters(&srv);
	printf("fake_upstream ready port=%d\n", srv.opt.port);
	fflush(stdout);
	if (serve(&srv) == 0)
		rc = 0;
	print_counters(stdout, &srv.count);
	save_counters(&srv);
out:
	for (size_t i = 0; i < srv.nconns; i++)
		conn_free(srv.conns[i]);
	if (srv.lfd >= 0)
		close(srv.lfd);
	tls_teardown(&srv);
	return rc;
}
