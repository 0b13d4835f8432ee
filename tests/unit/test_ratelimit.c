/*
 * test_ratelimit: unit tests for src/ratelimit.c.
 *
 * A note is a deadline by the store's clock; the tests read it back with a
 * margin of a minute, so that no assertion depends on how fast they run.
 * What is in the file when it is not a deadline is kept, byte for byte.
 */
#include "config.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "unit.h"
#include "unit_store.h"

#include "fetch.h"
#include "ratelimit.h"
#include "store.h"

#define HOST "cdn-lfs.example.org"

static void
test_path(void **state)
{
	char rel[64];

	(void)state;
	assert_int_equal(ratelimit_path(HOST, rel, sizeof(rel)), 0);
	assert_string_equal(rel, "tmp/ratelimit." HOST);
	/* A port, a user, a slash: never a path of its own. */
	assert_int_equal(ratelimit_path("u@h:8080/../x", rel, sizeof(rel)), 0);
	assert_string_equal(rel, "tmp/ratelimit.u_h_8080_.._x");
	assert_int_equal(ratelimit_path("", rel, sizeof(rel)), -EINVAL);
	assert_int_equal(ratelimit_path(HOST, rel, 20), -ENAMETOOLONG);
}

/* A note is read back as a wait, by every reader of the store. */
static void
test_round_trip(void **state)
{
	struct unit_fixture *fx = *state;
	struct store other;
	int64_t left = -1;

	assert_int_equal(ratelimit_left(&fx->store, HOST, &left), -ENOENT);
	assert_int_equal(left, 0);
	assert_int_equal(ratelimit_note(&fx->store, HOST, 50000), 0);
	assert_int_equal(ratelimit_left(&fx->store, HOST, &left), 0);
	assert_true(left > 0 && left <= 50000);
	/* Another process of the store (its own owner id) sees it too. */
	assert_int_equal(store_open(&other, fx->dir, 0), 0);
	assert_int_equal(ratelimit_left(&other, HOST, &left), 0);
	assert_true(left > 0 && left <= 50000);
	store_release(&other);
	/* Another host is not limited. */
	assert_int_equal(ratelimit_left(&fx->store, "other.example", &left),
	    -ENOENT);
	assert_int_equal(left, 0);
}

/* However long the file says, a wait is at most FETCH_WAIT_MAX_S. */
static void
test_capped(void **state)
{
	struct unit_fixture *fx = *state;
	int64_t left;

	assert_int_equal(ratelimit_note(&fx->store, HOST,
			     100LL * 24 * 3600 * 1000),
	    0);
	assert_int_equal(ratelimit_left(&fx->store, HOST, &left), 0);
	assert_int_equal(left, FETCH_WAIT_MAX_S * 1000);
	/* A deadline past is no wait. */
	unit_write(fx->dir, "tmp/ratelimit." HOST, "1\n", 2);
	assert_int_equal(ratelimit_left(&fx->store, HOST, &left), 0);
	assert_int_equal(left, 0);
}

/* Reads dir/rel whole into buf (len), NUL-terminated; returns its size. */
static size_t
slurp(const char *dir, const char *rel, char *buf, size_t len)
{
	char path[UNIT_PATH];
	size_t n;
	FILE *f;

	unit_fmt(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

/*
 * What is not a deadline is said so (-EBADMSG), is no wait, and stays
 * where it is as it was; the next note replaces it.
 */
static void
test_corrupt(void **state)
{
	static const char *const bad[] = { "", "\n", "soon\n", "12x\n", "-5\n",
		"99999999999999999999999\n", " 12\n", "12 13\n" };
	struct unit_fixture *fx = *state;
	const char *rel = "tmp/ratelimit." HOST;
	char big[200], back[256], path[UNIT_PATH];
	int64_t left;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_write(fx->dir, rel, bad[i], strlen(bad[i]));
		left = -1;
		assert_int_equal(ratelimit_left(&fx->store, HOST, &left),
		    -EBADMSG);
		assert_int_equal(left, 0);
		assert_int_equal(slurp(fx->dir, rel, back, sizeof(back)),
		    strlen(bad[i]));
		assert_string_equal(back, bad[i]);
	}
	/* Too long to be a deadline: not read at all. */
	memset(big, '7', sizeof(big));
	unit_write(fx->dir, rel, big, sizeof(big));
	assert_int_equal(ratelimit_left(&fx->store, HOST, &left), -EBADMSG);
	assert_int_equal(slurp(fx->dir, rel, back, sizeof(back)), sizeof(big));
	/* The next note replaces what was there. */
	assert_int_equal(ratelimit_note(&fx->store, HOST, 50000), 0);
	assert_int_equal(ratelimit_left(&fx->store, HOST, &left), 0);
	assert_true(left > 0 && left <= 50000);
	/* A directory or a FIFO there is not read, and not removed. */
	unit_fmt(path, sizeof(path), "%s/%s", fx->dir, rel);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(ratelimit_left(&fx->store, HOST, &left), -EBADMSG);
	assert_int_equal(left, 0);
	assert_int_equal(access(path, F_OK), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path),
		cmocka_unit_test_setup_teardown(test_round_trip,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_capped, unit_fixture_setup,
		    unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt,
		    unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
