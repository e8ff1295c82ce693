/* idmap: unique random IDs per connection, O(1) lookup, removal. */
#include <check.h>
#include <stdlib.h>

#include "dotstub/idmap.h"

#include "check_main.h"

START_TEST(test_unique_and_found)
{
	enum { N = 1000 };
	idmap_t *m = idmap_create(N);
	static int values[N];
	uint16_t ids[N];
	static unsigned char seen[65536];

	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(idmap_add(m, &values[i], &ids[i]), 0);
		ck_assert_int_eq(seen[ids[i]], 0);
		seen[ids[i]] = 1;
	}
	ck_assert_uint_eq(idmap_count(m), N);
	ck_assert_int_lt(idmap_add(m, &values[0], &ids[0]), 0);  /* full */
	for (int i = 0; i < N; i++)
		ck_assert_ptr_eq(idmap_get(m, ids[i]), &values[i]);
	idmap_destroy(m);
}
END_TEST

START_TEST(test_remove_keeps_others)
{
	enum { N = 100 };
	idmap_t *m = idmap_create(N);
	static int values[N];
	uint16_t ids[N];

	for (int i = 0; i < N; i++)
		ck_assert_int_eq(idmap_add(m, &values[i], &ids[i]), 0);
	/* Remove every other one; the rest must still be found, whatever
	 * probe chains the removals broke. */
	for (int i = 0; i < N; i += 2)
		ck_assert_ptr_eq(idmap_remove(m, ids[i]), &values[i]);
	for (int i = 0; i < N; i++)
		ck_assert_ptr_eq(idmap_get(m, ids[i]), i % 2 ? &values[i] : NULL);
	ck_assert_ptr_null(idmap_remove(m, ids[0]));
	ck_assert_uint_eq(idmap_count(m), N / 2);
	/* Room again: the map refills to capacity. */
	for (int i = 0; i < N; i += 2)
		ck_assert_int_eq(idmap_add(m, &values[i], &ids[i]), 0);
	for (int i = 0; i < N; i++)
		ck_assert_ptr_eq(idmap_get(m, ids[i]), &values[i]);
	idmap_destroy(m);
}
END_TEST

START_TEST(test_churn_and_pop)
{
	idmap_t *m = idmap_create(64);
	static int v[64];
	uint16_t ids[64], id;
	int n = 0;

	/* Many add/remove rounds at high load exercise backward shifting. */
	for (int round = 0; round < 20000; round++) {
		int i = round % 64;
		if (round >= 64)
			ck_assert_ptr_eq(idmap_remove(m, ids[i]), &v[i]);
		ck_assert_int_eq(idmap_add(m, &v[i], &ids[i]), 0);
	}
	for (int i = 0; i < 64; i++)
		ck_assert_ptr_eq(idmap_get(m, ids[i]), &v[i]);
	while (idmap_pop(m, &id))
		n++;
	ck_assert_int_eq(n, 64);
	ck_assert_uint_eq(idmap_count(m), 0);
	idmap_destroy(m);
}
END_TEST

static Suite *idmap_suite(void)
{
	Suite *s = suite_create("idmap");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_unique_and_found);
	tcase_add_test(tc, test_remove_keeps_others);
	tcase_add_test(tc, test_churn_and_pop);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(idmap_suite)
