/*
 * test_origin_hf: unit tests for the Hub token as src/origin_hf.c reads it
 * (HF_TOKEN, or the file HF_TOKEN_PATH names): trimmed alike from both,
 * refused when it could not be one header value, and never read from
 * anything but a regular file (a FIFO there must not hang the reader).
 * The Hub's API itself is tested against the test origin (t0101...).
 */
#include "config.h"

#include <sys/stat.h>

#include "unit.h"

#include "origin_hf.h"

static char *
token_env(const char *v)
{
	char *t;

	assert_int_equal(setenv("HF_TOKEN", v, 1), 0);
	t = hf_token(NULL);
	unsetenv("HF_TOKEN");
	return t;
}

static void
test_env(void **state)
{
	char *t;

	(void)state;
	t = token_env("  hf_abc\n");
	assert_non_null(t);
	assert_string_equal(t, "hf_abc");
	free(t);
	t = token_env("\thf_abc \r\n");
	assert_non_null(t);
	assert_string_equal(t, "hf_abc");
	free(t);
	assert_null(token_env(" \n"));
	assert_null(token_env("hf_a\r\nX-Evil: 1"));
	assert_null(token_env("hf a"));
}

static void
test_file(void **state)
{
	char *dir = unit_tmpdir(), path[4200], big[5000], *t;

	(void)state;
	unsetenv("HF_TOKEN");
	unit_write(dir, "token", "\n  hf_file \n\n", 13);
	snprintf(path, sizeof(path), "%s/token", dir);
	t = hf_token(path);
	assert_non_null(t);
	assert_string_equal(t, "hf_file");
	free(t);

	/* HF_TOKEN comes first, trimmed the same way. */
	assert_int_equal(setenv("HF_TOKEN", " hf_env ", 1), 0);
	t = hf_token(path);
	unsetenv("HF_TOKEN");
	assert_non_null(t);
	assert_string_equal(t, "hf_env");
	free(t);

	unit_write(dir, "inner", "hf_a b\n", 7);
	snprintf(path, sizeof(path), "%s/inner", dir);
	assert_null(hf_token(path));

	memset(big, 'a', sizeof(big));
	unit_write(dir, "big", big, sizeof(big));
	snprintf(path, sizeof(path), "%s/big", dir);
	assert_null(hf_token(path));

	/* A FIFO: no token, at once (it would block an open without
	 * O_NONBLOCK, as no one writes to it). */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(hf_token(path));

	snprintf(path, sizeof(path), "%s/absent", dir);
	assert_null(hf_token(path));
	assert_null(hf_token(""));
	unit_rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
