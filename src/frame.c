#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/frame.h"
#include "dotstub/xmalloc.h"

/* Both sides use one growable byte buffer with a consumed offset `off`;
 * consumed bytes are dropped lazily, so a burst of frames costs no memmove
 * per frame. */
struct bytes {
	uint8_t *data;
	size_t off;
	size_t len;
	size_t cap;
};

struct frame_reader {
	struct bytes b;
};

struct frame_writer {
	struct bytes b;
};

#define INITIAL_CAP 4096

static void bytes_reserve(struct bytes *b, size_t extra)
{
	if (b->off > 0 && (b->off == b->len || b->len + extra > b->cap)) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : INITIAL_CAP;
	while (cap < b->len + extra)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

frame_reader_t *frame_reader_create(void)
{
	return xcalloc(1, sizeof(frame_reader_t));
}

void frame_reader_destroy(frame_reader_t *r)
{
	if (!r)
		return;
	free(r->b.data);
	free(r);
}

uint8_t *frame_reader_space(frame_reader_t *r, size_t *avail)
{
	bytes_reserve(&r->b, 2048);
	*avail = r->b.cap - r->b.len;
	return r->b.data + r->b.len;
}

void frame_reader_commit(frame_reader_t *r, size_t n)
{
	r->b.len += n;
}

void frame_reader_feed(frame_reader_t *r, const uint8_t *data, size_t len)
{
	bytes_reserve(&r->b, len);
	memcpy(r->b.data + r->b.len, data, len);
	r->b.len += len;
}

int frame_reader_next(frame_reader_t *r, const uint8_t **msg, size_t *len)
{
	struct bytes *b = &r->b;
	size_t have = b->len - b->off;

	if (have < 2)
		return 0;
	size_t need = ((size_t)b->data[b->off] << 8) | b->data[b->off + 1];
	if (have < 2 + need)
		return 0;
	*msg = b->data + b->off + 2;
	*len = need;
	b->off += 2 + need;
	return 1;
}

size_t frame_reader_pending(const frame_reader_t *r)
{
	return r->b.len - r->b.off;
}

frame_writer_t *frame_writer_create(void)
{
	return xcalloc(1, sizeof(frame_writer_t));
}

void frame_writer_destroy(frame_writer_t *w)
{
	if (!w)
		return;
	free(w->b.data);
	free(w);
}

int frame_writer_put(frame_writer_t *w, const uint8_t *msg, size_t len)
{
	if (len > FRAME_MAX_MSG)
		return -EMSGSIZE;
	bytes_reserve(&w->b, len + 2);
	uint8_t *p = w->b.data + w->b.len;
	p[0] = (uint8_t)(len >> 8);
	p[1] = (uint8_t)len;
	memcpy(p + 2, msg, len);
	w->b.len += len + 2;
	return 0;
}

size_t frame_writer_data(const frame_writer_t *w, const uint8_t **data)
{
	*data = w->b.data + w->b.off;
	return w->b.len - w->b.off;
}

void frame_writer_consume(frame_writer_t *w, size_t n)
{
	w->b.off += n;
	if (w->b.off == w->b.len)
		w->b.off = w->b.len = 0;
}
