/*
 * test_fault: unit tests for src/fault.c, the named crash points.
 *
 * fault_point() reads its environment once per process, at its first call,
 * so every case runs in a child forked before any call and given its
 * variables there; the parent never calls fault_point() itself.  A child
 * reports each call that returned by writing a byte to a pipe, so the
 * parent knows exactly how many points were passed before SIGKILL came;
 * for the trace, the child's stderr is a pipe the parent reads whole.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#include "fault.h"

#define THREADS 4
#define PER_THREAD 25

/* What a child did: how it ended, the calls it passed, what it wrote. */
struct child {
	int status;
	unsigned passed;
	char err[4096];
	size_t errlen;
};

/* Reads fd to its end into buf (NUL-terminated); returns the length. */
static size_t
drain(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	for (;;) {
		r = read(fd, buf + n, len - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		assert_true(r >= 0);
		if (r == 0 || n + (size_t)r == len - 1) {
			n += (size_t)r;
			break;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

static void *
thread_points(void *arg)
{
	int fd = *(int *)arg, i;

	for (i = 0; i < PER_THREAD; i++) {
		fault_point("thread");
		if (write(fd, "t", 1) != 1)
			_exit(3);
	}
	return NULL;
}

/*
 * Forks a child that sets MODELCACHE_CRASH_AT to at and
 * MODELCACHE_CRASH_TRACE to trace (each unset when NULL), then passes
 * calls fault points named "p1", "p2", ... (or, with threads set, THREADS
 * threads PER_THREAD points each) and exits 0.
 */
static void
run_child(const char *at, const char *trace, unsigned calls, int threads,
    struct child *c)
{
	int passed[2], err[2];
	char buf[1024];
	pid_t pid;

	memset(c, 0, sizeof(*c));
	assert_int_equal(pipe(passed), 0);
	assert_int_equal(pipe(err), 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_t tid[THREADS];
		char name[32];
		unsigned i;

		close(passed[0]);
		close(err[0]);
		if (dup2(err[1], STDERR_FILENO) == -1)
			_exit(2);
		close(err[1]);
		if ((at != NULL ? setenv("MODELCACHE_CRASH_AT", at, 1)
				: unsetenv("MODELCACHE_CRASH_AT")) != 0 ||
		    (trace != NULL ? setenv("MODELCACHE_CRASH_TRACE", trace, 1)
				   : unsetenv("MODELCACHE_CRASH_TRACE")) != 0)
			_exit(2);
		if (threads) {
			for (i = 0; i < THREADS; i++)
				if (pthread_create(&tid[i], NULL, thread_points,
					&passed[1]) != 0)
					_exit(2);
			for (i = 0; i < THREADS; i++)
				pthread_join(tid[i], NULL);
			_exit(0);
		}
		for (i = 1; i <= calls; i++) {
			snprintf(name, sizeof(name), "p%u", i);
			fault_point(name);
			if (write(passed[1], "p", 1) != 1)
				_exit(3);
		}
		_exit(0);
	}
	close(passed[1]);
	close(err[1]);
	c->errlen = drain(err[0], c->err, sizeof(c->err));
	c->passed = (unsigned)drain(passed[0], buf, sizeof(buf));
	close(err[0]);
	close(passed[0]);
	assert_int_equal(waitpid(pid, &c->status, 0), pid);
}

static void
assert_exited(const struct child *c)
{
	if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0)
		fail_msg("child did not exit 0 (status %#x)", c->status);
}

static void
assert_killed(const struct child *c)
{
	if (!WIFSIGNALED(c->status) || WTERMSIG(c->status) != SIGKILL)
		fail_msg("child was not killed by SIGKILL (status %#x)",
		    c->status);
}

static void
test_crash_at(void **state)
{
	struct child c;

	/* The third call never returns; the first two do. */
	run_child("3", NULL, 10, 0, &c);
	assert_killed(&c);
	assert_int_equal(c.passed, 2);
	assert_int_equal(c.errlen, 0);

	/* The first call, at once. */
	run_child("1", NULL, 10, 0, &c);
	assert_killed(&c);
	assert_int_equal(c.passed, 0);

	/* A point past the last call is never reached. */
	run_child("11", NULL, 10, 0, &c);
	assert_exited(&c);
	assert_int_equal(c.passed, 10);
}

static void
test_disabled(void **state)
{
	struct child c;

	run_child(NULL, NULL, 100, 0, &c);
	assert_exited(&c);
	assert_int_equal(c.passed, 100);
	assert_int_equal(c.errlen, 0);

	run_child("0", NULL, 100, 0, &c);
	assert_exited(&c);
	assert_int_equal(c.passed, 100);
	assert_int_equal(c.errlen, 0);

	/* Trace set to anything but 1 prints nothing. */
	run_child(NULL, "0", 100, 0, &c);
	assert_exited(&c);
	assert_int_equal(c.passed, 100);
	assert_int_equal(c.errlen, 0);
}

static void
test_trace(void **state)
{
	struct child c;

	run_child(NULL, "1", 3, 0, &c);
	assert_exited(&c);
	assert_int_equal(c.passed, 3);
	assert_string_equal(c.err,
	    "fault point 1: p1\n"
	    "fault point 2: p2\n"
	    "fault point 3: p3\n");

	/* With a crash point the trace names it before the kill. */
	run_child("2", "1", 5, 0, &c);
	assert_killed(&c);
	assert_int_equal(c.passed, 1);
	assert_string_equal(c.err,
	    "fault point 1: p1\n"
	    "fault point 2: p2\n");
}

static void
test_threads(void **state)
{
	struct child c;

	/* One count for the whole process, whichever thread calls. */
	run_child("100", NULL, 0, 1, &c);
	assert_killed(&c);
	assert_true(c.passed < THREADS * PER_THREAD);
	assert_true(c.passed >= THREADS * PER_THREAD - THREADS);

	run_child("101", NULL, 0, 1, &c);
	assert_exited(&c);
	assert_int_equal(c.passed, THREADS * PER_THREAD);
}

/*
 * MODELCACHE_CRASH_POINT counts only the points of its name, and
 * MODELCACHE_CRASH_SIGNAL=STOP stops the process there: the parent sees
 * it stopped (after one "x" point and two "p" points, through the pipe),
 * continues it, and the child goes on to exit 0.
 */
static void
test_point_stop(void **state)
{
	int passed[2], status;
	char buf[16];
	pid_t pid;

	assert_int_equal(pipe(passed), 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const char *names[] = { "x", "p", "x", "p", "x", "p" };
		unsigned i;

		close(passed[0]);
		if (setenv("MODELCACHE_CRASH_AT", "3", 1) != 0 ||
		    setenv("MODELCACHE_CRASH_POINT", "p", 1) != 0 ||
		    setenv("MODELCACHE_CRASH_SIGNAL", "STOP", 1) != 0 ||
		    unsetenv("MODELCACHE_CRASH_TRACE") != 0)
			_exit(2);
		for (i = 0; i < 6; i++) {
			fault_point(names[i]);
			if (write(passed[1], names[i], 1) != 1)
				_exit(3);
		}
		_exit(0);
	}
	close(passed[1]);
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP)
		fail_msg("child did not stop (status %#x)", status);
	/* Stopped at the third "p": five points passed before it. */
	assert_int_equal(read(passed[0], buf, sizeof(buf)), 5);
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child did not exit 0 (status %#x)", status);
	assert_int_equal(read(passed[0], buf, sizeof(buf)), 1);
	close(passed[0]);
}

/*
 * MODELCACHE_CRASH_THEN: an "x" point before the stop passes; once the
 * child is continued from its stop at the first "p", the next "p" passes
 * and the next "x" kills it.
 */
static void
test_stop_then(void **state)
{
	int passed[2], status;
	char buf[16];
	pid_t pid;

	assert_int_equal(pipe(passed), 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const char *names[] = { "x", "p", "p", "x", "x" };
		unsigned i;

		close(passed[0]);
		if (setenv("MODELCACHE_CRASH_AT", "1", 1) != 0 ||
		    setenv("MODELCACHE_CRASH_POINT", "p", 1) != 0 ||
		    setenv("MODELCACHE_CRASH_SIGNAL", "STOP", 1) != 0 ||
		    setenv("MODELCACHE_CRASH_THEN", "x", 1) != 0 ||
		    unsetenv("MODELCACHE_CRASH_TRACE") != 0)
			_exit(2);
		for (i = 0; i < 5; i++) {
			fault_point(names[i]);
			if (write(passed[1], names[i], 1) != 1)
				_exit(3);
		}
		_exit(0);
	}
	close(passed[1]);
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP)
		fail_msg("child did not stop (status %#x)", status);
	assert_int_equal(read(passed[0], buf, sizeof(buf)), 1);
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("child was not killed by SIGKILL (status %#x)",
		    status);
	/* The stopped "p" and the next one; the "x" after never returned. */
	assert_int_equal(read(passed[0], buf, sizeof(buf)), 2);
	close(passed[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_at),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_trace),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_point_stop),
		cmocka_unit_test(test_stop_then),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
