/* libFuzzer target: a client's query through everything dotstub does with
 * it before it goes upstream. */
#include <stdint.h>
#include <stdlib.h>

#include "dotstub/dnsmsg.h"
#include "dotstub/zones.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* A name of a local zone gets an answer for its own question, within
 * 512 bytes whatever the name. */
static void check_local_answer(const dnsmsg_query_t *q)
{
	static zones_t *zones;
	static uint8_t out[1024];
	zones_match_t m;
	size_t n;

	if (!zones) {
		zones = zones_create();
		zones_add_local_defaults(zones);
	}
	if (zones_lookup(zones, q->question, q->question_len, &m) != ZONES_LOCAL)
		return;
	n = dnsmsg_local_answer(q, m.local, m.apex, out, sizeof(out));
	if (n == 0 || n > 512 ||
	    !dnsmsg_answer_matches(out, n, q->question, q->question_len) ||
	    dnsmsg_get_id(out) != q->id)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static uint8_t out[DNSMSG_MAX];
	dnsmsg_query_t q;
	char name[1100];
	dnsmsg_verdict_t v = dnsmsg_parse_query(data, len, &q);

	if (v == DNSMSG_DROP)
		return 0;
	dnsmsg_error_reply(&q, data, len, DNSMSG_RCODE_FORMERR, out, sizeof(out));
	if (v != DNSMSG_OK)
		return 0;
	dnsmsg_query_name(&q, name, sizeof(name));
	check_local_answer(&q);
	size_t n = dnsmsg_build_upstream(data, len, &q, 0x1234, 128, out, sizeof(out));
	/* What goes upstream is itself a valid query for the same question,
	 * padded to the block whenever there was room. */
	if (n) {
		dnsmsg_query_t q2;
		if (dnsmsg_parse_query(out, n, &q2) != DNSMSG_OK ||
		    q2.question_len != q.question_len)
			abort();
		if (len < 60000 && n % 128 != 0)
			abort();
	}
	return 0;
}
