/* idmap: the DNS IDs in flight on one upstream connection. Each query gets
 * a random ID not in use on that connection; the answer's ID finds the
 * query again in O(1). */
#ifndef DOTSTUB_IDMAP_H
#define DOTSTUB_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct idmap idmap_t;

/* A map holding at most `capacity` (1..32768) entries. Never NULL. */
idmap_t *idmap_create(size_t capacity);
void idmap_destroy(idmap_t *m);

/* Store `value` (not NULL) under a fresh random ID written to *id.
 * Returns 0, or -ENOSPC when the map is full. */
int idmap_add(idmap_t *m, void *value, uint16_t *id);

/* The value stored under id, or NULL. */
void *idmap_get(const idmap_t *m, uint16_t id);

/* Remove id; returns its value, or NULL when it was not there. */
void *idmap_remove(idmap_t *m, uint16_t id);

/* Remove some entry and return its value (for draining); NULL when empty. */
void *idmap_pop(idmap_t *m, uint16_t *id);

size_t idmap_count(const idmap_t *m);
size_t idmap_capacity(const idmap_t *m);

#endif
