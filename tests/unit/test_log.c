/*
 * test_log: unit tests for src/log.c.
 *
 * Standard error is pointed at a temporary file around each call, then the
 * file is read back and compared byte for byte, so the tests see exactly
 * what a reader of the daemon's log would.  fatal() and fatalx() exit, so
 * they run in a child process and the parent checks the exit status and
 * the line.  JSON lines are checked against hand-escaped expectations and
 * the timestamp against the ISO-8601 shape and the clock.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

#define OUT_MAX 65536

/* Where standard error went while capturing. */
struct capture {
	int saved;
	int fd;
	char path[64];
	char out[OUT_MAX];
	size_t len;
};

static void
capture_begin(struct capture *c)
{
	snprintf(c->path, sizeof(c->path), "/tmp/test_log.XXXXXX");
	c->fd = mkstemp(c->path);
	assert_true(c->fd >= 0);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(c->fd, STDERR_FILENO) == STDERR_FILENO);
}

/* Restores standard error and reads what was written into c->out. */
static void
capture_end(struct capture *c)
{
	ssize_t n;

	assert_true(dup2(c->saved, STDERR_FILENO) == STDERR_FILENO);
	close(c->saved);
	assert_true(lseek(c->fd, 0, SEEK_SET) == 0);
	c->len = 0;
	while (
	    (n = read(c->fd, c->out + c->len, sizeof(c->out) - 1 - c->len)) > 0)
		c->len += (size_t)n;
	assert_true(n == 0);
	c->out[c->len] = '\0';
	close(c->fd);
	unlink(c->path);
}

static int
setup(void **state)
{
	log_init("prog", LOG_TEXT, 0);
	return 0;
}

/* --- text format --- */

static void
test_text_warnx(void **state)
{
	struct capture c;

	capture_begin(&c);
	log_warnx("cannot open '%s'", "x");
	capture_end(&c);
	assert_string_equal(c.out, "prog: cannot open 'x'\n");
}

static void
test_text_warn_errno(void **state)
{
	struct capture c;
	char want[256];

	snprintf(want, sizeof(want), "prog: cannot open 'x': %s\n",
	    strerror(ENOENT));
	capture_begin(&c);
	errno = ENOENT;
	log_warn("cannot open '%s'", "x");
	capture_end(&c);
	assert_string_equal(c.out, want);
	assert_non_null(strstr(c.out, "No such file or directory"));
}

/* log_vlog() is the common body: its error code is appended as text. */
static void vlog(enum log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
vlog(enum log_level level, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(level, err, fmt, ap);
	va_end(ap);
}

static void
test_text_vlog(void **state)
{
	struct capture c;
	char want[256];

	snprintf(want, sizeof(want), "prog: read 3: %s\nprog: plain\n",
	    strerror(EIO));
	capture_begin(&c);
	errno = ENOENT; /* ignored: log_vlog takes the code it is given */
	vlog(LOG_LEVEL_ERROR, EIO, "read %d", 3);
	vlog(LOG_LEVEL_WARN, 0, "plain");
	capture_end(&c);
	assert_string_equal(c.out, want);
}

/* error and warn always; info from verbose 1; debug from verbose 2. */
static void
test_verbosity(void **state)
{
	struct capture c;

	capture_begin(&c);
	log_warnx("w0");
	log_info("i0");
	log_debug("d0");
	vlog(LOG_LEVEL_ERROR, 0, "e0");
	log_set_verbose(1);
	log_warnx("w1");
	log_info("i1");
	log_debug("d1");
	log_set_verbose(2);
	log_info("i2");
	log_debug("d2");
	log_set_verbose(0);
	log_info("i3");
	log_init("other", LOG_TEXT, 2);
	log_debug("d4");
	capture_end(&c);
	assert_string_equal(c.out,
	    "prog: w0\n"
	    "prog: e0\n"
	    "prog: w1\n"
	    "prog: i1\n"
	    "prog: i2\n"
	    "prog: d2\n"
	    "other: d4\n");
}

/* Logging leaves errno as it was, printed or not. */
static void
test_errno_kept(void **state)
{
	struct capture c;

	capture_begin(&c);
	errno = EACCES;
	log_warn("a");
	assert_int_equal(errno, EACCES);
	log_warnx("b");
	assert_int_equal(errno, EACCES);
	log_info("not shown");
	assert_int_equal(errno, EACCES);
	capture_end(&c);
}

/* Control bytes cannot start a forged line in text format. */
static void
test_text_control_escaped(void **state)
{
	struct capture c;

	capture_begin(&c);
	log_warnx("bad name '%s'", "a\nprog: forged\r\t\x01\x1b\x7f\\z");
	capture_end(&c);
	assert_string_equal(c.out,
	    "prog: bad name "
	    "'a\\nprog: forged\\r\\t\\x01\\x1b\\x7f\\z'\n");
}

/* UTF-8 in text format is passed through untouched. */
static void
test_text_utf8(void **state)
{
	struct capture c;

	capture_begin(&c);
	log_warnx("caf\xc3\xa9 \xff");
	capture_end(&c);
	assert_string_equal(c.out, "prog: caf\xc3\xa9 \xff\n");
}

/* A huge message is cut to one bounded line that still ends in '\n'. */
static void
test_text_long(void **state)
{
	struct capture c;
	char *big = malloc(20000);

	assert_non_null(big);
	memset(big, 'a', 19999);
	big[19999] = '\0';
	capture_begin(&c);
	log_warnx("%s", big);
	log_warnx("next");
	capture_end(&c);
	free(big);
	assert_true(c.len > 4000);
	assert_true(c.len < 9000);
	assert_memory_equal(c.out, "prog: aaaa", 10);
	assert_string_equal(c.out + c.len - strlen("\nprog: next\n"),
	    "\nprog: next\n");
	assert_int_equal(strchr(c.out, '\n') - c.out,
	    c.len - strlen("\nprog: next\n"));
}

/* --- JSON format --- */

/*
 * Checks that line is {"ts":"<ISO-8601>",<rest> with a timestamp within a
 * few seconds of now, and returns the part after the timestamp's comma.
 */
static const char *
check_json_head(const char *line)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	const char *ts;
	struct tm tm;
	time_t t, now = time(NULL);
	size_t i;

	assert_memory_equal(line, "{\"ts\":\"", 7);
	ts = line + 7;
	for (i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd')
			assert_true(ts[i] >= '0' && ts[i] <= '9');
		else
			assert_int_equal(ts[i], shape[i]);
	}
	assert_memory_equal(ts + sizeof(shape) - 1, "\",", 2);
	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm));
	t = timegm(&tm);
	assert_true(t >= now - 5 && t <= now + 1);
	return ts + sizeof(shape) - 1 + 2;
}

/* Copies the line at *p, '\n' included, into buf and moves *p past it. */
static void
next_line(const char **p, char *buf, size_t len)
{
	const char *nl = strchr(*p, '\n');

	assert_non_null(nl);
	assert_true((size_t)(nl - *p) + 2 <= len);
	memcpy(buf, *p, (size_t)(nl - *p) + 1);
	buf[nl - *p + 1] = '\0';
	*p = nl + 1;
}

static void
test_json_levels(void **state)
{
	struct capture c;
	const char *p;
	char line[512];

	log_init("modelcached", LOG_JSON, 2);
	capture_begin(&c);
	vlog(LOG_LEVEL_ERROR, 0, "e");
	log_warnx("cannot open '%s'", "x");
	log_info("i %d", 1);
	log_debug("d");
	capture_end(&c);

	p = c.out;
	next_line(&p, line, sizeof(line));
	assert_string_equal(check_json_head(line),
	    "\"level\":\"error\",\"prog\":\"modelcached\",\"msg\":\"e\"}\n");
	next_line(&p, line, sizeof(line));
	assert_string_equal(check_json_head(line),
	    "\"level\":\"warn\",\"prog\":\"modelcached\","
	    "\"msg\":\"cannot open 'x'\"}\n");
	next_line(&p, line, sizeof(line));
	assert_string_equal(check_json_head(line),
	    "\"level\":\"info\",\"prog\":\"modelcached\",\"msg\":\"i 1\"}\n");
	next_line(&p, line, sizeof(line));
	assert_string_equal(check_json_head(line),
	    "\"level\":\"debug\",\"prog\":\"modelcached\",\"msg\":\"d\"}\n");
	assert_string_equal(p, "");
}

/* Logs msg as JSON and checks the line shows it as want_msg. */
static void
json_tail_is(const char *msg, const char *want_msg)
{
	struct capture c;
	char want[1024];

	snprintf(want, sizeof(want),
	    "\"level\":\"warn\",\"prog\":\"p\",\"msg\":\"%s\"}\n", want_msg);
	log_init("p", LOG_JSON, 0);
	capture_begin(&c);
	log_warnx("%s", msg);
	capture_end(&c);
	assert_string_equal(check_json_head(c.out), want);
}

static void
test_json_escaping(void **state)
{
	json_tail_is("plain", "plain");
	json_tail_is("say \"hi\"", "say \\\"hi\\\"");
	json_tail_is("C:\\dir\\", "C:\\\\dir\\\\");
	json_tail_is("a\nb", "a\\nb");
	json_tail_is("a\rb\tc", "a\\rb\\tc");
	json_tail_is("\b\f", "\\b\\f");
	json_tail_is("\x01\x02\x1b\x1f", "\\u0001\\u0002\\u001b\\u001f");
	json_tail_is("del\x7f", "del\\u007f");
	json_tail_is("/slash", "/slash");
	json_tail_is("quote\"\nnewline\\", "quote\\\"\\nnewline\\\\");
}

/* Valid UTF-8 passes; anything else becomes U+FFFD so the line parses. */
static void
test_json_utf8(void **state)
{
	json_tail_is("caf\xc3\xa9", "caf\xc3\xa9");
	json_tail_is("\xe2\x82\xac", "\xe2\x82\xac");
	json_tail_is("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");
	json_tail_is("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");
	json_tail_is("a\xff"
		     "b",
	    "a\\ufffdb");
	json_tail_is("\xc3", "\\ufffd");
	json_tail_is("\xc3(", "\\ufffd(");
	json_tail_is("\xc0\xaf", "\\ufffd\\ufffd"); /* overlong '/' */
	json_tail_is("\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd"); /* overlong */
	json_tail_is("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"); /* surrogate */
	json_tail_is("\xf4\x90\x80\x80",
	    "\\ufffd\\ufffd\\ufffd\\ufffd"); /* above U+10FFFF */
	json_tail_is("\x80", "\\ufffd");
	json_tail_is("\xe2\x82", "\\ufffd\\ufffd");
}

static void
test_json_prog_escaped(void **state)
{
	struct capture c;

	log_init("we\"ird\\", LOG_JSON, 0);
	capture_begin(&c);
	log_warnx("m");
	capture_end(&c);
	assert_string_equal(check_json_head(c.out),
	    "\"level\":\"warn\",\"prog\":\"we\\\"ird\\\\\",\"msg\":\"m\"}\n");
}

static void
test_json_errno(void **state)
{
	struct capture c;
	char want[256];

	snprintf(want, sizeof(want),
	    "\"level\":\"warn\",\"prog\":\"p\",\"msg\":\"x: %s\"}\n",
	    strerror(EACCES));
	log_init("p", LOG_JSON, 0);
	capture_begin(&c);
	errno = EACCES;
	log_warn("x");
	capture_end(&c);
	assert_string_equal(check_json_head(c.out), want);
}

/*
 * A message that escapes to more than a line holds is cut between escapes:
 * the line still closes its string and object, and no escape is split.
 */
static void
test_json_long(void **state)
{
	struct capture c;
	char *big = malloc(10000);
	const char *tail;
	size_t i, n;

	assert_non_null(big);
	memset(big, '"', 9999);
	big[9999] = '\0';
	log_init("p", LOG_JSON, 0);
	capture_begin(&c);
	log_warnx("%s", big);
	capture_end(&c);
	free(big);
	assert_true(c.len > 4000);
	assert_true(c.len <= 8192);
	assert_int_equal(strchr(c.out, '\n') - c.out, c.len - 1);
	tail = check_json_head(c.out);
	assert_memory_equal(tail,
	    "\"level\":\"warn\",\"prog\":\"p\",\"msg\":\"",
	    strlen("\"level\":\"warn\",\"prog\":\"p\",\"msg\":\""));
	tail += strlen("\"level\":\"warn\",\"prog\":\"p\",\"msg\":\"");
	n = strlen(tail) - strlen("\"}\n");
	assert_string_equal(tail + n, "\"}\n");
	assert_true(n % 2 == 0);
	for (i = 0; i < n; i += 2)
		assert_memory_equal(tail + i, "\\\"", 2);
}

/* --- fatal, fatalx --- */

/* Runs fn in a child with standard error captured; returns its status. */
static int
run_child(void (*fn)(void), struct capture *c)
{
	pid_t pid;
	int status;

	capture_begin(c);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fn();
		_exit(99);
	}
	assert_true(waitpid(pid, &status, 0) == pid);
	capture_end(c);
	return status;
}

static void
child_fatalx(void)
{
	log_init("prog", LOG_TEXT, 0);
	fatalx("broken invariant %d", 7);
}

static void
child_fatal(void)
{
	log_init("prog", LOG_TEXT, 0);
	errno = EACCES;
	fatal("cannot bind '%s'", "/run/x.sock");
}

static void
child_fatalx_json(void)
{
	log_init("prog", LOG_JSON, 0);
	fatalx("boom");
}

static void
test_fatal(void **state)
{
	struct capture c;
	char want[256];
	int status;

	status = run_child(child_fatalx, &c);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_string_equal(c.out, "prog: broken invariant 7\n");

	snprintf(want, sizeof(want), "prog: cannot bind '/run/x.sock': %s\n",
	    strerror(EACCES));
	status = run_child(child_fatal, &c);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_string_equal(c.out, want);

	status = run_child(child_fatalx_json, &c);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_string_equal(check_json_head(c.out),
	    "\"level\":\"error\",\"prog\":\"prog\",\"msg\":\"boom\"}\n");
}

/* --- log_format_parse --- */

static void
test_format_parse(void **state)
{
	enum log_format f = LOG_JSON;

	assert_int_equal(log_format_parse("text", &f), 0);
	assert_int_equal(f, LOG_TEXT);
	assert_int_equal(log_format_parse("json", &f), 0);
	assert_int_equal(f, LOG_JSON);
	assert_int_equal(log_format_parse("JSON", &f), -EINVAL);
	assert_int_equal(log_format_parse("", &f), -EINVAL);
	assert_int_equal(log_format_parse("jsonl", &f), -EINVAL);
	assert_int_equal(log_format_parse(NULL, &f), -EINVAL);
	assert_int_equal(f, LOG_JSON);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_text_warnx, setup),
		cmocka_unit_test_setup(test_text_warn_errno, setup),
		cmocka_unit_test_setup(test_text_vlog, setup),
		cmocka_unit_test_setup(test_verbosity, setup),
		cmocka_unit_test_setup(test_errno_kept, setup),
		cmocka_unit_test_setup(test_text_control_escaped, setup),
		cmocka_unit_test_setup(test_text_utf8, setup),
		cmocka_unit_test_setup(test_text_long, setup),
		cmocka_unit_test_setup(test_json_levels, setup),
		cmocka_unit_test_setup(test_json_escaping, setup),
		cmocka_unit_test_setup(test_json_utf8, setup),
		cmocka_unit_test_setup(test_json_prog_escaped, setup),
		cmocka_unit_test_setup(test_json_errno, setup),
		cmocka_unit_test_setup(test_json_long, setup),
		cmocka_unit_test_setup(test_fatal, setup),
		cmocka_unit_test(test_format_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
