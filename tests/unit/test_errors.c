/*
 * test_errors: unit tests for src/errors.c, the one table of failure codes.
 *
 * The table must be whole (every code a wire name, an errno, an exit
 * status and a phrase) and one-to-one where a client reads it back (no two
 * codes share a wire name or an errno).  Every lookup must round-trip and
 * read a value from outside the set as internal.  The pages that list the
 * codes (libmodelcache(3), modelcache-protocol(7)) and the exit statuses
 * (modelcache-preload(1), modelcache(1)) are checked against the table,
 * and so is the Python client's copy of the codes (its exception classes).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "unit.h"

#include "errors.h"
#include "proto.h"
#include "pull.h"

/* Every code has each column, and none shares a wire name or an errno. */
static void
test_whole(void **state)
{
	unsigned i, j;

	(void)state;
	assert_int_equal(ERR_COUNT, 13); /* DESIGN.md section 5 */
	for (i = 0; i < ERR_COUNT; i++) {
		enum err_code e = (enum err_code)i;

		assert_non_null(err_name(e));
		assert_true(strlen(err_name(e)) > 0);
		assert_non_null(err_phrase(e));
		assert_true(strlen(err_phrase(e)) > 0);
		if (e == ERR_OK) {
			assert_int_equal(err_errno(e), 0);
			assert_int_equal(err_exit(e), EXIT_OK);
			continue;
		}
		/* A failure is a negative errno and a failing status. */
		assert_true(err_errno(e) < 0);
		assert_true(err_exit(e) > EXIT_OK);
		assert_true(err_exit(e) <= EXIT_TIMEOUT);
		for (j = 0; j < i; j++) {
			if (strcmp(err_name(e), err_name((enum err_code)j)) ==
			    0)
				fail_msg("codes %u and %u are both '%s'", j, i,
				    err_name(e));
			if (err_errno(e) == err_errno((enum err_code)j))
				fail_msg("codes %u and %u are both errno %d", j,
				    i, -err_errno(e));
		}
	}
}

/* Each lookup reads back what the others wrote. */
static void
test_round_trip(void **state)
{
	unsigned i;

	(void)state;
	for (i = 0; i < ERR_COUNT; i++) {
		enum err_code e = (enum err_code)i;

		assert_int_equal(err_of_name(err_name(e)), e);
		assert_int_equal(err_of_errno(err_errno(e)), e);
	}
	assert_string_equal(err_name(ERR_NOT_FOUND), "not_found");
	assert_int_equal(err_errno(ERR_NOT_FOUND), -ENOENT);
	assert_int_equal(err_exit(ERR_NOT_FOUND), EXIT_NOTFOUND);
	assert_int_equal(err_of_errno(-ENOTDIR), ERR_NOT_FOUND);
	assert_int_equal(err_of_errno(-ENAMETOOLONG), ERR_BAD_REQUEST);
	assert_int_equal(err_of_errno(-EDQUOT), ERR_NO_SPACE);
}

/* What is outside the set reads as internal, never out of bounds. */
static void
test_outside(void **state)
{
	(void)state;
	assert_string_equal(err_name(ERR_COUNT), "internal");
	assert_string_equal(err_name((enum err_code) - 1), "internal");
	assert_string_equal(err_name((enum err_code)INT_MAX), "internal");
	assert_int_equal(err_errno((enum err_code) - 1), -EIO);
	assert_int_equal(err_exit((enum err_code)INT_MAX), EXIT_FAIL);
	assert_string_equal(err_phrase(ERR_COUNT), err_phrase(ERR_INTERNAL));
	assert_int_equal(err_of_name(NULL), ERR_INTERNAL);
	assert_int_equal(err_of_name("not_a_code"), ERR_INTERNAL);
	assert_int_equal(err_of_name("NOT_FOUND"), ERR_INTERNAL);
	assert_int_equal(err_of_errno(-ENOMEM), ERR_INTERNAL);
	assert_int_equal(err_of_errno(-EPROTO), ERR_INTERNAL);
}

/* The modules' own names are the table's codes, not a translation. */
static void
test_aliases(void **state)
{
	(void)state;
	assert_int_equal(PROTO_OK, ERR_OK);
	assert_int_equal(PROTO_BAD_REQUEST, ERR_BAD_REQUEST);
	assert_int_equal(PROTO_INTERNAL, ERR_INTERNAL);
	assert_int_equal(PULL_NETWORK, ERR_ORIGIN_UNAVAILABLE);
	assert_int_equal(PULL_STOPPED, ERR_SHUTTING_DOWN);
	assert_int_equal(PULL_INTERNAL, ERR_INTERNAL);
}

/* The file $top_srcdir/name, whole; NULL (and the test skipped) when
 * the tests are not run by make check. */
static char *
page(const char *name)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	char *text = NULL;
	long n;
	FILE *f;

	if (top == NULL || *top == '\0')
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", top, name);
	if ((f = fopen(path, "r")) == NULL)
		fail_msg("cannot open '%s': %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (text = calloc(1, (size_t)n + 1)) &&
	    fread(text, 1, (size_t)n, f) != (size_t)n) {
		free(text);
		text = NULL;
	}
	fclose(f);
	assert_non_null(text);
	return text;
}

/* text holds line (a whole line). */
static void
has_line(const char *text, const char *name, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)) != NULL; p += n)
		if ((p == text || p[-1] == '\n') &&
		    (p[n] == '\n' || p[n] == '\0'))
			return;
	fail_msg("%s lacks the line \"%s\"", name, line);
}

/* The section of text that starts at the line sh. */
static const char *
section(const char *text, const char *sh)
{
	const char *p = strstr(text, sh);

	if (p == NULL)
		fail_msg("no \"%s\"", sh);
	return p;
}

/*
 * libmodelcache(3) lists each code with its errno, modelcache-protocol(7)
 * each code, and the EXIT STATUS of modelcache-preload(1) and
 * modelcache(1) each code's status (the latter 0 to 7: cli.h).
 */
static void
test_pages(void **state)
{
	char *lib = page("man/libmodelcache.3"), *proto, *pre, *cli;
	char line[256];
	unsigned i;

	(void)state;
	if (lib == NULL)
		skip(); /* no $top_srcdir: not run by make check */
	proto = page("man/modelcache-protocol.7");
	pre = page("man/modelcache-preload.1");
	cli = page("man/modelcache.1");
	for (i = 1; i < ERR_COUNT; i++) {
		enum err_code e = (enum err_code)i;
		int x = err_exit(e);

		snprintf(line, sizeof(line), ".It Li %s Ta Er %s", err_name(e),
		    strerrorname_np(-err_errno(e)));
		has_line(lib, "libmodelcache.3", line);
		snprintf(line, sizeof(line), ".It Bq Er %s",
		    strerrorname_np(-err_errno(e)));
		has_line(lib, "libmodelcache.3", line);
		snprintf(line, sizeof(line), ".It Li %s", err_name(e));
		has_line(section(proto, ".Ss Errors"), "modelcache-protocol.7",
		    line);
		snprintf(line, sizeof(line), ".It %d", x);
		has_line(section(pre, ".Sh EXIT STATUS"),
		    "modelcache-preload.1", line);
		snprintf(line, sizeof(line), ".It %d",
		    x > EXIT_NOSPACE ? EXIT_FAIL : x);
		has_line(section(cli, ".Sh EXIT STATUS"), "modelcache.1", line);
	}
	free(lib);
	free(proto);
	free(pre);
	free(cli);
}

/* The Python client has an exception class for each code but ok. */
static void
test_python(void **state)
{
	char *py = page("inference/python/modelcache/__init__.py");
	char line[256];
	unsigned i;

	(void)state;
	if (py == NULL)
		skip(); /* no $top_srcdir: not run by make check */
	for (i = 1; i < ERR_COUNT; i++) {
		snprintf(line, sizeof(line), "    code = \"%s\"",
		    err_name((enum err_code)i));
		has_line(py, "modelcache/__init__.py", line);
	}
	free(py);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_outside),
		cmocka_unit_test(test_aliases),
		cmocka_unit_test(test_pages),
		cmocka_unit_test(test_python),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
