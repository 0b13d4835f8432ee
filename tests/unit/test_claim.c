/*
 * test_claim: unit tests for src/claim.c.
 *
 * A claim is a file whose mtime is its heartbeat, so the tests age a claim
 * by setting its mtime into the past with utimensat() rather than by
 * waiting.  Cross-process behaviour is tested with fork(): children open
 * their own store (and so have their own owner id) and talk to the parent
 * over pipes, so no test sleeps to wait for another process.  Children
 * report through their exit status, never through cmocka.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "unit.h"
#include "unit_store.h"

#include "claim.h"
#include "store.h"

#define SHA_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SHA_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define STALE_MS 10000

/*
 * A store in a fresh temporary directory, made before each test and
 * removed after it by cmocka, even when the test fails.
 */
/* The absolute path of claims/<sha> (buf of 4200 bytes). */
static const char *
claim_file(const struct unit_fixture *fx, const char *sha, char *buf)
{
	int n = snprintf(buf, 4200, "%s/claims/%s", fx->dir, sha);

	assert_true(n > 0 && n < 4200);
	return buf;
}

static int
claim_exists(const struct unit_fixture *fx, const char *sha)
{
	char path[4200];
	struct stat st;

	return lstat(claim_file(fx, sha, path), &st) == 0;
}

/* Sets the claim file's mtime to ago_ms before the current time. */
static void
age_claim(const struct unit_fixture *fx, const char *sha, int64_t ago_ms)
{
	int64_t t = claim_now_ms() - ago_ms;
	struct timespec ts[2];
	char path[4200];

	ts[0].tv_sec = (time_t)(t / 1000);
	ts[0].tv_nsec = (long)(t % 1000) * 1000000;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, claim_file(fx, sha, path), ts, 0),
	    0);
}

/*
 * Rewrites a claim's owner as a process on another node: there only the
 * heartbeat can say whether it is alive.  The mtime is kept.
 */
static void
foreign_claim(const struct unit_fixture *fx, const char *sha)
{
	struct stat st;
	struct timespec ts[2];
	char path[4200];
	FILE *f;

	claim_file(fx, sha, path);
	assert_int_equal(stat(path, &st), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("node-b.4026531836.1 0\n", f);
	assert_int_equal(fclose(f), 0);
	ts[0] = st.st_mtim;
	ts[1] = st.st_mtim;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static int64_t
claim_mtime_ms(const struct unit_fixture *fx, const char *sha)
{
	char path[4200];
	struct stat st;

	assert_int_equal(stat(claim_file(fx, sha, path), &st), 0);
	return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* The claim file's text (NUL-terminated into buf). */
static void
claim_text(const struct unit_fixture *fx, const char *sha, char *buf,
    size_t len)
{
	char path[4200];
	ssize_t n;
	int fd;

	fd = open(claim_file(fx, sha, path), O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, len - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
}

static int
count_claims_dir(const struct unit_fixture *fx)
{
	char path[4200];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/claims", fx->dir);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
test_now_ms(void **state)
{
	int64_t a = claim_now_ms(), b;
	int64_t t = (int64_t)time(NULL) * 1000;

	assert_true(a >= t - 2000 && a <= t + 2000);
	b = claim_now_ms();
	assert_true(b >= a);
}

/* --- claim_try --- */

static void
test_try_take_and_busy(void **state)
{
	struct claim a, b;
	struct unit_fixture *fx = *state;
	char text[256], want[256];
	int64_t now = claim_now_ms();

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(claim_try(&fx->store, &a, SHA_A, now, STALE_MS), 0);
	assert_true(a.held);
	assert_string_equal(a.sha256, SHA_A);
	assert_true(claim_exists(fx, SHA_A));
	/* The file says who holds it: "<owner> <generation>\n". */
	claim_text(fx, SHA_A, text, sizeof(text));
	snprintf(want, sizeof(want), "%s %lld\n", fx->store.owner,
	    (long long)now);
	assert_string_equal(text, want);

	/* Another claim struct sees a live claim. */
	assert_int_equal(claim_try(&fx->store, &b, SHA_A, claim_now_ms(),
			     STALE_MS),
	    -EBUSY);
	assert_false(b.held);
	/* Releasing a claim one does not hold leaves the holder's file. */
	claim_release(&fx->store, &b);
	assert_true(claim_exists(fx, SHA_A));

	/* Another blob is independent. */
	assert_int_equal(claim_try(&fx->store, &b, SHA_B, now, STALE_MS), 0);
	assert_true(b.held);
	claim_release(&fx->store, &b);
	assert_false(claim_exists(fx, SHA_B));

	/* The holder's own second try says it holds it already. */
	assert_int_equal(claim_try(&fx->store, &a, SHA_A, claim_now_ms(),
			     STALE_MS),
	    -EALREADY);
	assert_true(a.held);
	assert_true(claim_exists(fx, SHA_A));
	assert_int_equal(count_claims_dir(fx), 1);
}

static void
test_try_bad_digest(void **state)
{
	struct claim c;
	struct unit_fixture *fx = *state;

	memset(&c, 0, sizeof(c));
	c.held = 1;
	assert_int_equal(claim_try(&fx->store, &c, "abc", 0, STALE_MS),
	    -EINVAL);
	assert_false(c.held);
	assert_int_equal(claim_try(&fx->store, &c,
			     "0123456789ABCDEF0123456789abcdef0123456789abcdef0"
			     "123456789abcdef",
			     0, STALE_MS),
	    -EINVAL);
	assert_int_equal(claim_try(&fx->store, &c, "../tmp/x", 0, STALE_MS),
	    -EINVAL);
	assert_int_equal(count_claims_dir(fx), 0);
}

/* --- stale claims --- */

static void
test_stale_takeover(void **state)
{
	struct claim a, b;
	struct unit_fixture *fx = *state;
	char text[256], want[256];
	int64_t now;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(claim_try(&fx->store, &a, SHA_A, 1, STALE_MS), 0);
	foreign_claim(fx, SHA_A);
	a.held = 0;

	/* Five seconds old is live under a ten-second limit. */
	age_claim(fx, SHA_A, 5000);
	assert_int_equal(claim_try(&fx->store, &b, SHA_A, claim_now_ms(),
			     STALE_MS),
	    -EBUSY);
	assert_true(claim_exists(fx, SHA_A));

	/* Past the limit: the stale claim is removed, then taken. */
	age_claim(fx, SHA_A, 60000);
	now = claim_now_ms();
	assert_int_equal(claim_try(&fx->store, &b, SHA_A, now, STALE_MS),
	    -EAGAIN);
	assert_false(b.held);
	assert_false(claim_exists(fx, SHA_A));
	assert_int_equal(count_claims_dir(fx), 0);
	assert_int_equal(claim_try(&fx->store, &b, SHA_A, now + 1, STALE_MS),
	    0);
	assert_true(b.held);
	claim_text(fx, SHA_A, text, sizeof(text));
	snprintf(want, sizeof(want), "%s %lld\n", fx->store.owner,
	    (long long)(now + 1));
	assert_string_equal(text, want);
	/* Its heartbeat is fresh, so it is live to others. */
	assert_true(claim_mtime_ms(fx, SHA_A) >= now - 2000);
	assert_int_equal(claim_try(&fx->store, &a, SHA_A, claim_now_ms(),
			     STALE_MS),
	    -EBUSY);
	/* No ".stale." file is left over. */
	assert_int_equal(count_claims_dir(fx), 1);

	/* The same claim, aged 5 s, is stale under a one-second limit. */
	foreign_claim(fx, SHA_A);
	b.held = 0;
	age_claim(fx, SHA_A, 5000);
	assert_int_equal(claim_try(&fx->store, &a, SHA_A, claim_now_ms(), 1000),
	    -EAGAIN);
	assert_int_equal(claim_try(&fx->store, &a, SHA_A, claim_now_ms(), 1000),
	    0);
	assert_int_equal(count_claims_dir(fx), 1);
}

/* claim_acquire takes a stale claim over without waiting for the timeout. */
static void
test_acquire_stale(void **state)
{
	struct claim a, b;
	struct unit_fixture *fx = *state;
	int64_t t0;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(claim_try(&fx->store, &a, SHA_A, 1, STALE_MS), 0);
	foreign_claim(fx, SHA_A);
	age_claim(fx, SHA_A, 3600 * 1000);
	t0 = claim_now_ms();
	assert_int_equal(claim_acquire(&fx->store, &b, SHA_A, STALE_MS, 60000),
	    0);
	assert_true(claim_now_ms() - t0 < 5000);
	assert_true(b.held);
	assert_true(claim_mtime_ms(fx, SHA_A) >= t0 - 2000);
	assert_int_equal(count_claims_dir(fx), 1);
}

/* --- release, touch --- */

static void
test_release(void **state)
{
	struct claim a, b;
	struct unit_fixture *fx = *state;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(claim_try(&fx->store, &a, SHA_A, claim_now_ms(),
			     STALE_MS),
	    0);
	claim_release(&fx->store, &a);
	assert_false(a.held);
	assert_false(claim_exists(fx, SHA_A));
	/* A second release is a no-op, even once someone else holds it. */
	assert_int_equal(claim_try(&fx->store, &b, SHA_A, claim_now_ms(),
			     STALE_MS),
	    0);
	claim_release(&fx->store, &a);
	assert_true(claim_exists(fx, SHA_A));
	assert_true(b.held);
	claim_release(&fx->store, &b);
	assert_false(claim_exists(fx, SHA_A));
	assert_int_equal(count_claims_dir(fx), 0);
}

static void
test_touch(void **state)
{
	struct claim a, b;
	struct unit_fixture *fx = *state;
	int64_t before;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(claim_touch(&fx->store, &a), -EINVAL);
	assert_int_equal(claim_try(&fx->store, &a, SHA_A, claim_now_ms(),
			     STALE_MS),
	    0);
	foreign_claim(fx, SHA_A);
	age_claim(fx, SHA_A, 60000);
	assert_true(claim_mtime_ms(fx, SHA_A) < claim_now_ms() - 50000);

	before = claim_now_ms();
	assert_int_equal(claim_touch(&fx->store, &a), 0);
	/* Filesystem timestamps may lag the clock by a tick. */
	assert_true(claim_mtime_ms(fx, SHA_A) >= before - 1000);
	assert_true(claim_mtime_ms(fx, SHA_A) <= claim_now_ms() + 1000);
	/* Refreshed: no longer stale to another contender. */
	assert_int_equal(claim_try(&fx->store, &b, SHA_A, claim_now_ms(),
			     STALE_MS),
	    -EBUSY);
	assert_true(claim_exists(fx, SHA_A));

	/* Touching a claim whose file vanished reports it. */
	claim_release(&fx->store, &a); /* no longer ours: the file stays */
	assert_true(claim_exists(fx, SHA_A));
	assert_int_equal(unlink(claim_file(fx, SHA_A, (char[4200]){ 0 })), 0);
	a.held = 1;
	assert_int_equal(claim_touch(&fx->store, &a), -ENOENT);
}

/* --- claim_acquire --- */

static void
test_acquire_timeout(void **state)
{
	struct claim a, b;
	struct unit_fixture *fx = *state;
	int64_t t0, took;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));

	/* Free: taken at once. */
	assert_int_equal(claim_acquire(&fx->store, &a, SHA_A, STALE_MS, 0), 0);
	assert_true(a.held);

	/* Held and live: waits out the timeout, then gives up. */
	t0 = claim_now_ms();
	assert_int_equal(claim_acquire(&fx->store, &b, SHA_A, STALE_MS, 150),
	    -ETIMEDOUT);
	took = claim_now_ms() - t0;
	assert_true(took >= 150);
	assert_true(took < 5000);
	assert_false(b.held);
	assert_true(claim_exists(fx, SHA_A));

	/* A zero timeout tries once. */
	assert_int_equal(claim_acquire(&fx->store, &b, SHA_A, STALE_MS, 0),
	    -ETIMEDOUT);
	assert_int_equal(claim_acquire(&fx->store, &b, "xyz", STALE_MS, 0),
	    -EINVAL);
}

struct waiter {
	struct store *store;
	struct claim claim;
	int rc;
};

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->rc = claim_acquire(w->store, &w->claim, SHA_A, STALE_MS, 30000);
	return NULL;
}

/* A waiter gets the claim once its holder lets go. */
static void
test_acquire_after_release(void **state)
{
	struct unit_fixture *fx = *state;
	struct waiter w;
	struct claim a;
	pthread_t t;

	memset(&a, 0, sizeof(a));
	memset(&w, 0, sizeof(w));
	w.store = &fx->store;
	w.rc = 1;
	assert_int_equal(claim_try(&fx->store, &a, SHA_A, claim_now_ms(),
			     STALE_MS),
	    0);
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	claim_release(&fx->store, &a);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(w.rc, 0);
	assert_true(w.claim.held);
	assert_true(claim_exists(fx, SHA_A));
}

/* --- across processes --- */

/*
 * The child: opens its own store, tries the claim, writes the result byte
 * to the parent, then waits for a byte (or EOF) before releasing.
 */
static void
child_hold(const char *root, int report, int wait)
{
	struct store store;
	struct claim c;
	char rc, go;

	memset(&c, 0, sizeof(c));
	if (store_open(&store, root, 0) < 0)
		_exit(10);
	rc = (char)-claim_try(&store, &c, SHA_A, claim_now_ms(), STALE_MS);
	if (write(report, &rc, 1) != 1)
		_exit(11);
	if (read(wait, &go, 1) < 0)
		_exit(12);
	claim_release(&store, &c);
	store_release(&store);
	_exit(rc == 0 ? 0 : 13);
}

static void
test_cross_process(void **state)
{
	int report[2], wait[2], status;
	char rc, text[256], prefix[64];
	struct unit_fixture *fx = *state;
	struct claim c;
	pid_t pid;

	memset(&c, 0, sizeof(c));
	assert_int_equal(pipe(report), 0);
	assert_int_equal(pipe(wait), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(report[0]);
		close(wait[1]);
		child_hold(fx->dir, report[1], wait[0]);
	}
	close(report[1]);
	close(wait[0]);
	assert_int_equal(read(report[0], &rc, 1), 1);
	assert_int_equal(rc, 0);

	/* The child's claim, in the child's name, is live to us. */
	claim_text(fx, SHA_A, text, sizeof(text));
	snprintf(prefix, sizeof(prefix), ".%ld.", (long)pid);
	assert_non_null(strstr(text, prefix));
	assert_int_equal(claim_try(&fx->store, &c, SHA_A, claim_now_ms(),
			     STALE_MS),
	    -EBUSY);
	assert_int_equal(claim_acquire(&fx->store, &c, SHA_A, STALE_MS, 20),
	    -ETIMEDOUT);

	/* Once the child lets go, it is ours. */
	assert_int_equal(write(wait[1], "g", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(claim_exists(fx, SHA_A));
	assert_int_equal(claim_try(&fx->store, &c, SHA_A, claim_now_ms(),
			     STALE_MS),
	    0);
	close(report[0]);
	close(wait[1]);
}

/*
 * A claim left by an earlier process that had our very pid (a daemon
 * restarted in the same container gets the same pid, hostname and often
 * the same namespace inode): its owner id differs from ours by the start
 * time alone, and its owner is dead however fresh its heartbeat.  Before
 * owner ids held the start time, such a claim looked alive forever.
 */
static void
test_reused_pid(void **state)
{
	struct unit_fixture *fx = *state;
	const char *o = fx->store.owner, *start = strrchr(o, '.');
	char line[256], path[4200];
	struct claim c;
	FILE *f;

	memset(&c, 0, sizeof(c));
	assert_non_null(start);
	/* "<host>.<boot>.<pidns>.<our pid>.<start + 1> <ms>" */
	assert_true(strtoull(start + 1, NULL, 10) > 0);
	snprintf(line, sizeof(line), "%.*s.%llu 1\n", (int)(start - o), o,
	    strtoull(start + 1, NULL, 10) + 1);
	f = fopen(claim_file(fx, SHA_A, path), "w");
	assert_non_null(f);
	fputs(line, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(claim_live(&fx->store, SHA_A, claim_now_ms(),
			     STALE_MS),
	    0);
	assert_int_equal(claim_try(&fx->store, &c, SHA_A, claim_now_ms(),
			     STALE_MS),
	    -EAGAIN);
	assert_int_equal(claim_try(&fx->store, &c, SHA_A, claim_now_ms(),
			     STALE_MS),
	    0);
	assert_true(c.held);
	claim_release(&fx->store, &c);

	/* Our own id, the same start time: alive, however old. */
	snprintf(line, sizeof(line), "%s 1\n", o);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(line, f);
	assert_int_equal(fclose(f), 0);
	age_claim(fx, SHA_A, 3600 * 1000);
	assert_int_equal(claim_live(&fx->store, SHA_A, claim_now_ms(),
			     STALE_MS),
	    1);
}

/* A holder killed with SIGKILL leaves a claim that goes stale, then over. */
static void
test_dead_holder(void **state)
{
	int report[2], wait[2], status;
	struct unit_fixture *fx = *state;
	struct claim c;
	pid_t pid;
	char rc;

	memset(&c, 0, sizeof(c));
	assert_int_equal(pipe(report), 0);
	assert_int_equal(pipe(wait), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(report[0]);
		close(wait[1]);
		child_hold(fx->dir, report[1], wait[0]);
	}
	close(report[1]);
	close(wait[0]);
	assert_int_equal(read(report[0], &rc, 1), 1);
	assert_int_equal(rc, 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));

	/*
	 * Its heartbeat is recent, but its owner ran on this host and in this
	 * PID namespace and is gone: the claim is taken over at once.
	 */
	assert_true(claim_exists(fx, SHA_A));
	assert_int_equal(claim_try(&fx->store, &c, SHA_A, claim_now_ms(),
			     STALE_MS),
	    -EAGAIN);
	assert_int_equal(claim_try(&fx->store, &c, SHA_A, claim_now_ms(),
			     STALE_MS),
	    0);
	assert_true(c.held);
	close(report[0]);
	close(wait[1]);
}

/*
 * Mutual exclusion: several processes take the claim in turn and each
 * checks, inside, that nobody else is inside (an O_EXCL marker file).
 */
#define NPROC 4
#define ROUNDS 25

static void
child_contend(const char *root)
{
	char marker[4200];
	struct store store;
	struct claim c;
	int i, fd;

	snprintf(marker, sizeof(marker), "%s/inside", root);
	if (store_open(&store, root, 0) < 0)
		_exit(10);
	for (i = 0; i < ROUNDS; i++) {
		memset(&c, 0, sizeof(c));
		if (claim_acquire(&store, &c, SHA_A, 60000, 20000) != 0)
			_exit(11);
		fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd == -1)
			_exit(12); /* someone else is inside */
		close(fd);
		if (unlink(marker) == -1)
			_exit(13);
		claim_release(&store, &c);
	}
	store_release(&store);
	_exit(0);
}

static void
test_mutual_exclusion(void **state)
{
	pid_t pids[NPROC];
	struct unit_fixture *fx = *state;
	int i, status;

	for (i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			child_contend(fx->dir);
	}
	for (i = 0; i < NPROC; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(count_claims_dir(fx), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_now_ms),
		cmocka_unit_test_setup_teardown(test_try_take_and_busy,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_reused_pid,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_try_bad_digest,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_stale_takeover,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_acquire_stale,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_release,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_touch, unit_fixture_setup,
		    unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_acquire_timeout,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_acquire_after_release,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_cross_process,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_dead_holder,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_mutual_exclusion,
		    unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
