/* zones: which names dotstub answers itself (local zones: the special-use
 * names of RFC 6761 and the locally served reverse zones of RFC 6303) and
 * which forward group serves a name. A name belongs to the most specific
 * zone that holds it (the longest suffix, compared on label boundaries,
 * ASCII case ignored): "a.corp.example" under both "corp.example" and
 * "example" is corp.example's. A forward zone overrides a local zone of
 * the same name ([forward] domain = 168.192.in-addr.arpa sends the LAN's
 * reverse names to the router); a local zone below a forward zone wins
 * for its own names, like any more specific zone.
 *
 * A table is built once per configuration load (config_from_args()) and
 * only read after: threads look up without a lock, and a lookup neither
 * allocates nor writes. Its cost on a name in no zone is one pass over the
 * name's label lengths and one hash probe for its last label ("com"):
 * every suffix of every zone is in one hash table, so the walk from the
 * right stops at the first suffix no zone has. */
#ifndef DOTSTUB_ZONES_H
#define DOTSTUB_ZONES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dotstub/dnsmsg.h"

typedef struct zones zones_t;

typedef enum {
	ZONES_DEFAULT = 0,  /* in no zone: the [upstream] groups */
	ZONES_LOCAL,        /* answered here: dnsmsg_local_answer() */
	ZONES_FORWARD,      /* a forward group's */
} zones_kind_t;

/* What zones_lookup() found. */
typedef struct {
	zones_kind_t kind;
	dnsmsg_local_t local;  /* ZONES_LOCAL: what the zone holds */
	unsigned group;        /* ZONES_FORWARD: the group's number */
	size_t apex;           /* where the zone's name starts in the name
				* looked up (not ZONES_DEFAULT) */
} zones_match_t;

/* An empty table: every name is ZONES_DEFAULT. */
zones_t *zones_create(void);
void zones_destroy(zones_t *z);

/* The built-in local zones: localhost (loopback), invalid, onion, local
 * (NXDOMAIN), home.arpa and the reverse zones RFC 6303 section 4 lists
 * (with 100.64/10's of RFC 7793, and fc00::/7 whole). */
void zones_add_local_defaults(zones_t *z);

/* One local zone, "name" in presentation form (dnsmsg_name_from_text()).
 * A forward zone of the same name keeps it (forward wins, whatever the
 * order of the calls). Returns 0, or -EINVAL for a bad name or the root. */
int zones_add_local(zones_t *z, const char *name, dnsmsg_local_t what);

/* A forward zone for group number `group`, labelled `label` (copied; for
 * zones_print()). It replaces a local zone of the same name. Returns 0,
 * -EINVAL for a bad name or the root, -EEXIST when the name is already a
 * forward zone (of any group). */
int zones_add_forward(zones_t *z, const char *name, unsigned group,
		      const char *label);

/* The zone of a wire-form name (uncompressed, at the start of len bytes:
 * a question section will do; dnsmsg_parse_query() has validated it), in
 * *m; returns m->kind. z may be NULL (no zones). */
zones_kind_t zones_lookup(const zones_t *z, const uint8_t *name, size_t len,
			  zones_match_t *m);

/* Zones of each kind in the table (ZONES_DEFAULT: 0). */
size_t zones_count(const zones_t *z, zones_kind_t kind);

/* The table as comment lines for --check-config, in the order the zones
 * were added. */
void zones_print(const zones_t *z, FILE *out);

#endif
