/* libFuzzer target: the stream framer fed in arbitrary chunks must yield
 * exactly the messages a straight walk over the stream finds. The first
 * bytes of the input choose the chunk sizes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 4)
		return 0;
	const uint8_t *chunks = data;
	size_t nchunks = 4, off = 0, ref = 0, k = 0;
	frame_reader_t *r = frame_reader_create();
	const uint8_t *msg;
	size_t mlen;

	data += nchunks;
	len -= nchunks;
	while (off < len) {
		size_t step = (size_t)chunks[k++ % nchunks] * 7 + 1;
		if (step > len - off)
			step = len - off;
		if (k % 2) {
			frame_reader_feed(r, data + off, step);
		} else {
			size_t avail;
			uint8_t *space = frame_reader_space(r, &avail);
			if (step > avail)
				step = avail;
			memcpy(space, data + off, step);
			frame_reader_commit(r, step);
		}
		off += step;
		while (frame_reader_next(r, &msg, &mlen)) {
			/* The reference walk: length, message, next. */
			if (ref + 2 > off)
				abort();
			size_t want = ((size_t)data[ref] << 8) | data[ref + 1];
			if (want != mlen || ref + 2 + want > off ||
			    memcmp(data + ref + 2, msg, mlen) != 0)
				abort();
			ref += 2 + want;
		}
	}
	/* Whatever is left is an incomplete frame, exactly. */
	if (frame_reader_pending(r) != len - ref)
		abort();
	if (len - ref >= 2 &&
	    len - ref >= 2 + (((size_t)data[ref] << 8) | data[ref + 1]))
		abort();
	frame_reader_destroy(r);
	return 0;
}
