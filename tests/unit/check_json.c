/* json: escaping of peer text (a certificate subject) and the commas and
 * nesting of the writer. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/json.h"

#include "check_main.h"

/* s as json_write_string writes it (malloc'd). */
static char *escaped(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	json_write_string(f, s);
	fclose(f);
	return buf;
}

#define ck_escapes(in, want) do {                       \
		char *got_ = escaped(in);               \
		ck_assert_str_eq(got_, want);           \
		free(got_);                             \
	} while (0)

START_TEST(test_plain_and_special)
{
	ck_escapes("", "\"\"");
	ck_escapes("CN=a,O=b", "\"CN=a,O=b\"");
	ck_escapes("q\"uote", "\"q\\\"uote\"");
	ck_escapes("back\\slash", "\"back\\\\slash\"");
	ck_escapes("a\nb\tc\x01\x1f\x7f", "\"a\\u000ab\\u0009c\\u0001\\u001f\\u007f\"");
	/* A subject that tries to close the string and add a member. */
	ck_escapes("x\",\"verified\":true,\"y\":\"", "\"x\\\",\\\"verified\\\":true,\\\"y\\\":\\\"\"");
}
END_TEST

START_TEST(test_utf8)
{
	/* Well-formed UTF-8 passes through: é, €, 😀. */
	ck_escapes("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	/* A lone byte, a truncated sequence, an overlong '/', a surrogate,
	 * past U+10FFFF: each bad byte becomes U+FFFD. */
	ck_escapes("a\xff" "b", "\"a\\ufffdb\"");
	ck_escapes("\xe2\x82", "\"\\ufffd\\ufffd\"");
	ck_escapes("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	ck_escapes("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	ck_escapes("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
}
END_TEST

START_TEST(test_writer_nesting)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t j;

	json_init(&j, f);
	json_object(&j, NULL);
	json_str(&j, "a", "x");
	json_str(&j, "n", NULL);
	json_array(&j, "l");
	json_int(&j, NULL, 1);
	json_object(&j, NULL);
	json_bool(&j, "t", 1);
	json_end(&j, '}');
	json_ms(&j, NULL, -1);
	json_ms(&j, NULL, 1.5);
	json_end(&j, ']');
	json_bool(&j, "f", 0);
	json_end(&j, '}');
	fclose(f);
	ck_assert_str_eq(buf, "{\"a\":\"x\",\"n\":null,\"l\":[1,{\"t\":true},null,1.500],\"f\":false}\n");
	free(buf);
}
END_TEST

static Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_plain_and_special);
	tcase_add_test(tc, test_utf8);
	tcase_add_test(tc, test_writer_nesting);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(json_suite)
