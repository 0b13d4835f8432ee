/*
 * test_backoff: unit tests for src/backoff.h.
 *
 * The three retry loops that share the helper each had their own formula
 * before it; the formulas are written out here as they were, and the
 * helper must give the same waits for every try, so that moving the loops
 * onto it changed no timing.
 */
#include "config.h"

#include "unit.h"

#include "backoff.h"

/* pull.c: 250 ms doubled per try up to 8 s, before jitter. */
static int64_t
old_pull(unsigned tries)
{
	int64_t ms = 250LL << (tries < 6 ? tries : 6);

	return ms > 8000 ? 8000 : ms;
}

/* fetch.c, a call's retries: 0.5, 1, 2 ... 16 s; tried counts from 1. */
static int64_t
old_call(unsigned tried)
{
	return 500LL << (tried < 6 ? tried - 1 : 5);
}

static void
test_same_as_before(void **state)
{
	int64_t keeper = 100; /* keeper.c: 0.1 s, doubled, at most 2 s */
	unsigned t;

	(void)state;
	for (t = 0; t < 100; t++) {
		assert_int_equal(backoff_ms(250, 8000, t), old_pull(t));
		assert_int_equal(backoff_ms(500, 16000, t), old_call(t + 1));
		assert_int_equal(backoff_ms(100, 2000, t), keeper);
		if ((keeper *= 2) > 2000)
			keeper = 2000;
	}
}

static void
test_bounds(void **state)
{
	(void)state;
	assert_int_equal(backoff_ms(250, 8000, 0), 250);
	assert_int_equal(backoff_ms(250, 8000, 1), 500);
	/* No overflow, however many tries. */
	assert_int_equal(backoff_ms(250, 8000, 4000000000U), 8000);
	assert_int_equal(backoff_ms(1, INT64_MAX / 2, 200), INT64_MAX / 2);
	/* A first wait above the cap is the cap. */
	assert_int_equal(backoff_ms(9000, 8000, 0), 8000);
}

static void
test_jitter(void **state)
{
	unsigned r;

	(void)state;
	assert_int_equal(backoff_jitter(8000, 0), 4000);
	assert_int_equal(backoff_jitter(8000, 255), 8000);
	for (r = 0; r < 256; r++) {
		int64_t ms = backoff_jitter(1000, (unsigned char)r);

		/* The formula pull.c had: half, plus up to another half. */
		assert_int_equal(ms, 500 + 500 * (int64_t)r / 255);
		assert_true(ms >= 500 && ms <= 1000);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_as_before),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_jitter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
