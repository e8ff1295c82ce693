#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/xmalloc.h"
#include "dotstub/zones.h"

/* 255 bytes of name hold at most 127 labels (2 bytes each at least). */
#define MAX_LABELS 128
#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

/* One name of the table: a zone, or (kind ZONES_DEFAULT) only a suffix
 * of deeper zones, there so that a lookup knows to go on. */
typedef struct {
	uint8_t *name;        /* wire form, as given */
	size_t len;
	uint32_t hash;        /* hash_label() over its labels, right to left */
	zones_kind_t kind;
	dnsmsg_local_t local;
	unsigned group;
	char *label;          /* the forward group's, for zones_print() */
} zone_t;

struct zones {
	zone_t *zones;        /* in the order added */
	size_t n, cap;
	uint32_t *slots;      /* open addressing: index + 1 into zones, 0 free */
	size_t nslots;        /* a power of two, at least twice n */
	size_t count[3];      /* zones of each zones_kind_t */
};

zones_t *zones_create(void)
{
	return xcalloc(1, sizeof(zones_t));
}

void zones_destroy(zones_t *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->n; i++) {
		free(z->zones[i].name);
		free(z->zones[i].label);
	}
	free(z->zones);
	free(z->slots);
	free(z);
}

/* FNV-1a over one label (its length byte included), letters folded: the
 * hash of a suffix is its labels' hashes chained from the right, so a
 * lookup extends it by one label per step. */
static uint32_t hash_label(uint32_t h, const uint8_t *label)
{
	for (size_t i = 0; i <= label[0]; i++)
		h = (h ^ dnsmsg_fold_byte(label[i])) * FNV_PRIME;
	return h;
}

/* Where each label of a wire name starts (the root's zero excepted), and
 * in *end the name's length. Returns the number of labels, or -1 when
 * the name is not well formed within len. Bounded: at most 128 labels of
 * at most 63 bytes, within 255 bytes. */
static int label_offsets(const uint8_t *name, size_t len,
			 uint8_t offs[MAX_LABELS], size_t *end)
{
	size_t p = 0;
	int n = 0;

	if (len > DNSMSG_NAME_MAX)
		len = DNSMSG_NAME_MAX;
	while (p < len && name[p] != 0) {
		if (name[p] > 63 || n == MAX_LABELS || p + 1 + name[p] >= len)
			return -1;
		offs[n++] = (uint8_t)p;
		p += 1 + (size_t)name[p];
	}
	if (p >= len)
		return -1;
	*end = p + 1;
	return n;
}

static int same_name(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (dnsmsg_fold_byte(a[i]) != dnsmsg_fold_byte(b[i]))
			return 0;
	return 1;
}

/* The table's entry for a name, or NULL. Ends: the table is never more
 * than half full. */
static zone_t *find(const zones_t *z, uint32_t h, const uint8_t *name,
		    size_t len)
{
	size_t mask = z->nslots - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t s = z->slots[i];
		zone_t *e;

		if (s == 0)
			return NULL;
		e = &z->zones[s - 1];
		if (e->hash == h && e->len == len && same_name(e->name, name, len))
			return e;
	}
}

static void put_slot(zones_t *z, size_t index)
{
	size_t mask = z->nslots - 1, i = z->zones[index].hash & mask;

	while (z->slots[i])
		i = (i + 1) & mask;
	z->slots[i] = (uint32_t)(index + 1);
}

static void grow(zones_t *z)
{
	free(z->slots);
	z->nslots = z->nslots ? z->nslots * 2 : 64;
	z->slots = xcalloc(z->nslots, sizeof(*z->slots));
	for (size_t i = 0; i < z->n; i++)
		put_slot(z, i);
}

static zone_t *get_or_add(zones_t *z, uint32_t h, const uint8_t *name,
			  size_t len)
{
	zone_t *e = z->nslots ? find(z, h, name, len) : NULL;

	if (e)
		return e;
	if ((z->n + 1) * 2 > z->nslots)
		grow(z);
	if (z->n == z->cap) {
		z->cap = z->cap ? z->cap * 2 : 32;
		z->zones = xrealloc(z->zones, z->cap * sizeof(*z->zones));
	}
	e = &z->zones[z->n];
	memset(e, 0, sizeof(*e));
	e->name = xmalloc(len);
	memcpy(e->name, name, len);
	e->len = len;
	e->hash = h;
	put_slot(z, z->n++);
	return e;
}

/* The entry of a name given as text, with entries for each of its
 * suffixes; NULL for a bad name or the root. */
static zone_t *add_name(zones_t *z, const char *text)
{
	uint8_t wire[DNSMSG_NAME_MAX], offs[MAX_LABELS];
	size_t len = dnsmsg_name_from_text(text, wire, sizeof(wire)), end;
	int n = len ? label_offsets(wire, len, offs, &end) : -1;
	uint32_t h = FNV_BASIS;
	zone_t *e = NULL;

	if (n <= 0)
		return NULL;
	for (int i = n - 1; i >= 0; i--) {
		h = hash_label(h, wire + offs[i]);
		e = get_or_add(z, h, wire + offs[i], end - offs[i]);
	}
	return e;
}

int zones_add_local(zones_t *z, const char *name, dnsmsg_local_t what)
{
	zone_t *e = add_name(z, name);

	if (!e)
		return -EINVAL;
	if (e->kind == ZONES_FORWARD)
		return 0;
	if (e->kind == ZONES_LOCAL)
		z->count[ZONES_LOCAL]--;
	e->kind = ZONES_LOCAL;
	e->local = what;
	z->count[e->kind]++;
	return 0;
}

int zones_add_forward(zones_t *z, const char *name, unsigned group,
		      const char *label)
{
	zone_t *e = add_name(z, name);

	if (!e)
		return -EINVAL;
	if (e->kind == ZONES_FORWARD)
		return -EEXIST;
	if (e->kind == ZONES_LOCAL)
		z->count[ZONES_LOCAL]--;
	e->kind = ZONES_FORWARD;
	e->group = group;
	e->label = xstrdup(label ? label : "");
	z->count[e->kind]++;
	return 0;
}

/* RFC 6761 names, then RFC 6303 section 4's zones that are not counted
 * out in zones_add_local_defaults(). */
static const struct {
	const char *name;
	dnsmsg_local_t what;
} BUILT_IN[] = {
	{ "localhost", DNSMSG_LOCAL_LOOPBACK },   /* RFC 6761 6.3 */
	{ "invalid", DNSMSG_LOCAL_NXDOMAIN },     /* RFC 6761 6.4 */
	{ "onion", DNSMSG_LOCAL_NXDOMAIN },       /* RFC 7686 */
	{ "local", DNSMSG_LOCAL_NXDOMAIN },       /* RFC 6762 3: mDNS's */
	{ "home.arpa", DNSMSG_LOCAL_EMPTY },      /* RFC 8375 */
	{ "10.in-addr.arpa", DNSMSG_LOCAL_EMPTY },        /* 4.1: RFC 1918 */
	{ "168.192.in-addr.arpa", DNSMSG_LOCAL_EMPTY },
	{ "0.in-addr.arpa", DNSMSG_LOCAL_EMPTY },         /* 4.2: RFC 5735 */
	{ "127.in-addr.arpa", DNSMSG_LOCAL_EMPTY },
	{ "254.169.in-addr.arpa", DNSMSG_LOCAL_EMPTY },
	{ "2.0.192.in-addr.arpa", DNSMSG_LOCAL_EMPTY },
	{ "100.51.198.in-addr.arpa", DNSMSG_LOCAL_EMPTY },
	{ "113.0.203.in-addr.arpa", DNSMSG_LOCAL_EMPTY },
	{ "255.255.255.255.in-addr.arpa", DNSMSG_LOCAL_EMPTY },
	{ "c.f.ip6.arpa", DNSMSG_LOCAL_EMPTY },   /* 4.4: fc00::/7, both halves */
	{ "d.f.ip6.arpa", DNSMSG_LOCAL_EMPTY },
	{ "8.e.f.ip6.arpa", DNSMSG_LOCAL_EMPTY }, /* 4.5: fe80::/10 */
	{ "9.e.f.ip6.arpa", DNSMSG_LOCAL_EMPTY },
	{ "a.e.f.ip6.arpa", DNSMSG_LOCAL_EMPTY },
	{ "b.e.f.ip6.arpa", DNSMSG_LOCAL_EMPTY },
	{ "8.b.d.0.1.0.0.2.ip6.arpa", DNSMSG_LOCAL_EMPTY },  /* 4.6: 2001:db8::/32 */
};

/* "0.0.(32 nibbles).ip6.arpa" of :: (last nibble 0) or ::1 (1). */
static void add_ip6_host(zones_t *z, char last)
{
	char name[80];
	size_t n = 0;

	name[n++] = last;
	for (int i = 1; i < 32; i++) {
		name[n++] = '.';
		name[n++] = '0';
	}
	strcpy(name + n, ".ip6.arpa");
	zones_add_local(z, name, DNSMSG_LOCAL_EMPTY);
}

void zones_add_local_defaults(zones_t *z)
{
	char name[32];

	for (size_t i = 0; i < sizeof(BUILT_IN) / sizeof(BUILT_IN[0]); i++)
		zones_add_local(z, BUILT_IN[i].name, BUILT_IN[i].what);
	for (unsigned i = 16; i <= 31; i++) {     /* 4.1: 172.16/12 */
		snprintf(name, sizeof(name), "%u.172.in-addr.arpa", i);
		zones_add_local(z, name, DNSMSG_LOCAL_EMPTY);
	}
	for (unsigned i = 64; i <= 127; i++) {    /* RFC 7793: 100.64/10 */
		snprintf(name, sizeof(name), "%u.100.in-addr.arpa", i);
		zones_add_local(z, name, DNSMSG_LOCAL_EMPTY);
	}
	add_ip6_host(z, '0');                     /* 4.3: :: and ::1 */
	add_ip6_host(z, '1');
}

zones_kind_t zones_lookup(const zones_t *z, const uint8_t *name, size_t len,
			  zones_match_t *m)
{
	uint8_t offs[MAX_LABELS];
	uint32_t h = FNV_BASIS;
	size_t end;
	int n;
	const zone_t *best = NULL;

	m->kind = ZONES_DEFAULT;
	if (!z || z->n == 0)
		return ZONES_DEFAULT;
	n = label_offsets(name, len, offs, &end);
	/* From the last label leftwards: each step a longer suffix, a more
	 * specific zone; no entry means no zone further left either. */
	for (int i = n - 1; i >= 0; i--) {
		const zone_t *e;

		h = hash_label(h, name + offs[i]);
		e = find(z, h, name + offs[i], end - offs[i]);
		if (!e)
			break;
		if (e->kind != ZONES_DEFAULT) {
			best = e;
			m->apex = offs[i];
		}
	}
	if (!best)
		return ZONES_DEFAULT;
	m->kind = best->kind;
	m->local = best->local;
	m->group = best->group;
	return m->kind;
}

size_t zones_count(const zones_t *z, zones_kind_t kind)
{
	return z && kind != ZONES_DEFAULT ? z->count[kind] : 0;
}

static const char *describe(const zone_t *e)
{
	if (e->kind == ZONES_FORWARD)
		return "forward";
	switch (e->local) {
	case DNSMSG_LOCAL_LOOPBACK:
		return "local: 127.0.0.1 and ::1";
	case DNSMSG_LOCAL_NXDOMAIN:
		return "local: NXDOMAIN";
	case DNSMSG_LOCAL_EMPTY:
	default:
		return "local: empty zone (SOA, NS), NXDOMAIN below";
	}
}

void zones_print(const zones_t *z, FILE *out)
{
	char name[DNSMSG_NAME_TEXT_MAX];

	fprintf(out, "\n# zone table: %zu local, %zu forward (the most specific "
		"zone of a name wins; a\n# forward zone overrides a local one of "
		"the same name)\n", zones_count(z, ZONES_LOCAL),
		zones_count(z, ZONES_FORWARD));
	for (size_t i = 0; z && i < z->n; i++) {
		const zone_t *e = &z->zones[i];

		if (e->kind == ZONES_DEFAULT)
			continue;
		dnsmsg_name_text(e->name, e->len, name, sizeof(name));
		fprintf(out, "#   %s.  %s%s%s\n", name, describe(e),
			e->kind == ZONES_FORWARD ? " " : "",
			e->kind == ZONES_FORWARD ? e->label : "");
	}
}
