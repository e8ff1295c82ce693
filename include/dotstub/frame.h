/* frame: the 2-byte length prefix of DNS over a stream (RFC 1035 4.2.2,
 * RFC 7858), shared by client TCP connections and upstream TLS connections.
 *
 * A reader reassembles messages from arbitrary chunks (partial frames,
 * several frames in one read); a writer queues framed messages until the
 * transport takes them. */
#ifndef DOTSTUB_FRAME_H
#define DOTSTUB_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Largest DNS message on a stream. */
#define FRAME_MAX_MSG 65535

typedef struct frame_reader frame_reader_t;
typedef struct frame_writer frame_writer_t;

/* Create/destroy; create returns NULL only when memory is exhausted. */
frame_reader_t *frame_reader_create(void);
void frame_reader_destroy(frame_reader_t *r);

/* Space to read into: at least 1 byte, valid until the next call on `r`.
 * Fill some of it, then report how much with frame_reader_commit(). */
uint8_t *frame_reader_space(frame_reader_t *r, size_t *avail);
void frame_reader_commit(frame_reader_t *r, size_t n);

/* Copy `len` bytes in (for transports that read into their own buffer). */
void frame_reader_feed(frame_reader_t *r, const uint8_t *data, size_t len);

/* Next complete message: returns 1 and sets *msg and *len (valid until the next
 * call on `r`), or 0 when more bytes are needed. Zero-length frames are
 * returned too (len 0); the caller decides what they mean. */
int frame_reader_next(frame_reader_t *r, const uint8_t **msg, size_t *len);

/* Bytes buffered that do not yet form a complete message. */
size_t frame_reader_pending(const frame_reader_t *r);

frame_writer_t *frame_writer_create(void);
void frame_writer_destroy(frame_writer_t *w);

/* Queue one message with its length prefix. Returns 0, or -EMSGSIZE when
 * len > FRAME_MAX_MSG. */
int frame_writer_put(frame_writer_t *w, const uint8_t *msg, size_t len);

/* Bytes queued and not yet consumed, contiguous from *data. */
size_t frame_writer_data(const frame_writer_t *w, const uint8_t **data);

/* The transport took n bytes from the front. */
void frame_writer_consume(frame_writer_t *w, size_t n);

#endif
