/* probe: --probe, the troubleshooting tool. Connect once to one upstream,
 * print its chain, TLS parameters and the verification verdict, time the
 * handshake and one query. */
#ifndef DOTSTUB_PROBE_H
#define DOTSTUB_PROBE_H

#include <stdio.h>

#include "dotstub/config.h"

/* Probe cfg->probe with cfg's trust anchors and pins, reporting to out.
 * Returns 0 when the peer verified, 1 when not (or unreachable). */
int probe_run(const config_t *cfg, FILE *out);

#endif
