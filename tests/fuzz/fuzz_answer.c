/* libFuzzer target: an upstream's answer on its way to a client: matching,
 * keepalive, per-hop option removal, the client's ID, question and RD
 * restored, truncation; the same as a stale answer (RFC 8767: TTL 30,
 * EDE 3). The first byte picks the client (TCP, UDP without EDNS, UDP
 * with EDNS). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/dnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static const uint8_t QUERY_EDNS[] = {
	0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
	1, 'a', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
	0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static uint8_t out[DNSMSG_MAX];
	dnsmsg_query_t q;
	size_t qlen = sizeof(QUERY_EDNS), max;

	if (len < 1)
		return 0;
	switch (data[0] % 3) {
	case 0: max = 0; break;
	case 1: qlen -= 11; max = 512; break;   /* no OPT */
	default: max = 4096; break;
	}
	uint8_t query[sizeof(QUERY_EDNS)];
	memcpy(query, QUERY_EDNS, sizeof(query));
	query[11] = qlen == sizeof(QUERY_EDNS);
	if (dnsmsg_parse_query(query, qlen, &q) != DNSMSG_OK)
		abort();
	data++;
	len--;
	dnsmsg_answer_matches(data, len, q.question, q.question_len);
	dnsmsg_answer_keepalive(data, len);
	/* The cache's view: a TTL, and aging that never breaks the message. */
	if (dnsmsg_cache_ttl(data, len) >= 0) {
		memcpy(out, data, len);
		dnsmsg_age_ttls(out, len, 100);
		if (dnsmsg_cache_ttl(out, len) < 0)
			abort();
	}
	/* Stale: within the client's size with the EDE added, every TTL 30,
	 * the client's ID. */
	size_t n = dnsmsg_build_stale_answer(data, len, &q, max, 30, out, sizeof(out));
	if (n && ((max && n > max) || dnsmsg_get_id(out) != q.id ||
		  dnsmsg_cache_ttl(out, n) > 30))
		abort();
	n = dnsmsg_build_client_answer(data, len, &q, max, out, sizeof(out));
	if (n == 0)
		return 0;
	if (dnsmsg_get_id(out) != q.id)
		abort();
	/* The client's own question and RD bit, whatever the answer said. */
	if (n < DNSMSG_HEADER_LEN + q.question_len ||
	    memcmp(out + DNSMSG_HEADER_LEN, q.question, q.question_len) != 0 ||
	    (out[2] & 0x01) != q.rd)
		abort();
	/* A UDP client never gets more than it can take. */
	if (max && n > max)
		abort();
	/* Nothing hop-by-hop reaches the client. */
	if (dnsmsg_answer_keepalive(out, n) >= 0)
		abort();
	return 0;
}
