/*
 * test_beat: unit tests for src/beat.c (the heartbeat thread and its
 * registry), its use by claims and leases, and the store's clock
 * (store_now_ms() in src/store.c).
 *
 * Files are aged by setting their mtime an hour into the past; a round of
 * the thread is waited for with beat_wait_rounds(), never with a sleep.
 * While a test waits there, its own thread is blocked: the touches that
 * happen meanwhile are the thread's.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "unit.h"
#include "unit_store.h"

#include "beat.h"
#include "claim.h"
#include "lease.h"
#include "store.h"

#define SHA_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define COMMIT "0123456789abcdef0123456789abcdef01234567"
#define HOUR_MS (3600 * 1000)
#define WAIT_MS 10000 /* a bound on a round, never reached when all is well */

static int64_t
mtime_of(const struct unit_fixture *fx, const char *rel)
{
	char path[UNIT_PATH];
	struct stat st;

	unit_fmt(path, sizeof(path), "%s/%s", fx->dir, rel);
	assert_int_equal(lstat(path, &st), 0);
	return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Sets rel's mtime an hour back. */
static void
age(const struct unit_fixture *fx, const char *rel)
{
	int64_t t = mtime_of(fx, rel) - HOUR_MS;
	struct timespec ts[2];

	ts[0].tv_sec = (time_t)(t / 1000);
	ts[0].tv_nsec = (long)(t % 1000) * 1000000;
	ts[1] = ts[0];
	assert_int_equal(utimensat(fx->store.dirfd, rel, ts,
			     AT_SYMLINK_NOFOLLOW),
	    0);
}

static int
fresh(struct unit_fixture *fx, const char *rel)
{
	/* Touched since it was aged, by the filesystem's clock. */
	return store_now_ms(&fx->store) - mtime_of(fx, rel) < HOUR_MS / 2;
}

static void
test_touches_registered(void **state)
{
	struct unit_fixture *fx = *state;
	struct beat b;

	unit_write(fx->dir, "tmp/a", "a", 1);
	unit_write(fx->dir, "tmp/b", "b", 1);
	assert_int_equal(beat_start(&b, 5), 0);
	assert_int_equal(beat_add(&b, fx->store.dirfd, "tmp/a"), 0);
	age(fx, "tmp/a");
	age(fx, "tmp/b");
	assert_false(fresh(fx, "tmp/a"));
	assert_int_equal(beat_wait_rounds(&b, 1, WAIT_MS), 0);
	assert_true(fresh(fx, "tmp/a"));
	assert_false(fresh(fx, "tmp/b")); /* not registered: left alone */
	assert_int_equal(beat_state(&b, fx->store.dirfd, "tmp/a"), 0);
	assert_int_equal(beat_state(&b, fx->store.dirfd, "tmp/b"), -ESRCH);
	beat_stop(&b);
}

static void
test_remove(void **state)
{
	struct unit_fixture *fx = *state;
	struct beat b;

	unit_write(fx->dir, "tmp/a", "a", 1);
	assert_int_equal(beat_start(&b, 5), 0);
	assert_int_equal(beat_add(&b, fx->store.dirfd, "tmp/a"), 0);
	beat_remove(&b, fx->store.dirfd, "tmp/a");
	beat_remove(&b, fx->store.dirfd, "tmp/a"); /* absent: no-op */
	age(fx, "tmp/a");
	assert_int_equal(beat_wait_rounds(&b, 2, WAIT_MS), 0);
	assert_false(fresh(fx, "tmp/a"));
	assert_int_equal(beat_state(&b, fx->store.dirfd, "tmp/a"), -ESRCH);
	beat_stop(&b);
}

/* A name given to another file: that file is not ours to keep alive. */
static void
test_replaced_is_lost(void **state)
{
	struct unit_fixture *fx = *state;
	struct beat b;

	unit_write(fx->dir, "tmp/a", "mine", 4);
	unit_write(fx->dir, "tmp/other", "theirs", 6);
	assert_int_equal(beat_start(&b, 5), 0);
	assert_int_equal(beat_add(&b, fx->store.dirfd, "tmp/a"), 0);
	assert_int_equal(renameat(fx->store.dirfd, "tmp/other", fx->store.dirfd,
			     "tmp/a"),
	    0);
	age(fx, "tmp/a");
	assert_int_equal(beat_wait_rounds(&b, 1, WAIT_MS), 0);
	assert_false(fresh(fx, "tmp/a"));
	assert_int_equal(beat_state(&b, fx->store.dirfd, "tmp/a"), -ENOENT);
	/* Gone altogether: the same. */
	assert_int_equal(unlinkat(fx->store.dirfd, "tmp/a", 0), 0);
	assert_int_equal(beat_wait_rounds(&b, 1, WAIT_MS), 0);
	assert_int_equal(beat_state(&b, fx->store.dirfd, "tmp/a"), -ENOENT);
	beat_stop(&b);
}

static void
test_bad_add(void **state)
{
	struct unit_fixture *fx = *state;
	struct beat b;

	memset(&b, 0, sizeof(b));
	assert_int_equal(beat_add(&b, fx->store.dirfd, "tmp/a"), -EINVAL);
	beat_stop(&b); /* never started: no-op */
	assert_int_equal(beat_start(&b, 5), 0);
	assert_int_equal(beat_add(&b, fx->store.dirfd, "tmp/none"), -ENOENT);
	assert_int_equal(beat_add(&b, fx->store.dirfd, "tmp"), -EINVAL);
	beat_stop(&b);
}

/* Claims join the store's beat when taken and leave it when released. */
static void
test_claim_beaten(void **state)
{
	struct unit_fixture *fx = *state;
	struct claim c = { 0 };
	struct beat b;

	assert_int_equal(beat_start(&b, 5), 0);
	fx->store.beat = &b;
	assert_int_equal(claim_try(&fx->store, &c, SHA_A,
			     store_now_ms(&fx->store), 10000),
	    0);
	age(fx, "claims/" SHA_A);
	assert_int_equal(beat_wait_rounds(&b, 1, WAIT_MS), 0);
	assert_true(fresh(fx, "claims/" SHA_A));
	assert_int_equal(claim_touch(&fx->store, &c), 0);
	assert_int_equal(claim_check(&fx->store, &c), 0);
	/* A note replaces the file: the new one is beaten. */
	assert_int_equal(claim_note(&fx->store, &c, "x"), 0);
	age(fx, "claims/" SHA_A);
	assert_int_equal(beat_wait_rounds(&b, 1, WAIT_MS), 0);
	assert_true(fresh(fx, "claims/" SHA_A));
	/* Taken over while we stalled: we notice, and leave theirs be. */
	unit_write(fx->dir, "tmp/theirs", "node-b.1.1 1\n", 13);
	assert_int_equal(renameat(fx->store.dirfd, "tmp/theirs",
			     fx->store.dirfd, "claims/" SHA_A),
	    0);
	age(fx, "claims/" SHA_A);
	assert_int_equal(beat_wait_rounds(&b, 1, WAIT_MS), 0);
	assert_false(fresh(fx, "claims/" SHA_A));
	assert_int_equal(claim_touch(&fx->store, &c), -ENOENT);
	assert_int_equal(claim_check(&fx->store, &c), -ESTALE);
	claim_release(&fx->store, &c);
	assert_int_equal(faccessat(fx->store.dirfd, "claims/" SHA_A, F_OK, 0),
	    0);
	assert_int_equal(beat_state(&b, fx->store.dirfd, "claims/" SHA_A),
	    -ESRCH);
	fx->store.beat = NULL;
	beat_stop(&b);
}

static void
test_lease_beaten(void **state)
{
	struct unit_fixture *fx = *state;
	struct lease l = { 0 };
	char rel[256];
	struct beat b;

	assert_int_equal(beat_start(&b, 5), 0);
	fx->store.beat = &b;
	assert_int_equal(lease_take(&fx->store, "models--org--name", COMMIT,
			     &l),
	    0);
	unit_fmt(rel, sizeof(rel), "leases/%s", l.id);
	age(fx, rel);
	assert_int_equal(beat_wait_rounds(&b, 1, WAIT_MS), 0);
	assert_true(fresh(fx, rel));
	assert_int_equal(lease_touch(&fx->store, &l), 0);
	/* Removed by another's fsck: the holder hears of it. */
	assert_int_equal(unlinkat(fx->store.dirfd, rel, 0), 0);
	assert_int_equal(beat_wait_rounds(&b, 1, WAIT_MS), 0);
	assert_int_equal(lease_touch(&fx->store, &l), -ENOENT);
	lease_drop(&fx->store, &l);
	assert_int_equal(beat_state(&b, fx->store.dirfd, rel), -ESRCH);
	fx->store.beat = NULL;
	beat_stop(&b);
}

/* The store's clock is the mtime the filesystem gives tmp/ on a touch. */
static void
test_store_clock(void **state)
{
	struct unit_fixture *fx = *state;
	char path[UNIT_PATH];
	struct timespec ts;
	int64_t now;

	age(fx, "tmp");
	now = store_now_ms(&fx->store);
	assert_int_equal(now, mtime_of(fx, "tmp"));
	assert_true(fresh(fx, "tmp"));
	assert_true(store_now_ms(&fx->store) >= now);
	/* It leaves nothing behind: tmp/ can be removed. */
	unit_fmt(path, sizeof(path), "%s/tmp", fx->dir);
	assert_int_equal(rmdir(path), 0);
	/* Without tmp/ (a store it cannot touch): the local clock. */
	clock_gettime(CLOCK_REALTIME, &ts);
	now = store_now_ms(&fx->store);
	assert_true(now >= (int64_t)ts.tv_sec * 1000);
	assert_int_equal(mkdir(path, 0755), 0);
}

/*
 * Another node's lease and claim are judged by their age on the store's
 * clock: stamped an hour before it, dead; just stamped by the filesystem,
 * live.  (t0701 runs the same judgement with the processes' clocks skewed
 * by faketime.)
 */
static void
test_judged_by_store_clock(void **state)
{
	struct unit_fixture *fx = *state;
	const char *id = "node-b.4026531836.1.0123456789abcdef";
	char rel[256], line[256];
	struct claim c = { 0 };

	unit_fmt(rel, sizeof(rel), "leases/%s", id);
	unit_fmt(line, sizeof(line), "models--org--name %s 1\n", COMMIT);
	unit_write(fx->dir, rel, line, strlen(line));
	unit_write(fx->dir, "claims/" SHA_A, "node-b.1.1 1\n", 13);
	/* An hour old by the store's clock: dead, though it was just made. */
	age(fx, rel);
	age(fx, "claims/" SHA_A);
	assert_int_equal(lease_live(&fx->store, "models--org--name", COMMIT,
			     10000),
	    0);
	assert_int_equal(claim_live(&fx->store, SHA_A, store_now_ms(&fx->store),
			     10000),
	    0);
	/* Beaten again: live. */
	assert_int_equal(utimensat(fx->store.dirfd, rel, NULL, 0), 0);
	assert_int_equal(utimensat(fx->store.dirfd, "claims/" SHA_A, NULL, 0),
	    0);
	assert_int_equal(lease_live(&fx->store, "models--org--name", COMMIT,
			     10000),
	    1);
	assert_int_equal(claim_try(&fx->store, &c, SHA_A,
			     store_now_ms(&fx->store), 10000),
	    -EBUSY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_touches_registered,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_remove, unit_fixture_setup,
		    unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_replaced_is_lost,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_bad_add,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_claim_beaten,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lease_beaten,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_store_clock,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_judged_by_store_clock,
		    unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
