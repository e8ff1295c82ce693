/* The one main() every unit suite runs: run the suite, exit non-zero when
 * a check failed. */
#ifndef CHECK_MAIN_H
#define CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

#define CHECK_MAIN(make_suite)                                      \
	int main(void)                                              \
	{                                                           \
		SRunner *sr = srunner_create(make_suite());         \
		int failed;                                         \
		srunner_run_all(sr, CK_NORMAL);                     \
		failed = srunner_ntests_failed(sr);                 \
		srunner_free(sr);                                   \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;        \
	}

#endif
