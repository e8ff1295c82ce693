/* dnstap_out: where dnstap's Frame Streams go, a file or a collector's
 * unix socket. libfstrm's writer runs the stream's control frames over
 * our own transport (the START frame with the content type, the unix
 * socket's READY/ACCEPT handshake, STOP and FINISH); the data frames,
 * already framed in the workers' rings (4-byte big-endian length, then
 * the message), go straight to the descriptor in one writev() per batch:
 * fstrm_writer_writev() would need two iovecs per message and a copy of
 * the ring into them.
 *
 * Used from one thread, the dnstap writer's, after dnstap_out_open().
 * Every call may block on the file or the collector, at most
 * DNSTAP_OUT_TIMEOUT seconds for a socket. */
#ifndef DOTSTUB_DNSTAP_OUT_H
#define DOTSTUB_DNSTAP_OUT_H

#include <stddef.h>
#include <sys/uio.h>

#define DNSTAP_OUT_TIMEOUT 5        /* seconds a collector may stall a write */
#define DNSTAP_OUT_REOPEN 5         /* seconds between connection attempts */

typedef struct dnstap_out dnstap_out_t;

/* "file:PATH" (created or truncated now, with the caller's privileges)
 * or "unix:PATH" (connected now if a collector listens, else warned and
 * tried again later). NULL with err naming the target and the cause. */
dnstap_out_t *dnstap_out_open(const char *target, char *err, size_t errlen);
/* 1 when frames can be written now. A unix target that is not connected
 * is tried again here, at most every DNSTAP_OUT_REOPEN seconds. */
int dnstap_out_ready(dnstap_out_t *o);
/* Write data frames (ready-made, lengths included). 0, or -1 when the
 * stream broke: it is closed and logged once, and a unix target is
 * connected again by a later dnstap_out_ready(). A file is not reopened
 * (that would truncate it, or start a second stream inside it). */
int dnstap_out_write(dnstap_out_t *o, const struct iovec *iov, int iovcnt);
/* Finish the stream (STOP, and FINISH from a collector), close, free.
 * NULL is fine. */
void dnstap_out_close(dnstap_out_t *o);

#endif
