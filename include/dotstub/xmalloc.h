/* xmalloc: allocation that aborts on exhaustion. A resolver that runs out
 * of memory cannot answer anyway, and checking every small allocation
 * would bury the logic (the chrony convention). */
#ifndef DOTSTUB_XMALLOC_H
#define DOTSTUB_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);

#endif
