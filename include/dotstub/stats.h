/* stats: every counter, gauge and histogram of dotstub in one table, kept
 * per thread and summed on read. The USR1 line, the metrics page and the
 * tests all read this table.
 *
 * Adding a metric is one row below: X(ID, name, type, labels, aggregation,
 * word in the USR1 line or NULL, help). The row makes the slot (SG_ID or
 * SU_ID), the HELP/TYPE lines, the series and the log word. Then count it
 * where it happens:
 *
 *     stats_inc(env->stats, SG_ANSWERED);
 *     stats_inc_at(env->stats, SG_RESPONSES, rcode_label);
 *     stats_observe(&u->stats, SU_ANSWER_SECONDS, 0, secs);
 *
 * Updates are plain increments of the thread's own block: no atomics, no
 * locks. Another thread reads a block only through the owning worker's
 * published snapshot (worker.c), or after the owner stopped.
 *
 * The block types are plain arrays in the header (not opaque) so that an
 * increment is one inlined add on the query path. */
#ifndef DOTSTUB_STATS_H
#define DOTSTUB_STATS_H

#include <stddef.h>
#include <stdio.h>

/* Histogram buckets (upper bounds, seconds), shared by every histogram; a
 * last bucket (+Inf) takes the rest. A histogram's slots: the buckets,
 * +Inf, then the sum. */
#define STATS_BUCKETS 14
#define STATS_HIST_SLOTS (STATS_BUCKETS + 2)
extern const double stats_bounds[STATS_BUCKETS];

/* Label sets: the label's name and values are in stats.c. */
#define STATS_N_NONE 1
#define STATS_N_RCODE 7       /* rcode: NOERROR .. REFUSED, OTHER */
#define STATS_N_TRANSPORT 2   /* transport: udp, tcp */
#define STATS_N_CAUSE 5       /* cause: see stats_cause_t */
#define STATS_N_SOURCE 3      /* source: cache, upstream, local */
#define STATS_N_REASON 8      /* reason: see stats_reason_t */
#define STATS_N_KIND 2        /* kind: full, resumed */

enum { STATS_TRANSPORT_UDP, STATS_TRANSPORT_TCP };
enum { STATS_SOURCE_CACHE, STATS_SOURCE_UPSTREAM, STATS_SOURCE_LOCAL };
enum { STATS_KIND_FULL, STATS_KIND_RESUMED };
/* Why a query got SERVFAIL from dotstub itself. */
typedef enum {
	STATS_CAUSE_DEADLINE,       /* the query's time ran out */
	STATS_CAUSE_UPSTREAM,       /* every attempt failed (connections, timeouts) */
	STATS_CAUSE_QUEUE_FULL,     /* too many queries waiting for a connection */
	STATS_CAUSE_NO_CONNECTION,  /* no upstream connection could take it */
	STATS_CAUSE_BAD_ANSWER,     /* the upstream's answer could not be read */
} stats_cause_t;
/* Why a connection failed before it was ready. */
typedef enum {
	STATS_REASON_NAME,          /* certificate not for the auth name */
	STATS_REASON_TRUST,         /* no chain to a trust anchor (or revoked, ...) */
	STATS_REASON_PIN,           /* no pinned key on the verified path */
	STATS_REASON_EKU,           /* not a TLS server certificate */
	STATS_REASON_EXPIRED,       /* expired or not yet valid */
	STATS_REASON_TLS,           /* any other TLS failure */
	STATS_REASON_CONNECT,       /* TCP connect failed */
	STATS_REASON_TIMEOUT,       /* connect or handshake took too long */
} stats_reason_t;

/* Per thread, for the whole thread: SG_* slots. Aggregation across
 * threads: SUM, or MAX for gauges where a sum means nothing. */
#define STATS_GLOBAL(X) \
	X(QUERIES, "queries_total", COUNTER, NONE, SUM, "queries", \
	  "Messages received from clients") \
	X(ANSWERED, "answers_total", COUNTER, NONE, SUM, "answered", \
	  "Answers sent to clients, from upstreams and the cache") \
	X(SERVFAIL, "servfail_total", COUNTER, NONE, SUM, "servfail", \
	  "SERVFAIL made by dotstub (no upstream answer in time)") \
	X(FORMERR, "formerr_total", COUNTER, NONE, SUM, "formerr", "FORMERR sent") \
	X(NOTIMP, "notimp_total", COUNTER, NONE, SUM, "notimp", "NOTIMP sent") \
	X(DROPPED, "dropped_total", COUNTER, NONE, SUM, "dropped", \
	  "Client messages dropped (short, too long, QR=1)") \
	X(TRUNCATED, "truncated_total", COUNTER, NONE, SUM, "truncated", \
	  "Answers truncated for UDP clients") \
	X(RESENT, "resent_total", COUNTER, NONE, SUM, "resent", \
	  "Queries resent to another connection") \
	X(CACHE_HITS, "cache_hits_total", COUNTER, NONE, SUM, "cache hits", \
	  "Answers from the cache") \
	X(STALE_ANSWERS, "stale_answers_total", COUNTER, NONE, SUM, "stale", \
	  "Expired answers served (RFC 8767): upstream down, slow or SERVFAIL") \
	X(PREFETCHES, "prefetches_total", COUNTER, NONE, SUM, "prefetches", \
	  "Refreshes sent for cached answers near expiry") \
	X(CACHE_FLUSHES, "cache_flushes_total", COUNTER, NONE, MAX, "cache flushes", \
	  "Cache flushes: SIGUSR2, or a reload that changed the upstreams") \
	X(LOCAL_ANSWERS, "local_answers_total", COUNTER, NONE, SUM, "local answers", \
	  "Answers from local zones (RFC 6761, 6303), never sent upstream") \
	X(REFUSED, "refused_total", COUNTER, NONE, SUM, "refused", \
	  "Client messages refused: source not in allow") \
	X(OPEN, "queries_open", GAUGE, NONE, SUM, "open", \
	  "Queries waiting for an answer") \
	X(UP_HANDSHAKES, "upstream_handshakes_total", COUNTER, NONE, SUM, "handshakes", \
	  "Full TLS handshakes, all upstreams") \
	X(UP_RESUMED, "upstream_resumed_total", COUNTER, NONE, SUM, "resumed", \
	  "Resumed TLS handshakes, all upstreams") \
	X(UP_FAILURES, "upstream_failures_total", COUNTER, NONE, SUM, "failures", \
	  "Upstream connection failures, all upstreams") \
	X(UP_UNMATCHED, "upstream_unmatched_total", COUNTER, NONE, SUM, "unmatched", \
	  "Upstream answers dropped: unknown ID or question") \
	X(UP_IDLE_CLOSES, "upstream_idle_closes_total", COUNTER, NONE, SUM, "idle closes", \
	  "Idle upstream connections the server closed (its idle timeout is learned)") \
	X(ANSWER_SECONDS, "answer_seconds", HISTOGRAM, NONE, SUM, NULL, \
	  "Time from query to answer, cache hits and upstream answers") \
	X(CLIENT_SECONDS, "client_answer_seconds", HISTOGRAM, SOURCE, SUM, NULL, \
	  "Time from query to answer, by source (cache, upstream, local zone)") \
	X(RESPONSES, "responses_total", COUNTER, RCODE, SUM, NULL, \
	  "Responses sent to clients, by rcode") \
	X(BY_TRANSPORT, "queries_by_transport_total", COUNTER, TRANSPORT, SUM, NULL, \
	  "Messages received from clients, by transport") \
	X(SERVFAIL_CAUSE, "servfail_by_cause_total", COUNTER, CAUSE, SUM, NULL, \
	  "SERVFAIL made by dotstub, by cause") \
	X(CACHE_MISSES, "cache_misses_total", COUNTER, NONE, SUM, "cache misses", \
	  "Cache lookups that found nothing fresh") \
	X(CACHE_EVICTIONS, "cache_evictions_total", COUNTER, NONE, SUM, "evicted", \
	  "Cache entries evicted to make room") \
	X(CACHE_ENTRIES, "cache_entries", GAUGE, NONE, SUM, "cache entries", \
	  "Answers in the cache") \
	X(CACHE_BYTES, "cache_bytes", GAUGE, NONE, SUM, NULL, \
	  "Bytes the cache holds, bookkeeping included") \
	X(DNSTAP_DROPPED, "dnstap_dropped_total", COUNTER, NONE, SUM, NULL, \
	  "dnstap messages dropped: the writer fell behind, or had no file or collector")

/* Per upstream and thread: SU_* slots, series labelled
 * upstream="IP@PORT#NAME". */
#define STATS_UPSTREAM(X) \
	X(QUERIES, "upstream_queries_total", COUNTER, NONE, SUM, NULL, \
	  "Queries sent to the upstream (resends included)") \
	X(ANSWERS, "upstream_answers_total", COUNTER, NONE, SUM, NULL, \
	  "Answers from the upstream") \
	X(TIMEOUTS, "upstream_timeouts_total", COUNTER, NONE, SUM, NULL, \
	  "Queries the upstream did not answer in attempt-timeout") \
	X(RESENDS, "upstream_resends_total", COUNTER, NONE, SUM, NULL, \
	  "Queries taken from the upstream and sent again (failure, timeout)") \
	X(CONNECTIONS, "upstream_connections", GAUGE, NONE, SUM, NULL, \
	  "Connections open to the upstream") \
	X(HANDSHAKES, "upstream_tls_handshakes_total", COUNTER, KIND, SUM, NULL, \
	  "TLS handshakes completed, full or resumed") \
	X(HS_FAILURES, "upstream_handshake_failures_total", COUNTER, REASON, SUM, NULL, \
	  "Connections that failed before they were ready, by reason") \
	X(HEALTHY, "upstream_healthy", GAUGE, NONE, MAX, NULL, \
	  "1 when its last connection succeeded (or none was tried), 0 after a failure") \
	X(SRTT, "upstream_srtt_seconds", GAUGE, NONE, MAX, NULL, \
	  "Smoothed answer time (0 until measured)") \
	X(ANSWER_SECONDS, "upstream_answer_seconds", HISTOGRAM, NONE, SUM, NULL, \
	  "Time from sending a query to the upstream to its answer") \
	X(CERT_EXPIRY, "upstream_cert_expiry_timestamp_seconds", GAUGE, NONE, MAX, NULL, \
	  "notAfter of the last verified leaf certificate (Unix time; 0 unknown)")

#define STATS_SLOTS_COUNTER 1
#define STATS_SLOTS_GAUGE 1
#define STATS_SLOTS_HISTOGRAM STATS_HIST_SLOTS
#define STATS_SIZE(type, labels) (STATS_SLOTS_##type * STATS_N_##labels)

/* SG_ID is the first slot of a family; slots follow label by label. */
enum {
#define X(id, name, type, labels, agg, log, help) \
	SG_##id, SG_##id##_LAST_ = SG_##id + STATS_SIZE(type, labels) - 1,
	STATS_GLOBAL(X)
#undef X
	SG_SLOTS
};
enum {
#define X(id, name, type, labels, agg, log, help) \
	SU_##id, SU_##id##_LAST_ = SU_##id + STATS_SIZE(type, labels) - 1,
	STATS_UPSTREAM(X)
#undef X
	SU_SLOTS
};

/* A thread's block, and an upstream's block in a thread. */
typedef struct {
	double v[SG_SLOTS];
} stats_global_t;
typedef struct {
	double v[SU_SLOTS];
} stats_upstream_t;

/* blk: a stats_global_t * or stats_upstream_t *; label < the set's N. */
#define stats_inc(blk, slot) ((blk)->v[(slot)] += 1)
#define stats_inc_at(blk, slot, label) ((blk)->v[(slot) + (label)] += 1)
#define stats_set(blk, slot, x) ((blk)->v[(slot)] = (x))
#define stats_observe(blk, slot, label, secs) \
	stats_hist_observe(&(blk)->v[(slot) + (label) * STATS_HIST_SLOTS], (secs))

static inline void stats_hist_observe(double *h, double secs)
{
	size_t i = 0;

	while (i < STATS_BUCKETS && secs > stats_bounds[i])
		i++;
	h[i] += 1;
	h[STATS_BUCKETS + 1] += secs;
}

/* The rcode label of a DNS rcode. */
static inline unsigned stats_rcode_label(unsigned rcode)
{
	return rcode < STATS_N_RCODE - 1 ? rcode : STATS_N_RCODE - 1;
}

/* Everything, summed over threads and merged by upstream label. */
typedef struct stats_snapshot stats_snapshot_t;

stats_snapshot_t *stats_snapshot_new(void);
void stats_snapshot_free(stats_snapshot_t *s);
void stats_snapshot_clear(stats_snapshot_t *s);
/* Add a thread's block (gauges by their aggregation). */
void stats_snapshot_add_global(stats_snapshot_t *s, const stats_global_t *g);
/* Add an upstream's block; blocks with the same label (threads, a set
 * retired by a reload) are merged. */
void stats_snapshot_add_upstream(stats_snapshot_t *s, const char *label,
				 const stats_upstream_t *u);
/* Add everything in from to s. */
void stats_snapshot_merge(stats_snapshot_t *s, const stats_snapshot_t *from);
/* Add only from's per-upstream counters and histograms to s: what a
 * freed upstream set leaves behind (its gauges mean nothing any more). */
void stats_snapshot_add_counters(stats_snapshot_t *s, const stats_snapshot_t *from);

/* One value: slot + label of the global block, or of the upstream named
 * label (0 when there is none). A histogram's count: stats_hist_count. */
double stats_global_value(const stats_snapshot_t *s, unsigned slot);
double stats_upstream_value(const stats_snapshot_t *s, const char *label,
			    unsigned slot);

/* The Prometheus text format (version 0.0.4), every family of the table. */
void stats_render(const stats_snapshot_t *s, FILE *out);
/* "queries 3, answered 3, ..." (the families with a log word). */
void stats_log_line(const stats_snapshot_t *s, char *buf, size_t cap);

#endif
