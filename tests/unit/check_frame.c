/* frame: 2-byte length framing, reassembly from arbitrary chunks. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/frame.h"

#include "check_main.h"

static size_t framed(uint8_t *out, const char *payload)
{
	size_t n = strlen(payload);

	out[0] = (uint8_t)(n >> 8);
	out[1] = (uint8_t)n;
	memcpy(out + 2, payload, n);
	return n + 2;
}

START_TEST(test_partial_frames)
{
	frame_reader_t *r = frame_reader_create();
	uint8_t buf[64];
	size_t n = framed(buf, "hello world");
	const uint8_t *msg;
	size_t len;

	/* One byte at a time: nothing until the last byte is in. */
	for (size_t i = 0; i < n - 1; i++) {
		frame_reader_feed(r, buf + i, 1);
		ck_assert_int_eq(frame_reader_next(r, &msg, &len), 0);
	}
	frame_reader_feed(r, buf + n - 1, 1);
	ck_assert_int_eq(frame_reader_next(r, &msg, &len), 1);
	ck_assert_uint_eq(len, 11);
	ck_assert_mem_eq(msg, "hello world", 11);
	ck_assert_int_eq(frame_reader_next(r, &msg, &len), 0);
	ck_assert_uint_eq(frame_reader_pending(r), 0);
	frame_reader_destroy(r);
}
END_TEST

START_TEST(test_several_frames_one_read)
{
	frame_reader_t *r = frame_reader_create();
	uint8_t buf[128];
	size_t n = 0;
	const uint8_t *msg;
	size_t len;

	n += framed(buf + n, "one");
	n += framed(buf + n, "");
	n += framed(buf + n, "three");
	n += framed(buf + n, "fo");   /* the 4th is cut: only "f" arrives */
	frame_reader_feed(r, buf, n - 1);
	ck_assert_int_eq(frame_reader_next(r, &msg, &len), 1);
	ck_assert_mem_eq(msg, "one", 3);
	ck_assert_int_eq(frame_reader_next(r, &msg, &len), 1);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(frame_reader_next(r, &msg, &len), 1);
	ck_assert_mem_eq(msg, "three", 5);
	ck_assert_int_eq(frame_reader_next(r, &msg, &len), 0);
	ck_assert_uint_eq(frame_reader_pending(r), 3);
	frame_reader_feed(r, buf + n - 1, 1);
	ck_assert_int_eq(frame_reader_next(r, &msg, &len), 1);
	ck_assert_mem_eq(msg, "fo", 2);
	frame_reader_destroy(r);
}
END_TEST

START_TEST(test_space_commit_large)
{
	frame_reader_t *r = frame_reader_create();
	uint8_t *big = malloc(FRAME_MAX_MSG + 2);
	const uint8_t *msg;
	size_t len, off = 0;

	big[0] = 0xff;
	big[1] = 0xff;
	for (size_t i = 2; i < FRAME_MAX_MSG + 2; i++)
		big[i] = (uint8_t)i;
	/* Read through the zero-copy interface in uneven chunks. */
	while (off < FRAME_MAX_MSG + 2) {
		size_t avail;
		uint8_t *space = frame_reader_space(r, &avail);
		size_t n = avail < 1000 ? avail : 1000;
		if (n > FRAME_MAX_MSG + 2 - off)
			n = FRAME_MAX_MSG + 2 - off;
		ck_assert_uint_gt(avail, 0);
		memcpy(space, big + off, n);
		frame_reader_commit(r, n);
		off += n;
	}
	ck_assert_int_eq(frame_reader_next(r, &msg, &len), 1);
	ck_assert_uint_eq(len, FRAME_MAX_MSG);
	ck_assert_mem_eq(msg, big + 2, FRAME_MAX_MSG);
	free(big);
	frame_reader_destroy(r);
}
END_TEST

START_TEST(test_writer)
{
	frame_writer_t *w = frame_writer_create();
	const uint8_t *data;
	uint8_t big[FRAME_MAX_MSG + 1] = { 0 };

	ck_assert_int_eq(frame_writer_put(w, (const uint8_t *)"abc", 3), 0);
	ck_assert_int_eq(frame_writer_put(w, (const uint8_t *)"de", 2), 0);
	ck_assert_uint_eq(frame_writer_data(w, &data), 9);
	ck_assert_mem_eq(data, "\0\3abc\0\2de", 9);
	frame_writer_consume(w, 4);
	ck_assert_uint_eq(frame_writer_data(w, &data), 5);
	ck_assert_mem_eq(data, "c\0\2de", 5);
	frame_writer_consume(w, 5);
	ck_assert_uint_eq(frame_writer_data(w, &data), 0);
	ck_assert_int_lt(frame_writer_put(w, big, sizeof(big)), 0);
	frame_writer_destroy(w);
}
END_TEST

static Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_partial_frames);
	tcase_add_test(tc, test_several_frames_one_read);
	tcase_add_test(tc, test_space_commit_large);
	tcase_add_test(tc, test_writer);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(frame_suite)
