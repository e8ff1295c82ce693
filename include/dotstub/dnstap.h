/* dnstap: the DNS servers' standard query log (dnstap.info; unbound, Knot,
 * BIND, dnsdist and CoreDNS write it too). Each client query and answer
 * (CLIENT_QUERY, CLIENT_RESPONSE) and each message to and from a DoT
 * upstream (FORWARDER_QUERY, FORWARDER_RESPONSE, socket protocol DOT) goes
 * out as a protobuf dnstap.Dnstap message in a Frame Streams stream: a
 * file, or a unix socket that a collector (fstrm_capture, dnstap-read's
 * friends) listens on.
 *
 * A writer thread of its own does the writing; each worker thread encodes
 * its messages into a ring of its own and never waits: when its ring is
 * full (a slow disk, a collector that does not read) the message is
 * dropped and counted. The writer is woken each time a ring has gained
 * DNSTAP_WAKE_BYTES, and otherwise writes once a second. Built without libfstrm/protobuf-c
 * (configure --disable-dnstap, or the libraries missing),
 * dnstap_create() fails with a reason and nothing else is called. */
#ifndef DOTSTUB_DNSTAP_H
#define DOTSTUB_DNSTAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct dnstap dnstap_t;
/* One worker's queue: used from that worker's thread only. */
typedef struct dnstap_queue dnstap_queue_t;

/* 1 when this build can write dnstap. */
int dnstap_built_in(void);

/* Open target ("file:/PATH", truncated, or "unix:/PATH", a Frame Streams
 * socket, connected now and again whenever it goes away) with nqueues
 * queues, one per worker. Starts the writer thread: call after fork. Returns
 * NULL with err ("dnstap file:/x: cannot open ...") on failure. */
dnstap_t *dnstap_create(const char *target, unsigned nqueues,
			char *err, size_t errlen);
/* Write what is queued, close and stop the thread, then free t. After
 * every worker has stopped using its queue. NULL is fine. Returns 0, or
 * -ETIMEDOUT when the writer did not finish within DNSTAP_CLOSE_SECONDS
 * (a collector that stopped reading): the thread and t are then left to
 * the process's exit. */
#define DNSTAP_CLOSE_SECONDS 2
int dnstap_destroy(dnstap_t *t);
/* Queue `index` (< nqueues); lives as long as t. */
dnstap_queue_t *dnstap_queue(dnstap_t *t, unsigned index);
/* Messages dropped on full queues, all queues together; on one (read
 * from any thread). */
unsigned long dnstap_dropped(const dnstap_t *t);
unsigned long dnstap_queue_dropped(const dnstap_queue_t *q);

/* For tests. The writer's sleep when no worker wakes it (1 s); the bytes
 * q holds that the writer has not written (or thrown away) yet. */
#define DNSTAP_WAKE_BYTES (512u * 1024)
void dnstap_set_flush_seconds(dnstap_t *t, unsigned seconds);
size_t dnstap_queue_unwritten(const dnstap_queue_t *q);

/* The four events; times are seconds since the epoch (ev_now()), `asked`
 * the time of the query a response answers. msg is copied. */
void dnstap_client_query(dnstap_queue_t *q, const struct sockaddr_storage *client,
			 int tcp, double now, const uint8_t *msg, size_t len);
void dnstap_client_response(dnstap_queue_t *q,
			    const struct sockaddr_storage *client, int tcp,
			    double asked, double now, const uint8_t *msg,
			    size_t len);
void dnstap_forwarder_query(dnstap_queue_t *q,
			    const struct sockaddr_storage *upstream, double now,
			    const uint8_t *msg, size_t len);
void dnstap_forwarder_response(dnstap_queue_t *q,
			       const struct sockaddr_storage *upstream,
			       double asked, double now, const uint8_t *msg,
			       size_t len);

#endif
