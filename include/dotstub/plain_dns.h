/* plain_dns: plain DNS (UDP, TCP) to the servers of a "[forward]" group
 * that says "plaintext = yes" -- the one place where c-ares is the
 * transport (DESIGN.md): a channel per group and kind, its servers in
 * configuration order (failover, no rotation), c-ares's sockets driven by
 * the libev loop through ARES_OPT_SOCK_STATE_CB and ares_process_fd.
 * c-ares owns UDP retries, the switch to TCP on TC=1 and the check of ID
 * and question on answers; we give every query a fresh random ID. */
#ifndef DOTSTUB_PLAIN_DNS_H
#define DOTSTUB_PLAIN_DNS_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "dotstub/config.h"
#include "dotstub/dot_conn.h"

/* Queries in flight per channel at most: past this, plain_send refuses
 * (a flood of names under a plain zone must not grow memory unbounded). */
#define PLAIN_PENDING_MAX 4096

typedef struct plain_channel plain_channel_t;

/* A channel to servers[0..n) (their addresses are copied), over TCP only
 * when tcp (for TCP clients), `timeout_ms` per try of one server. Returns
 * NULL with err on failure. */
plain_channel_t *plain_channel_create(struct ev_loop *loop,
				      const config_upstream_t *servers, size_t n,
				      int tcp, unsigned timeout_ms,
				      char *err, size_t errlen);
/* Pending queries end without a callback. */
void plain_channel_destroy(plain_channel_t *ch);

/* Send msg (its ID is replaced by a random one; c-ares copies it) for req.
 * Exactly one of req's callbacks follows (on_answer with the answer as
 * received, under our ID; on_failed when every server failed), unless
 * plain_cancel(token) comes first. Returns the token, or NULL when the
 * channel has PLAIN_PENDING_MAX queries in flight. */
void *plain_send(plain_channel_t *ch, dot_req_t *req, uint8_t *msg, size_t len);

/* No callback for this query (its c-ares query runs out on its own). A
 * token whose callback has run may still be passed while that callback
 * runs (the callee ends the query from inside it). */
void plain_cancel(void *token);

/* Queries whose c-ares callback has not run yet. */
size_t plain_pending(const plain_channel_t *ch);

#endif
