/* rand: fast non-cryptographic randomness for DNS IDs and exploration.
 * Upstream IDs travel inside TLS, so they need to be unique per connection,
 * not secret; the generator is seeded from getrandom(). */
#ifndef DOTSTUB_RAND_H
#define DOTSTUB_RAND_H

#include <stdint.h>

uint32_t rand_u32(void);

#endif
