/*
 * Runs the one suite its binary was linked with (fanq_test_suite()).
 * Check's closing line "N%: Checks: C, Failures: F, Errors: E" is what
 * tests/check-runner.sh reads; CK_VERBOSITY and CK_FORK are honoured.
 */
#include <stdlib.h>

#include "test_util.h"

int main(void)
{
	SRunner *sr = srunner_create(fanq_test_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
