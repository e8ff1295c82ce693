#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "dotstub/idmap.h"
#include "dotstub/rand.h"
#include "dotstub/xmalloc.h"

/* Open addressing with linear probing, at most half full, so probes stay
 * short; deletion shifts entries back instead of leaving tombstones. */
struct slot {
	void *value;  /* NULL: empty */
	uint16_t id;
};

struct idmap {
	struct slot *slots;
	size_t mask;
	size_t count;
	size_t capacity;
};

idmap_t *idmap_create(size_t capacity)
{
	idmap_t *m = xcalloc(1, sizeof(*m));
	size_t size = 8;

	if (capacity < 1)
		capacity = 1;
	if (capacity > 32768)
		capacity = 32768;
	while (size < capacity * 2)
		size *= 2;
	m->slots = xcalloc(size, sizeof(struct slot));
	m->mask = size - 1;
	m->capacity = capacity;
	return m;
}

void idmap_destroy(idmap_t *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m);
}

static size_t find(const idmap_t *m, uint16_t id)
{
	size_t i = id & m->mask;

	while (m->slots[i].value && m->slots[i].id != id)
		i = (i + 1) & m->mask;
	return i;
}

int idmap_add(idmap_t *m, void *value, uint16_t *id)
{
	if (m->count >= m->capacity)
		return -ENOSPC;
	for (;;) {
		uint16_t cand = (uint16_t)rand_u32();
		size_t i = find(m, cand);
		if (m->slots[i].value)
			continue;  /* in use: at most half the table, so rare */
		m->slots[i].id = cand;
		m->slots[i].value = value;
		m->count++;
		*id = cand;
		return 0;
	}
}

void *idmap_get(const idmap_t *m, uint16_t id)
{
	return m->slots[find(m, id)].value;
}

/* Close the gap at i by moving back later entries of the same probe run. */
static void remove_at(idmap_t *m, size_t i)
{
	size_t j = i;

	m->slots[i].value = NULL;
	for (;;) {
		j = (j + 1) & m->mask;
		if (!m->slots[j].value)
			return;
		size_t home = m->slots[j].id & m->mask;
		/* Move j to i when its home is not in the cyclic range (i, j]. */
		if ((i <= j) ? (home <= i || home > j) : (home <= i && home > j)) {
			m->slots[i] = m->slots[j];
			m->slots[j].value = NULL;
			i = j;
		}
	}
}

void *idmap_remove(idmap_t *m, uint16_t id)
{
	size_t i = find(m, id);
	void *value = m->slots[i].value;

	if (value) {
		remove_at(m, i);
		m->count--;
	}
	return value;
}

void *idmap_pop(idmap_t *m, uint16_t *id)
{
	if (m->count == 0)
		return NULL;
	for (size_t i = 0; i <= m->mask; i++) {
		if (m->slots[i].value) {
			*id = m->slots[i].id;
			return idmap_remove(m, *id);
		}
	}
	return NULL;
}

size_t idmap_count(const idmap_t *m)
{
	return m->count;
}

size_t idmap_capacity(const idmap_t *m)
{
	return m->capacity;
}
