/* treq: a test's request for dot_conn and the upstream pool, and what
 * became of it. The callbacks assert the contract "exactly one callback
 * ends a request" and note the order in which requests ended. */
#ifndef TREQ_H
#define TREQ_H

#include <stddef.h>
#include <stdint.h>

#include "dotstub/dnsmsg.h"
#include "dotstub/upstream.h"

struct treq {
	upstream_req_t u;          /* u.req is what dot_conn sees */
	dnsmsg_query_t q;
	uint8_t msg[DNSMSG_QUESTION_MAX + 64];
	size_t len;
	int answered, failed, counted;
	unsigned done_at;          /* treq_events when it ended */
	uint8_t answer[512];
	size_t answer_len;
};

/* Events so far (requests ended, and whatever else a suite counts in),
 * for asserting their order; 0 at start. */
extern unsigned treq_events;

/* A query for name, type A, with ID 0 (dot_conn gives it its own). */
void treq_init(struct treq *t, const char *name);

#endif
