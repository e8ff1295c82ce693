#include "config.h"

#include <ares.h>
#include <ares_dns.h>
#include <stdio.h>
#include <string.h>

#include "dotstub/dnsmsg.h"

#define TYPE_A 1
#define TYPE_NS 2
#define TYPE_SOA 6
#define TYPE_AAAA 28
#define TYPE_OPT 41
#define TYPE_ANY 255
#define CLASS_IN 1
#define CLASS_ANY 255
#define OPT_ECS 8         /* RFC 7871 */
#define OPT_EXPIRE 9      /* RFC 7314 */
#define OPT_COOKIE 10     /* RFC 7873 */
#define OPT_KEEPALIVE 11  /* RFC 7828 */
#define OPT_PADDING 12    /* RFC 7830 */
#define OPT_EDE 15        /* RFC 8914 */
#define OPT_BIT(code) (1u << (code))
/* Options that belong to one transport, not to the message: never passed
 * on, in either direction. */
#define OPTS_HOP (OPT_BIT(OPT_KEEPALIVE) | OPT_BIT(OPT_PADDING))
/* Not sent upstream: the client's subnet (dotstub never tells anyone
 * where its clients are) and its cookie (a cookie is between a client
 * and the server it talks to: dotstub, not the upstream). */
#define OPTS_NOT_UPSTREAM (OPTS_HOP | OPT_BIT(OPT_ECS) | OPT_BIT(OPT_COOKIE))
/* Not kept nor passed to clients: what the upstream said to us as its
 * client — its server cookie (replayed, it would link clients), the
 * subnet it answered for, a zone's expiry. */
#define OPTS_NOT_TO_CLIENTS (OPTS_HOP | OPT_BIT(OPT_ECS) | \
			     OPT_BIT(OPT_EXPIRE) | OPT_BIT(OPT_COOKIE))
#define RR_FIXED_LEN 10
#define OPT_EMPTY_LEN (1 + RR_FIXED_LEN)
/* An Extended DNS Error option without EXTRA-TEXT: code, length, INFO-CODE. */
#define EDE_OPTION_LEN 6

/* One resource record as it sits in a message. */
struct rr {
	size_t start;   /* owner name */
	size_t fixed;   /* type, class, ttl, rdlength */
	size_t rdata;
	size_t end;
	uint16_t type;
	uint16_t rclass;
	uint32_t ttl;
};

/* An output buffer that remembers running out of room, so that builders can
 * append freely and test once at the end. */
struct out {
	uint8_t *p;
	size_t len;
	size_t cap;
	int full;
};

static void put(struct out *o, const void *data, size_t n)
{
	if (o->full || o->cap - o->len < n) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, data, n);
	o->len += n;
}

static void put16(struct out *o, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(o, b, 2);
}

static void put32(struct out *o, uint32_t v)
{
	put16(o, (uint16_t)(v >> 16));
	put16(o, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* Step over a wire-format name; compression pointers end it. Sets
 * *compressed when the name uses one. Returns 0, or -1 when malformed. */
static int skip_name(const uint8_t *m, size_t len, size_t *off, int *compressed)
{
	size_t p = *off, total = 1;

	*compressed = 0;
	while (p < len) {
		uint8_t c = m[p];
		if (c == 0) {
			*off = p + 1;
			return 0;
		}
		if ((c & 0xc0) == 0xc0) {
			if (p + 2 > len)
				return -1;
			*off = p + 2;
			*compressed = 1;
			return 0;
		}
		if (c & 0xc0)
			return -1;  /* extended label types are obsolete */
		total += (size_t)c + 1;
		if (total > 255)
			return -1;
		p += (size_t)c + 1;
	}
	return -1;
}

static int next_rr(const uint8_t *m, size_t len, size_t *off, struct rr *rr)
{
	int compressed;

	rr->start = *off;
	if (skip_name(m, len, off, &compressed) < 0)
		return -1;
	if (len - *off < RR_FIXED_LEN)
		return -1;
	rr->fixed = *off;
	rr->type = DNS_RR_TYPE(m + *off);
	rr->rclass = DNS_RR_CLASS(m + *off);
	rr->ttl = DNS_RR_TTL(m + *off);
	rr->rdata = *off + RR_FIXED_LEN;
	size_t rdlen = DNS_RR_LEN(m + *off);
	if (len - rr->rdata < rdlen)
		return -1;
	rr->end = rr->rdata + rdlen;
	*off = rr->end;
	return 0;
}

/* Skip `count` records from *off. */
static int skip_rrs(const uint8_t *m, size_t len, size_t *off, unsigned count)
{
	struct rr rr;

	while (count--)
		if (next_rr(m, len, off, &rr) < 0)
			return -1;
	return 0;
}

/* The EDNS options of an OPT record must tile its RDATA exactly. */
static int options_valid(const uint8_t *m, const struct rr *opt)
{
	size_t p = opt->rdata;

	while (p < opt->end) {
		if (opt->end - p < 4)
			return 0;
		size_t olen = get16(m + p + 2);
		if (opt->end - p - 4 < olen)
			return 0;
		p += 4 + olen;
	}
	return 1;
}

/* Copy the options of an OPT record (checked by options_valid()) but
 * those in `drop`, a set of OPT_BIT()s: one walk, straight into the
 * message being built. Codes from 32 up are kept. */
static void put_options_except(struct out *o, const uint8_t *m,
			       const struct rr *opt, uint32_t drop)
{
	size_t p = opt->rdata;

	while (p + 4 <= opt->end) {
		size_t olen = get16(m + p + 2);
		uint16_t code = get16(m + p);
		if (code >= 32 || !(drop & OPT_BIT(code)))
			put(o, m + p, 4 + olen);
		p += 4 + olen;
	}
}

/* Read the one question at offset 12 into q. Returns 0, or -1. */
static int read_question(const uint8_t *m, size_t len, dnsmsg_query_t *q,
			 size_t *off)
{
	char *name = NULL;
	long enclen = 0;
	int compressed;
	size_t p = DNSMSG_HEADER_LEN;

	/* c-ares validates the name (label lengths, pointers, total size). */
	if (ares_expand_name(m + p, m, (int)len, &name, &enclen) != ARES_SUCCESS)
		return -1;
	ares_free_string(name);
	/* A question's name is the first in the message: a pointer in it
	 * can only point forward, which no sane sender does. */
	if (skip_name(m, len, &p, &compressed) < 0 || compressed)
		return -1;
	if (len - p < 4)
		return -1;
	p += 4;
	q->question_len = p - DNSMSG_HEADER_LEN;
	memcpy(q->question, m + DNSMSG_HEADER_LEN, q->question_len);
	q->qtype = get16(m + p - 4);
	q->qclass = get16(m + p - 2);
	q->has_question = 1;
	*off = p;
	return 0;
}

/* The client's EDNS payload size, as far as we honour it: DNS Flag Day
 * 2020's 1232 at most (a 40-byte query for a 50 KB answer is an
 * amplifier), RFC 6891's 512 at least. */
static uint16_t udp_size(uint16_t advertised)
{
	if (advertised > DNSMSG_EDNS_UDP_SIZE)
		return DNSMSG_EDNS_UDP_SIZE;
	return advertised > 512 ? advertised : 512;
}

/* Walk the answer, authority and additional sections of a query, noting
 * its OPT record. */
static dnsmsg_verdict_t read_edns(const uint8_t *m, size_t len, size_t off,
				  dnsmsg_query_t *q)
{
	struct rr rr;
	unsigned ar = DNS_HEADER_ARCOUNT(m);

	if (skip_rrs(m, len, &off, DNS_HEADER_ANCOUNT(m) +
				   DNS_HEADER_NSCOUNT(m)) < 0)
		return DNSMSG_FORMERR;
	while (ar--) {
		if (next_rr(m, len, &off, &rr) < 0)
			return DNSMSG_FORMERR;
		if (rr.type != TYPE_OPT)
			continue;
		/* RFC 6891 6.1.1: one OPT, owned by the root. */
		if (q->edns || m[rr.start] != 0 || !options_valid(m, &rr))
			return DNSMSG_FORMERR;
		q->edns = 1;
		q->edns_do = (rr.ttl & 0x8000) != 0;
		q->udp_max = udp_size(rr.rclass);
	}
	return DNSMSG_OK;
}

dnsmsg_verdict_t dnsmsg_parse_query(const uint8_t *msg, size_t len,
				    dnsmsg_query_t *q)
{
	size_t off = 0;

	q->has_question = 0;
	q->edns = q->edns_do = 0;
	q->udp_max = 512;
	q->question_len = 0;
	q->id = len >= 2 ? DNS_HEADER_QID(msg) : 0;
	if (len < DNSMSG_HEADER_LEN || DNS_HEADER_QR(msg))
		return DNSMSG_DROP;
	q->cd = (msg[3] & 0x10) != 0;
	q->rd = DNS_HEADER_RD(msg) != 0;
	if (DNS_HEADER_QDCOUNT(msg) >= 1)
		read_question(msg, len, q, &off);
	if (DNS_HEADER_OPCODE(msg) != 0)
		return DNSMSG_NOTIMP;
	if (DNS_HEADER_QDCOUNT(msg) != 1 || !q->has_question)
		return DNSMSG_FORMERR;
	return read_edns(msg, len, off, q);
}

void dnsmsg_name_text(const uint8_t *name, size_t len, char *buf, size_t cap)
{
	char *text = NULL;
	long enclen = 0;

	if (len == 0 || len > DNSMSG_MAX ||
	    ares_expand_name(name, name, (int)len, &text, &enclen) != ARES_SUCCESS) {
		snprintf(buf, cap, "?");
		return;
	}
	snprintf(buf, cap, "%s", text[0] ? text : ".");
	ares_free_string(text);
}

void dnsmsg_query_name(const dnsmsg_query_t *q, char *buf, size_t cap)
{
	if (!q->has_question) {
		snprintf(buf, cap, "?");
		return;
	}
	dnsmsg_name_text(q->question, q->question_len, buf, cap);
}

static void put_opt_header(struct out *o, uint16_t udp_size, uint32_t ttl,
			   uint16_t rdlen)
{
	uint8_t root = 0;

	put(o, &root, 1);
	put16(o, TYPE_OPT);
	put16(o, udp_size);
	put32(o, ttl);
	put16(o, rdlen);
}

static size_t error_reply(const dnsmsg_query_t *q, const uint8_t *msg,
			  size_t len, int rcode, int with_opt, uint8_t *out,
			  size_t cap)
{
	struct out o = { out, 0, cap, 0 };
	uint8_t h[DNSMSG_HEADER_LEN] = { 0 };
	uint8_t opcode = len > 2 ? DNS_HEADER_OPCODE(msg) : 0;
	uint8_t rd = len > 2 ? DNS_HEADER_RD(msg) : 0;
	int with_q = q->has_question && opcode == 0;

	DNS_HEADER_SET_QID(h, q->id);
	DNS_HEADER_SET_QR(h, 1);
	DNS_HEADER_SET_OPCODE(h, opcode);
	DNS_HEADER_SET_RD(h, rd);
	DNS_HEADER_SET_RA(h, 1);
	DNS_HEADER_SET_RCODE(h, rcode);
	DNS_HEADER_SET_QDCOUNT(h, with_q ? 1 : 0);
	DNS_HEADER_SET_ARCOUNT(h, with_opt ? 1 : 0);
	put(&o, h, sizeof(h));
	if (with_q)
		put(&o, q->question, q->question_len);
	if (with_opt)
		put_opt_header(&o, DNSMSG_EDNS_UDP_SIZE,
			       q->edns_do ? 0x8000 : 0, 0);
	return o.full ? 0 : o.len;
}

size_t dnsmsg_error_reply(const dnsmsg_query_t *q, const uint8_t *msg,
			  size_t len, int rcode, uint8_t *out, size_t cap)
{
	return error_reply(q, msg, len, rcode, q->edns, out, cap);
}

/* The question was copied from msg, so header and question fit in len;
 * the check keeps that promise should the reply ever grow. */
size_t dnsmsg_refused_reply(const dnsmsg_query_t *q, const uint8_t *msg,
			    size_t len, uint8_t *out, size_t cap)
{
	size_t n = error_reply(q, msg, len, DNSMSG_RCODE_REFUSED, 0, out, cap);

	return n <= len ? n : 0;
}

void dnsmsg_set_id(uint8_t *msg, uint16_t id)
{
	DNS_HEADER_SET_QID(msg, id);
}

uint16_t dnsmsg_get_id(const uint8_t *msg)
{
	return DNS_HEADER_QID(msg);
}

/* Append a padding option that makes o->len a multiple of block, unless
 * that would pass `limit` (then the message goes unpadded). */
static void put_padding(struct out *o, size_t block, size_t limit)
{
	static const uint8_t zeros[256];
	size_t with_hdr = o->len + 4;
	size_t pad = (block - with_hdr % block) % block;

	if (with_hdr + pad > limit)
		return;
	put16(o, OPT_PADDING);
	put16(o, (uint16_t)pad);
	while (pad > 0) {
		size_t n = pad < sizeof(zeros) ? pad : sizeof(zeros);
		put(o, zeros, n);
		pad -= n;
	}
}

/* The client's OPT is replaced, or ours added (OPT_EMPTY_LEN); then the
 * empty keepalive option and the padding option's own header (4 each),
 * then up to a block less one of padding: round up, not add a block, or
 * a query needing block-3 bytes and more of padding would not fit. */
size_t dnsmsg_padded_size(size_t len, size_t pad_block)
{
	size_t n = len + OPT_EMPTY_LEN + 4;

	if (pad_block > 0)
		n = (n + 4 + pad_block - 1) / pad_block * pad_block;
	return n < DNSMSG_MAX ? n : DNSMSG_MAX;
}

static size_t build_query(const uint8_t *msg, size_t len,
			  const dnsmsg_query_t *q, uint16_t id, int keepalive,
			  size_t pad_block, uint8_t *out, size_t cap)
{
	struct out o = { out, 0, cap, 0 };
	struct rr rr, opt = { 0 };
	size_t off = DNSMSG_HEADER_LEN + q->question_len;
	unsigned ar = DNS_HEADER_ARCOUNT(msg), kept = 0;
	int have_opt = 0;
	size_t limit = cap < DNSMSG_MAX ? cap : DNSMSG_MAX;

	/* Header and question and the (normally empty) answer and authority
	 * sections go as they are. */
	if (skip_rrs(msg, len, &off, DNS_HEADER_ANCOUNT(msg) +
				     DNS_HEADER_NSCOUNT(msg)) < 0)
		return 0;
	put(&o, msg, off);
	while (ar--) {
		if (next_rr(msg, len, &off, &rr) < 0)
			return 0;
		if (rr.type == TYPE_OPT) {
			opt = rr;
			have_opt = 1;
		} else {
			put(&o, msg + rr.start, rr.end - rr.start);
			kept++;
		}
	}
	/* Our OPT goes last: the client's flags and options, minus its
	 * padding, subnet and cookie, then ours. */
	size_t opt_at = o.len;
	put_opt_header(&o, have_opt ? opt.rclass : DNSMSG_EDNS_UDP_SIZE,
		       have_opt ? opt.ttl : 0, 0);
	if (have_opt)
		put_options_except(&o, msg, &opt, OPTS_NOT_UPSTREAM);
	/* Ask for the server's idle timeout (RFC 7828) so that we close
	 * before it does. */
	if (keepalive) {
		put16(&o, OPT_KEEPALIVE);
		put16(&o, 0);
	}
	if (pad_block > 0)
		put_padding(&o, pad_block, limit);
	if (o.full || o.len > limit)
		return 0;
	size_t rdlen = o.len - opt_at - OPT_EMPTY_LEN;
	out[opt_at + 9] = (uint8_t)(rdlen >> 8);
	out[opt_at + 10] = (uint8_t)rdlen;
	DNS_HEADER_SET_QID(out, id);
	DNS_HEADER_SET_ARCOUNT(out, kept + 1);
	return o.len;
}

size_t dnsmsg_build_upstream(const uint8_t *msg, size_t len,
			     const dnsmsg_query_t *q, uint16_t id,
			     size_t pad_block, uint8_t *out, size_t cap)
{
	return build_query(msg, len, q, id, 1, pad_block, out, cap);
}

/* RFC 7828 3.2.1: no keepalive option over UDP; and padding only hides
 * lengths inside encryption. */
size_t dnsmsg_build_plain(const uint8_t *msg, size_t len,
			  const dnsmsg_query_t *q, uint8_t *out, size_t cap)
{
	return build_query(msg, len, q, 0, 0, 0, out, cap);
}

/* Label length bytes are below 64, so folding case byte by byte never
 * changes them: the folded wire form compares names label by label. The
 * last four bytes are QTYPE and QCLASS, numbers that are never folded
 * (type 97 is 'a', type 65 is 'A'). */
void dnsmsg_fold_question(const uint8_t *question, size_t len, uint8_t *out)
{
	size_t name_len = len >= 4 ? len - 4 : 0;

	for (size_t i = 0; i < name_len; i++)
		out[i] = dnsmsg_fold_byte(question[i]);
	memcpy(out + name_len, question + name_len, len - name_len);
}

int dnsmsg_answer_matches(const uint8_t *ans, size_t len,
			  const uint8_t *question, size_t question_len)
{
	const uint8_t *a = ans + DNSMSG_HEADER_LEN;
	size_t name_len;

	if (question_len < 5 || len < DNSMSG_HEADER_LEN + question_len ||
	    !DNS_HEADER_QR(ans) || DNS_HEADER_QDCOUNT(ans) != 1)
		return 0;
	name_len = question_len - 4;
	for (size_t i = 0; i < name_len; i++)
		if (dnsmsg_fold_byte(a[i]) != dnsmsg_fold_byte(question[i]))
			return 0;
	return memcmp(a + name_len, question + name_len, 4) == 0;
}

/* Copy the additional section with the OPT rewritten for the client: no
 * per-hop options (OPTS_NOT_TO_CLIENTS), our UDP size; dropped entirely
 * when the client sent no OPT.
 * Sets *opt_out and *opt_len to where the OPT went (length 0: none). */
static int put_additional(struct out *o, const uint8_t *ans, size_t len,
			  size_t *off, unsigned count, int client_edns,
			  unsigned *kept, size_t *opt_out, size_t *opt_len)
{
	struct rr rr;

	*opt_out = (size_t)-1;
	*opt_len = 0;
	while (count--) {
		if (next_rr(ans, len, off, &rr) < 0)
			return -1;
		if (rr.type != TYPE_OPT) {
			put(o, ans + rr.start, rr.end - rr.start);
			(*kept)++;
			continue;
		}
		if (!client_edns || *opt_out != (size_t)-1 ||
		    !options_valid(ans, &rr))
			continue;
		*opt_out = o->len;
		put_opt_header(o, DNSMSG_EDNS_UDP_SIZE, rr.ttl, 0);
		put_options_except(o, ans, &rr, OPTS_NOT_TO_CLIENTS);
		*opt_len = o->len - *opt_out;
		size_t rdlen = *opt_len - OPT_EMPTY_LEN;
		if (!o->full) {
			o->p[*opt_out + 9] = (uint8_t)(rdlen >> 8);
			o->p[*opt_out + 10] = (uint8_t)rdlen;
		}
		(*kept)++;
	}
	return 0;
}

/* Header, the client's question and the OPT, TC=1: the client retries
 * over TCP. The OPT keeps its options only when they fit in max (the
 * header and question always do: 12 + 259 + 11 < 512). */
static size_t truncate_to(uint8_t *out, const dnsmsg_query_t *q, size_t max,
			  size_t opt_at, size_t opt_len)
{
	size_t at = DNSMSG_HEADER_LEN + q->question_len;

	if (opt_len && at + opt_len > max) {
		opt_len = OPT_EMPTY_LEN;
		out[opt_at + 9] = out[opt_at + 10] = 0;
	}
	if (opt_len)
		memmove(out + at, out + opt_at, opt_len);
	memcpy(out + DNSMSG_HEADER_LEN, q->question, q->question_len);
	DNS_HEADER_SET_TC(out, 1);
	DNS_HEADER_SET_QDCOUNT(out, 1);
	DNS_HEADER_SET_ANCOUNT(out, 0);
	DNS_HEADER_SET_NSCOUNT(out, 0);
	DNS_HEADER_SET_ARCOUNT(out, opt_len ? 1 : 0);
	return at + opt_len;
}

/* The answer with its OPT's per-hop options removed (the whole OPT when
 * keep_opt is 0); *opt_at, *opt_len: where that OPT is in out. */
static size_t copy_answer(const uint8_t *ans, size_t len, int keep_opt,
			  uint8_t *out, size_t cap, size_t *opt_at,
			  size_t *opt_len)
{
	struct out o = { out, 0, cap, 0 };
	size_t off = DNSMSG_HEADER_LEN;
	unsigned kept = 0;
	int compressed;

	if (len < DNSMSG_HEADER_LEN)
		return 0;
	for (unsigned i = DNS_HEADER_QDCOUNT(ans); i > 0; i--) {
		if (skip_name(ans, len, &off, &compressed) < 0 || len - off < 4)
			return 0;
		off += 4;
	}
	if (skip_rrs(ans, len, &off, DNS_HEADER_ANCOUNT(ans) +
				     DNS_HEADER_NSCOUNT(ans)) < 0)
		return 0;
	put(&o, ans, off);
	if (put_additional(&o, ans, len, &off, DNS_HEADER_ARCOUNT(ans),
			   keep_opt, &kept, opt_at, opt_len) < 0 || o.full)
		return 0;
	DNS_HEADER_SET_ARCOUNT(out, kept);
	return o.len;
}

size_t dnsmsg_strip_answer(const uint8_t *ans, size_t len, uint8_t *out,
			   size_t cap)
{
	size_t opt_at, opt_len;

	return copy_answer(ans, len, 1, out, cap, &opt_at, &opt_len);
}

size_t dnsmsg_build_client_answer(const uint8_t *ans, size_t len,
				  const dnsmsg_query_t *q, size_t max,
				  uint8_t *out, size_t cap)
{
	size_t opt_at, opt_len;
	size_t n = copy_answer(ans, len, q->edns, out, cap, &opt_at, &opt_len);

	if (n == 0 || !dnsmsg_answer_matches(out, n, q->question, q->question_len))
		return 0;
	/* The client's own spelling of the name (the cache holds the first
	 * asker's): clients that randomise its case (0x20) check it. The
	 * match above makes it the same length, in the same place. */
	memcpy(out + DNSMSG_HEADER_LEN, q->question, q->question_len);
	DNS_HEADER_SET_QID(out, q->id);
	/* RD is copied from the query (RFC 1035 4.1.1): the cached answer
	 * may have been for a client that set it otherwise. (ares_dns.h's
	 * DNS_HEADER_SET_RD can only set the bit.) */
	out[2] = (uint8_t)((out[2] & ~0x01) | (q->rd ? 0x01 : 0));
	if (max > 0 && n > max)
		return truncate_to(out, q, max, opt_at, opt_len);
	return n;
}

size_t dnsmsg_build_probe(const char *name, uint16_t qtype, uint16_t id,
			  uint8_t *out, size_t cap)
{
	unsigned char *buf = NULL;
	int len = 0;
	size_t n = 0;

	if (ares_create_query(name, 1 /* IN */, qtype, id, 1, &buf, &len,
			      DNSMSG_EDNS_UDP_SIZE) != ARES_SUCCESS)
		return 0;
	if ((size_t)len <= cap) {
		memcpy(out, buf, (size_t)len);
		n = (size_t)len;
	}
	ares_free_string(buf);
	return n;
}

int dnsmsg_rcode(const uint8_t *msg)
{
	return DNS_HEADER_RCODE(msg);
}

int dnsmsg_truncated(const uint8_t *msg)
{
	return DNS_HEADER_TC(msg) != 0;
}

/* The OPT record of a message, or -1. */
static int find_opt(const uint8_t *m, size_t len, struct rr *opt)
{
	size_t off = DNSMSG_HEADER_LEN;
	unsigned ar = DNS_HEADER_ARCOUNT(m);
	int compressed;

	for (unsigned i = DNS_HEADER_QDCOUNT(m); i > 0; i--) {
		if (skip_name(m, len, &off, &compressed) < 0 || len - off < 4)
			return -1;
		off += 4;
	}
	if (skip_rrs(m, len, &off, DNS_HEADER_ANCOUNT(m) + DNS_HEADER_NSCOUNT(m)) < 0)
		return -1;
	while (ar--) {
		if (next_rr(m, len, &off, opt) < 0)
			return -1;
		if (opt->type == TYPE_OPT)
			return options_valid(m, opt) ? 0 : -1;
	}
	return -1;
}

/* The message is copied around its OPT's options: before them, the
 * options but padding, after them (nothing, or records after the OPT).
 * The options that went are what the copy is short of. */
size_t dnsmsg_unpad(const uint8_t *msg, size_t len, uint8_t *out, size_t cap)
{
	struct out o = { out, 0, cap, 0 };
	struct rr opt;

	if (len < DNSMSG_HEADER_LEN || find_opt(msg, len, &opt) < 0)
		return 0;
	put(&o, msg, opt.rdata);
	put_options_except(&o, msg, &opt, OPT_BIT(OPT_PADDING));
	size_t rdlen = o.len - opt.rdata;
	if (o.full || rdlen == opt.end - opt.rdata)
		return 0;
	put(&o, msg + opt.end, len - opt.end);
	if (o.full)
		return 0;
	out[opt.rdata - 2] = (uint8_t)(rdlen >> 8);
	out[opt.rdata - 1] = (uint8_t)rdlen;
	return o.len;
}

int dnsmsg_answer_keepalive(const uint8_t *ans, size_t len)
{
	struct rr opt;

	if (len < DNSMSG_HEADER_LEN || find_opt(ans, len, &opt) < 0)
		return -1;
	for (size_t p = opt.rdata; p + 4 <= opt.end; p += 4 + get16(ans + p + 2))
		if (get16(ans + p) == OPT_KEEPALIVE && get16(ans + p + 2) == 2)
			return get16(ans + p + 4);
	return -1;
}

/* Walk every record past the question: fn(rr) for each. -1 when the
 * message cannot be read. */
static int each_rr(const uint8_t *m, size_t len,
		   void (*fn)(const uint8_t *m, const struct rr *rr, void *arg),
		   void *arg)
{
	size_t off = DNSMSG_HEADER_LEN;
	unsigned n;
	int compressed;
	struct rr rr;

	for (unsigned i = DNS_HEADER_QDCOUNT(m); i > 0; i--) {
		if (skip_name(m, len, &off, &compressed) < 0 || len - off < 4)
			return -1;
		off += 4;
	}
	n = DNS_HEADER_ANCOUNT(m) + DNS_HEADER_NSCOUNT(m) + DNS_HEADER_ARCOUNT(m);
	while (n--) {
		if (next_rr(m, len, &off, &rr) < 0)
			return -1;
		fn(m, &rr, arg);
	}
	return 0;
}

static void min_ttl(const uint8_t *m, const struct rr *rr, void *arg)
{
	long *ttl = arg;
	long t = rr->ttl > 0x7fffffffu ? 0 : (long)rr->ttl;

	if (rr->type == TYPE_OPT)
		return;
	/* The SOA of a negative answer: its MINIMUM caps it (RFC 2308). */
	if (rr->type == TYPE_SOA && rr->end - rr->rdata >= 4) {
		uint32_t minimum = DNS__32BIT(m + rr->end - 4);
		if (minimum < (uint32_t)t)
			t = (long)minimum;
	}
	if (*ttl < 0 || t < *ttl)
		*ttl = t;
}

long dnsmsg_cache_ttl(const uint8_t *msg, size_t len)
{
	long ttl = -1;
	int rcode;

	if (len < DNSMSG_HEADER_LEN || !DNS_HEADER_QR(msg) || DNS_HEADER_TC(msg))
		return -1;
	rcode = DNS_HEADER_RCODE(msg);
	if (rcode != 0 && rcode != 3)
		return -1;
	if (each_rr(msg, len, min_ttl, &ttl) < 0)
		return -1;
	return ttl;
}

static void age_one(const uint8_t *m, const struct rr *rr, void *arg)
{
	uint32_t age = *(const uint32_t *)arg;
	uint8_t *p = (uint8_t *)m + rr->fixed + 4;

	if (rr->type == TYPE_OPT)
		return;
	DNS__SET32BIT(p, rr->ttl > age ? rr->ttl - age : 0);
}

struct ttl_bounds {
	uint32_t lo, hi;
};

static void clamp_one(const uint8_t *m, const struct rr *rr, void *arg)
{
	const struct ttl_bounds *b = arg;
	uint8_t *p = (uint8_t *)m + rr->fixed + 4;

	if (rr->type == TYPE_OPT)
		return;
	if (rr->ttl > b->hi)
		DNS__SET32BIT(p, b->hi);
	else if (rr->ttl < b->lo)
		DNS__SET32BIT(p, b->lo);
}

void dnsmsg_clamp_ttls(uint8_t *msg, size_t len, uint32_t lo, uint32_t hi)
{
	struct ttl_bounds b = { lo < hi ? lo : hi, hi };

	if (len >= DNSMSG_HEADER_LEN)
		each_rr(msg, len, clamp_one, &b);
}

void dnsmsg_age_ttls(uint8_t *msg, size_t len, uint32_t age)
{
	if (len >= DNSMSG_HEADER_LEN && age > 0)
		each_rr(msg, len, age_one, &age);
}

int dnsmsg_negative(const uint8_t *msg)
{
	return DNS_HEADER_RCODE(msg) == 3 || DNS_HEADER_ANCOUNT(msg) == 0;
}

/* The EDE option appended to the message's OPT, or an OPT carrying it
 * appended to the message when it has none. Returns the new length, 0
 * when it does not fit in cap. */
static size_t add_ede(uint8_t *m, size_t len, size_t cap, uint16_t info)
{
	const uint8_t ede[EDE_OPTION_LEN] = {
		0, OPT_EDE, 0, 2, (uint8_t)(info >> 8), (uint8_t)info,
	};
	struct out o = { m, len, cap, 0 };
	struct rr opt;

	if (find_opt(m, len, &opt) == 0) {
		size_t rdlen = opt.end - opt.rdata + EDE_OPTION_LEN;
		if (cap - len < EDE_OPTION_LEN || rdlen > 0xffff)
			return 0;
		memmove(m + opt.end + EDE_OPTION_LEN, m + opt.end, len - opt.end);
		memcpy(m + opt.end, ede, EDE_OPTION_LEN);
		m[opt.fixed + 8] = (uint8_t)(rdlen >> 8);
		m[opt.fixed + 9] = (uint8_t)rdlen;
		return len + EDE_OPTION_LEN;
	}
	put_opt_header(&o, DNSMSG_EDNS_UDP_SIZE, 0, EDE_OPTION_LEN);
	put(&o, ede, EDE_OPTION_LEN);
	if (o.full)
		return 0;
	DNS_HEADER_SET_ARCOUNT(m, DNS_HEADER_ARCOUNT(m) + 1);
	return o.len;
}

size_t dnsmsg_build_stale_answer(const uint8_t *ans, size_t len,
				 const dnsmsg_query_t *q, size_t max,
				 uint32_t ttl, uint8_t *out, size_t cap)
{
	/* Room for the EDE (and an OPT to carry it) kept free from the
	 * start, so that adding it never pushes past the client's size:
	 * max - room still holds header, question and OPT (>= 495 > 282). */
	size_t room = q->edns ? OPT_EMPTY_LEN + EDE_OPTION_LEN : 0;
	size_t n;

	if (cap < room)
		return 0;
	n = dnsmsg_build_client_answer(ans, len, q, max ? max - room : 0, out,
				       cap - room);
	if (n == 0)
		return 0;
	dnsmsg_clamp_ttls(out, n, ttl, ttl);
	return q->edns ? add_ede(out, n, cap, DNSMSG_EDE_STALE_ANSWER) : n;
}

/* Local zones (RFC 6303 section 3): one TTL for every record, and the
 * SOA's MINIMUM, the time clients keep a negative answer. */
#define LOCAL_TTL 10800
#define PTR_TO(off) (uint16_t)(0xc000 | (off))

/* Owner (a compression pointer to `owner`), type, class IN, TTL, RDLENGTH. */
static void put_rr_head(struct out *o, size_t owner, uint16_t type,
			uint16_t rdlen)
{
	put16(o, PTR_TO(owner));
	put16(o, type);
	put16(o, CLASS_IN);
	put32(o, LOCAL_TTL);
	put16(o, rdlen);
}

/* "@ SOA @ nobody.invalid. 1 3600 1200 604800 10800" (RFC 6303 3). */
static void put_local_soa(struct out *o, size_t apex)
{
	static const uint8_t rname[] = "\6nobody\7invalid";  /* + its 0 */

	put_rr_head(o, apex, TYPE_SOA, (uint16_t)(2 + sizeof(rname) + 20));
	put16(o, PTR_TO(apex));
	put(o, rname, sizeof(rname));
	put32(o, 1);
	put32(o, 3600);
	put32(o, 1200);
	put32(o, 604800);
	put32(o, LOCAL_TTL);
}

/* The records of `qtype` (every type for ANY) that the question's name
 * has in a local zone; returns how many were written. */
static unsigned put_local_records(struct out *o, uint16_t qtype,
				  dnsmsg_local_t zone, size_t zone_at)
{
	static const uint8_t v4[4] = { 127, 0, 0, 1 };
	static const uint8_t v6[16] = { [15] = 1 };
	int any = qtype == TYPE_ANY, at_apex = zone_at == DNSMSG_HEADER_LEN;
	unsigned n = 0;

	if (zone == DNSMSG_LOCAL_LOOPBACK && (any || qtype == TYPE_A)) {
		put_rr_head(o, DNSMSG_HEADER_LEN, TYPE_A, sizeof(v4));
		put(o, v4, sizeof(v4));
		n++;
	}
	if (zone == DNSMSG_LOCAL_LOOPBACK && (any || qtype == TYPE_AAAA)) {
		put_rr_head(o, DNSMSG_HEADER_LEN, TYPE_AAAA, sizeof(v6));
		put(o, v6, sizeof(v6));
		n++;
	}
	if (at_apex && (any || qtype == TYPE_SOA)) {
		put_local_soa(o, zone_at);
		n++;
	}
	if (at_apex && (any || qtype == TYPE_NS)) {
		put_rr_head(o, zone_at, TYPE_NS, 2);
		put16(o, PTR_TO(zone_at));
		n++;
	}
	return n;
}

/* 1 when `apex` is where a label of q's question name starts. */
static int label_at(const dnsmsg_query_t *q, size_t apex)
{
	size_t p = 0, name_len = q->question_len >= 4 ? q->question_len - 4 : 0;

	while (p < name_len && q->question[p] != 0) {
		if (p == apex)
			return 1;
		p += (size_t)q->question[p] + 1;
	}
	return 0;
}

size_t dnsmsg_local_answer(const dnsmsg_query_t *q, dnsmsg_local_t zone,
			   size_t apex, uint8_t *out, size_t cap)
{
	struct out o = { out, 0, cap, 0 };
	uint8_t h[DNSMSG_HEADER_LEN] = { 0 };
	size_t zone_at = DNSMSG_HEADER_LEN + apex;
	int exists = zone == DNSMSG_LOCAL_LOOPBACK ||
		     (zone == DNSMSG_LOCAL_EMPTY && apex == 0);
	int rcode = exists ? DNSMSG_RCODE_NOERROR : DNSMSG_RCODE_NXDOMAIN;
	unsigned an = 0, ns = 0;

	if (!q->has_question || !label_at(q, apex))
		return 0;
	put(&o, h, sizeof(h));
	put(&o, q->question, q->question_len);
	if (q->qclass != CLASS_IN && q->qclass != CLASS_ANY)
		rcode = DNSMSG_RCODE_REFUSED;   /* the zones are class IN */
	else if (exists)
		an = put_local_records(&o, q->qtype, zone, zone_at);
	if (rcode != DNSMSG_RCODE_REFUSED && an == 0) {
		put_local_soa(&o, zone_at);   /* NXDOMAIN or NODATA */
		ns = 1;
	}
	if (q->edns)
		put_opt_header(&o, DNSMSG_EDNS_UDP_SIZE, q->edns_do ? 0x8000 : 0, 0);
	if (o.full)
		return 0;
	DNS_HEADER_SET_QID(out, q->id);
	DNS_HEADER_SET_QR(out, 1);
	DNS_HEADER_SET_AA(out, 1);
	DNS_HEADER_SET_RD(out, q->rd);
	DNS_HEADER_SET_RA(out, 1);
	out[3] |= q->cd ? 0x10 : 0;   /* CD copied back (RFC 6840 5.9) */
	DNS_HEADER_SET_RCODE(out, rcode);
	DNS_HEADER_SET_QDCOUNT(out, 1);
	DNS_HEADER_SET_ANCOUNT(out, an);
	DNS_HEADER_SET_NSCOUNT(out, ns);
	DNS_HEADER_SET_ARCOUNT(out, q->edns ? 1 : 0);
	return o.len;
}

/* One label of text (up to a dot or the end) into o; the end of it, or
 * NULL when it is empty, too long, or holds a byte names here may not. */
static const char *put_text_label(struct out *o, const char *p)
{
	size_t n = 0;

	while (p[n] && p[n] != '.') {
		unsigned char c = (unsigned char)p[n];
		if (c <= ' ' || c >= 0x7f || c == '\\')
			return NULL;
		n++;
	}
	if (n == 0 || n > 63)
		return NULL;
	put(o, (uint8_t[]){ (uint8_t)n }, 1);
	put(o, p, n);
	return p + n;
}

size_t dnsmsg_name_from_text(const char *text, uint8_t *out, size_t cap)
{
	struct out o = { out, 0, cap, 0 };
	const char *p = text;

	if (!text[0])
		return 0;
	if (strcmp(text, ".") != 0)
		while (*p) {
			p = put_text_label(&o, p);
			if (!p)
				return 0;
			if (*p == '.')
				p++;
		}
	put(&o, "", 1);
	return o.full || o.len > DNSMSG_NAME_MAX ? 0 : o.len;
}
