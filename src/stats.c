#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dotstub/stats.h"
#include "dotstub/xmalloc.h"

const double stats_bounds[STATS_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
	0.2, 0.5, 1, 2,
};

typedef enum { STATS_COUNTER, STATS_GAUGE, STATS_HISTOGRAM } stats_type_t;
typedef enum { STATS_AGG_SUM, STATS_AGG_MAX } stats_agg_t;

typedef struct {
	const char *name;        /* NULL: no label */
	const char *const *values;
	unsigned n;
} labels_t;

static const char *const RCODES[STATS_N_RCODE] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "OTHER",
};
static const char *const TRANSPORTS[STATS_N_TRANSPORT] = { "udp", "tcp" };
static const char *const CAUSES[STATS_N_CAUSE] = {
	"deadline", "upstream", "queue_full", "no_connection", "bad_answer",
};
static const char *const SOURCES[STATS_N_SOURCE] = { "cache", "upstream", "local" };
static const char *const REASONS[STATS_N_REASON] = {
	"name", "trust", "pin", "eku", "expired", "tls", "connect", "timeout",
};
static const char *const KINDS[STATS_N_KIND] = { "full", "resumed" };

static const labels_t LABELS_NONE = { NULL, NULL, 1 };
static const labels_t LABELS_RCODE = { "rcode", RCODES, STATS_N_RCODE };
static const labels_t LABELS_TRANSPORT = { "transport", TRANSPORTS, STATS_N_TRANSPORT };
static const labels_t LABELS_CAUSE = { "cause", CAUSES, STATS_N_CAUSE };
static const labels_t LABELS_SOURCE = { "source", SOURCES, STATS_N_SOURCE };
static const labels_t LABELS_REASON = { "reason", REASONS, STATS_N_REASON };
static const labels_t LABELS_KIND = { "kind", KINDS, STATS_N_KIND };

typedef struct {
	const char *name;        /* after "dotstub_" */
	const char *help;
	const char *log;         /* word in the USR1 line, or NULL */
	stats_type_t type;
	stats_agg_t agg;
	const labels_t *labels;
	unsigned slot;
	unsigned size;           /* slots */
} family_t;

#define ROW(prefix, id, name, type, labels, agg, log, help) \
	{ name, help, log, STATS_##type, STATS_AGG_##agg, &LABELS_##labels, \
	  prefix##id, STATS_SIZE(type, labels) },
#define G(id, name, type, labels, agg, log, help) \
	ROW(SG_, id, name, type, labels, agg, log, help)
#define U(id, name, type, labels, agg, log, help) \
	ROW(SU_, id, name, type, labels, agg, log, help)
static const family_t GLOBAL[] = { STATS_GLOBAL(G) };
static const family_t UPSTREAM[] = { STATS_UPSTREAM(U) };
#undef G
#undef U
#undef ROW
#define NGLOBAL (sizeof(GLOBAL) / sizeof(GLOBAL[0]))
#define NUPSTREAM (sizeof(UPSTREAM) / sizeof(UPSTREAM[0]))

/* An upstream label is IP@PORT#NAME: an address, a port, a DNS name. */
#define LABEL_MAX 320

typedef struct {
	char label[LABEL_MAX];
	stats_upstream_t u;
} upstream_entry_t;

struct stats_snapshot {
	stats_global_t g;
	upstream_entry_t *ups;
	size_t nups, cap;
};

stats_snapshot_t *stats_snapshot_new(void)
{
	return xcalloc(1, sizeof(stats_snapshot_t));
}

void stats_snapshot_free(stats_snapshot_t *s)
{
	if (!s)
		return;
	free(s->ups);
	free(s);
}

void stats_snapshot_clear(stats_snapshot_t *s)
{
	memset(&s->g, 0, sizeof(s->g));
	s->nups = 0;
}

static void add_slots(double *to, const double *from, const family_t *f,
		      size_t nf)
{
	for (size_t i = 0; i < nf; i++)
		for (unsigned k = f[i].slot; k < f[i].slot + f[i].size; k++)
			if (f[i].agg == STATS_AGG_SUM)
				to[k] += from[k];
			else if (from[k] > to[k])
				to[k] = from[k];
}

void stats_snapshot_add_global(stats_snapshot_t *s, const stats_global_t *g)
{
	add_slots(s->g.v, g->v, GLOBAL, NGLOBAL);
}

static upstream_entry_t *find_upstream(const stats_snapshot_t *s,
				       const char *label)
{
	for (size_t i = 0; i < s->nups; i++)
		if (strcmp(s->ups[i].label, label) == 0)
			return &s->ups[i];
	return NULL;
}

void stats_snapshot_add_upstream(stats_snapshot_t *s, const char *label,
				 const stats_upstream_t *u)
{
	upstream_entry_t *e = find_upstream(s, label);

	if (!e) {
		if (s->nups == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 4;
			s->ups = xrealloc(s->ups, s->cap * sizeof(*s->ups));
		}
		e = &s->ups[s->nups++];
		memset(e, 0, sizeof(*e));
		snprintf(e->label, sizeof(e->label), "%s", label);
	}
	add_slots(e->u.v, u->v, UPSTREAM, NUPSTREAM);
}

void stats_snapshot_merge(stats_snapshot_t *s, const stats_snapshot_t *from)
{
	stats_snapshot_add_global(s, &from->g);
	for (size_t i = 0; i < from->nups; i++)
		stats_snapshot_add_upstream(s, from->ups[i].label, &from->ups[i].u);
}

void stats_snapshot_add_counters(stats_snapshot_t *s, const stats_snapshot_t *from)
{
	for (size_t i = 0; i < from->nups; i++) {
		stats_upstream_t u = from->ups[i].u;
		for (size_t k = 0; k < NUPSTREAM; k++)
			if (UPSTREAM[k].type == STATS_GAUGE)
				memset(&u.v[UPSTREAM[k].slot], 0,
				       UPSTREAM[k].size * sizeof(double));
		stats_snapshot_add_upstream(s, from->ups[i].label, &u);
	}
}

double stats_global_value(const stats_snapshot_t *s, unsigned slot)
{
	return slot < SG_SLOTS ? s->g.v[slot] : 0;
}

double stats_upstream_value(const stats_snapshot_t *s, const char *label,
			    unsigned slot)
{
	const upstream_entry_t *e = find_upstream(s, label);

	return e && slot < SU_SLOTS ? e->u.v[slot] : 0;
}

/* Label values are escaped as the text format asks (\\, \", \n). */
static void put_escaped(FILE *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', out);
		if (*v == '\n') {
			fputs("\\n", out);
			continue;
		}
		fputc(*v, out);
	}
}

/* "{upstream="...",rcode="NOERROR"" without the closing brace, or "". */
static void put_labels(FILE *out, const char *upstream, const labels_t *l,
		       unsigned k, int more)
{
	int any = upstream || l->name;

	if (!any && !more)
		return;
	fputc('{', out);
	if (upstream) {
		fputs("upstream=\"", out);
		put_escaped(out, upstream);
		fputc('"', out);
	}
	if (l->name)
		fprintf(out, "%s%s=\"%s\"", upstream ? "," : "", l->name, l->values[k]);
	if (!more)
		fputc('}', out);
	else if (any)
		fputc(',', out);
}

/* Counters and gauges: integers print as such, fractions in full. */
static void put_value(FILE *out, double v)
{
	fprintf(out, " %.17g\n", v);
}

static void render_histogram(FILE *out, const char *name, const char *upstream,
			     const labels_t *l, unsigned k, const double *h)
{
	double cumulative = 0;

	for (size_t i = 0; i <= STATS_BUCKETS; i++) {
		cumulative += h[i];
		fprintf(out, "dotstub_%s_bucket", name);
		put_labels(out, upstream, l, k, 1);
		if (i < STATS_BUCKETS)
			fprintf(out, "le=\"%g\"}", stats_bounds[i]);
		else
			fputs("le=\"+Inf\"}", out);
		put_value(out, cumulative);
	}
	fprintf(out, "dotstub_%s_sum", name);
	put_labels(out, upstream, l, k, 0);
	fprintf(out, " %.9f\n", h[STATS_BUCKETS + 1]);
	fprintf(out, "dotstub_%s_count", name);
	put_labels(out, upstream, l, k, 0);
	put_value(out, cumulative);
}

static void render_series(FILE *out, const family_t *f, const char *upstream,
			  const double *v)
{
	for (unsigned k = 0; k < f->labels->n; k++) {
		if (f->type == STATS_HISTOGRAM) {
			render_histogram(out, f->name, upstream, f->labels, k,
					 v + f->slot + k * STATS_HIST_SLOTS);
			continue;
		}
		fprintf(out, "dotstub_%s", f->name);
		put_labels(out, upstream, f->labels, k, 0);
		put_value(out, v[f->slot + k]);
	}
}

static const char *type_name(stats_type_t t)
{
	return t == STATS_COUNTER ? "counter" : t == STATS_GAUGE ? "gauge" : "histogram";
}

static void render_header(FILE *out, const family_t *f)
{
	fprintf(out, "# HELP dotstub_%s %s.\n# TYPE dotstub_%s %s\n", f->name,
		f->help, f->name, type_name(f->type));
}

void stats_render(const stats_snapshot_t *s, FILE *out)
{
	for (size_t i = 0; i < NGLOBAL; i++) {
		render_header(out, &GLOBAL[i]);
		render_series(out, &GLOBAL[i], NULL, s->g.v);
	}
	for (size_t i = 0; i < NUPSTREAM; i++) {
		render_header(out, &UPSTREAM[i]);
		for (size_t k = 0; k < s->nups; k++)
			render_series(out, &UPSTREAM[i], s->ups[k].label, s->ups[k].u.v);
	}
}

void stats_log_line(const stats_snapshot_t *s, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NGLOBAL && n < cap; i++) {
		const family_t *f = &GLOBAL[i];
		if (!f->log)
			continue;
		int w = snprintf(buf + n, cap - n, "%s%s %.0f", n ? ", " : "",
				 f->log, s->g.v[f->slot]);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}
