/* tls: pin parsing and formatting, trust anchor errors. Handshakes are
 * tested against a real unbound in tests/integration. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dotstub/tls.h"

#include "check_main.h"

/* SHA-256 of the empty string, base64: a well-formed pin. */
#define PIN_B64 "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

START_TEST(test_pin_roundtrip)
{
	tls_pin_t pin;
	char out[TLS_PIN_B64_LEN + 1];

	ck_assert_int_eq(tls_pin_parse(PIN_B64, &pin), 0);
	ck_assert_uint_eq(pin.sha256[0], 0xe3);
	ck_assert_uint_eq(pin.sha256[31], 0x55);
	tls_pin_format(&pin, out, sizeof(out));
	ck_assert_str_eq(out, PIN_B64);
	ck_assert_int_eq(tls_pin_parse("pin-sha256:" PIN_B64, &pin), 0);
}
END_TEST

START_TEST(test_pin_bad)
{
	static const char *const bad[] = {
		"", "abc", PIN_B64 "A", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF=",
		"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSu!U=", "pin-sha256:",
		/* 44 characters of base64 that decode to 33 bytes are not SHA-256 */
		"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFUA",
	};
	tls_pin_t pin;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(tls_pin_parse(bad[i], &pin) < 0, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_ctx_missing_ca_file)
{
	char err[256] = "";
	tls_ctx_t *ctx = tls_ctx_create("/nonexistent/ca.pem", err, sizeof(err));

	ck_assert_ptr_null(ctx);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/ca.pem"));
}
END_TEST

START_TEST(test_ctx_file_without_certificate)
{
	char path[] = "/tmp/check_tls_XXXXXX";
	char err[256] = "";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs("not a certificate\n", f);
	fclose(f);
	ck_assert_ptr_null(tls_ctx_create(path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, path));
	unlink(path);
}
END_TEST

/* clock-floor: an early clock reads as the build time, a later one as
 * itself; off, the clock is always itself. */
START_TEST(test_clock_floor)
{
	time_t build = tls_clock_build_time();

	ck_assert_int_gt((long long)build, 1600000000LL);
	ck_assert_int_eq(tls_clock_floored(0, 1), build);
	ck_assert_int_eq(tls_clock_floored(build - 1, 1), build);
	ck_assert_int_eq(tls_clock_floored(build, 1), build);
	ck_assert_int_eq(tls_clock_floored(build + 1, 1), build + 1);
	ck_assert_int_eq(tls_clock_floored(0, 0), 0);
	ck_assert_int_eq(tls_clock_floored(build - 1, 0), build - 1);
}
END_TEST

static Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("pins");

	tcase_add_test(tc, test_pin_roundtrip);
	tcase_add_test(tc, test_pin_bad);
	suite_add_tcase(s, tc);
	tc = tcase_create("ctx");
	tcase_add_test(tc, test_ctx_missing_ca_file);
	tcase_add_test(tc, test_ctx_file_without_certificate);
	tcase_add_test(tc, test_clock_floor);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(tls_suite)
