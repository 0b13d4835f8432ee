/*
 * test_conf: unit tests for src/conf.c.
 *
 * Covers the defaults, every key's checks through conf_set(), the size
 * parser, the file grammar (comments, quotes, bad lines reported with their
 * number, bounds) and the precedence file < environment < conf_set().  Each
 * test starts from an environment with none of the keys' variables set, so
 * the caller's environment cannot change the outcome.  Files are written in
 * a fresh temporary folder removed at the end.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const env_names[] = { "MODELCACHE_STORE",
	"MODELCACHE_SOCKET", "MODELCACHE_MODELS", "MODELCACHE_MAX_SIZE",
	"MODELCACHE_LOG_FORMAT", "HF_ENDPOINT", "HF_TOKEN_PATH",
	"MODELCACHE_STALE_AFTER", "MODELCACHE_REFRESH",
	"MODELCACHE_MAX_LEASES_PER_CLIENT", "MODELCACHE_MAX_PULLS_PER_CLIENT",
	"MODELCACHE_ALLOW", "MODELCACHE_INDEX_BUSY_TIMEOUT" };

/* Per-test state: a temporary folder and a struct conf with defaults. */
struct fixture {
	char dir[64];
	char path[128];
	struct conf conf;
};

static void
clear_env(void)
{
	size_t i;

	for (i = 0; i < NELEM(env_names); i++)
		assert_int_equal(unsetenv(env_names[i]), 0);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	clear_env();
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_conf.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/modelcache.conf", f->dir);
	if (conf_init(&f->conf) != 0) {
		rmdir(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	conf_release(&f->conf);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	clear_env();
	return 0;
}

/* Writes len bytes of text as the fixture's config file. */
static void
write_file(struct fixture *f, const char *text, size_t len)
{
	int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t done = 0;
	ssize_t n;

	assert_true(fd >= 0);
	while (done < len) {
		n = write(fd, text + done, len - done);
		assert_true(n > 0);
		done += (size_t)n;
	}
	assert_int_equal(close(fd), 0);
}

static int
load_text(struct fixture *f, const char *text, char *err, size_t errlen)
{
	write_file(f, text, strlen(text));
	return conf_load_file(&f->conf, f->path, err, errlen);
}

/* --- defaults and conf_set --- */

static void
test_defaults(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(f->conf.store, "/var/lib/modelcache");
	assert_string_equal(f->conf.socket, "/run/modelcache/modelcache.sock");
	assert_string_equal(f->conf.models, "");
	assert_string_equal(f->conf.include, "");
	assert_string_equal(f->conf.exclude, "");
	assert_true(f->conf.max_size == 0);
	assert_string_equal(f->conf.log_format, "text");
	assert_string_equal(f->conf.hf_endpoint, "https://huggingface.co");
	assert_string_equal(f->conf.hf_token_path, "");
	assert_int_equal(f->conf.stale_s, 30);
	assert_int_equal(f->conf.refresh_s, 600);
	assert_int_equal(f->conf.max_leases, 64);
	assert_int_equal(f->conf.max_pulls, 4);
	assert_string_equal(f->conf.allow, "hf://*");
}

static void
test_release(void **state)
{
	struct conf c;

	assert_int_equal(conf_init(&c), 0);
	conf_release(&c);
	assert_null(c.store);
	assert_null(c.hf_endpoint);
	conf_release(&c);
	conf_release(NULL);
}

struct set_case {
	const char *key;
	const char *value;
	int rc;
	const char *why; /* NULL for success */
};

static const struct set_case set_cases[] = {
	{ "store", "/data/store", 0, NULL },
	{ "store", "relative/store", 0, NULL },
	{ "store", "", -EINVAL, "must not be empty" },
	{ "socket", "/tmp/mc.sock", 0, NULL },
	{ "socket", "", -EINVAL, "must not be empty" },
	{ "models", "hf://a/b hf://c/d", 0, NULL },
	{ "models", "", 0, NULL },
	{ "max_size", "10G", 0, NULL },
	{ "max_size", "", -EINVAL, "invalid size" },
	{ "max_size", "-1", -EINVAL, "invalid size" },
	{ "max_size", "lots", -EINVAL, "invalid size" },
	{ "log_format", "json", 0, NULL },
	{ "log_format", "text", 0, NULL },
	{ "log_format", "JSON", -EINVAL, "must be text or json" },
	{ "log_format", "xml", -EINVAL, "must be text or json" },
	{ "log_format", "", -EINVAL, "must be text or json" },
	{ "hf_endpoint", "https://hf-mirror.example", 0, NULL },
	{ "hf_endpoint", "http://127.0.0.1:8080", 0, NULL },
	{ "hf_endpoint", "ftp://x", -EINVAL,
	    "must start with http:// or https://" },
	{ "hf_endpoint", "huggingface.co", -EINVAL,
	    "must start with http:// or https://" },
	{ "hf_endpoint", "HTTPS://x", -EINVAL,
	    "must start with http:// or https://" },
	{ "hf_endpoint", "", -EINVAL, "must start with http:// or https://" },
	{ "hf_endpoint", "https://", -EINVAL, "URL has no host" },
	{ "hf_endpoint", "https:///", -EINVAL, "URL has no host" },
	{ "hf_endpoint", "https:///x", -EINVAL, "URL has no host" },
	{ "hf_endpoint", "https://a b", -EINVAL, "invalid character in URL" },
	{ "hf_endpoint", "https://a\\b", -EINVAL, "invalid character in URL" },
	{ "hf_token_path", "/run/secrets/hf", 0, NULL },
	{ "hf_token_path", "", 0, NULL },
	{ "index_busy_timeout", "0", 0, NULL },
	{ "index_busy_timeout", "30", 0, NULL },
	{ "index_busy_timeout", "31", -EINVAL,
	    "number of seconds out of range" },
	{ "index_busy_timeout", "0.5", -EINVAL,
	    "must be a whole number of seconds" },
	{ "stale_after", "1", 0, NULL },
	{ "stale_after", "86400", 0, NULL },
	{ "stale_after", "0", -EINVAL, "number of seconds out of range" },
	{ "stale_after", "86401", -EINVAL, "number of seconds out of range" },
	{ "stale_after", "99999999999999999999999", -EINVAL,
	    "number of seconds out of range" },
	{ "stale_after", "", -EINVAL, "must be a whole number of seconds" },
	{ "stale_after", "-5", -EINVAL, "must be a whole number of seconds" },
	{ "stale_after", "+5", -EINVAL, "must be a whole number of seconds" },
	{ "stale_after", "5s", -EINVAL, "must be a whole number of seconds" },
	{ "stale_after", "1.5", -EINVAL, "must be a whole number of seconds" },
	{ "stale_after", " 5", -EINVAL, "must be a whole number of seconds" },
	{ "refresh", "0", 0, NULL },
	{ "refresh", "31536000", 0, NULL },
	{ "refresh", "31536001", -EINVAL, "number of seconds out of range" },
	{ "refresh", "4294967296", -EINVAL, "number of seconds out of range" },
	{ "store", "/a\tb", -EINVAL, "control character in value" },
	{ "models", "a\nb", -EINVAL, "control character in value" },
	{ "hf_token_path", "x\x7f", -EINVAL, "control character in value" },
	{ "max_size", "1\x01", -EINVAL, "control character in value" },
};

static void
test_set(void **state)
{
	struct fixture *f = *state;
	const struct set_case *c;
	const char *why;
	size_t i;
	int rc;

	for (i = 0; i < NELEM(set_cases); i++) {
		c = &set_cases[i];
		why = NULL;
		rc = conf_set(&f->conf, c->key, c->value, &why);
		if (rc != c->rc || (c->why == NULL) != (why == NULL) ||
		    (why != NULL && strcmp(why, c->why) != 0))
			fail_msg("conf_set(%s, case %zu): got %d \"%s\", "
				 "want %d \"%s\"",
			    c->key, i, rc, why != NULL ? why : "(null)", c->rc,
			    c->why != NULL ? c->why : "(null)");
	}
}

/* The values stored after conf_set, including how they are normalised. */
static void
test_set_values(void **state)
{
	struct fixture *f = *state;
	const char *why = NULL;

	assert_int_equal(conf_set(&f->conf, "store", "/data", &why), 0);
	assert_string_equal(f->conf.store, "/data");
	assert_int_equal(conf_set(&f->conf, "socket", "/s.sock", &why), 0);
	assert_string_equal(f->conf.socket, "/s.sock");
	assert_int_equal(conf_set(&f->conf, "models", "hf://a/b", &why), 0);
	assert_string_equal(f->conf.models, "hf://a/b");
	assert_int_equal(conf_set(&f->conf, "max_size", "512MiB", &why), 0);
	assert_true(f->conf.max_size == 536870912ULL);
	assert_int_equal(conf_set(&f->conf, "log_format", "json", &why), 0);
	assert_string_equal(f->conf.log_format, "json");
	assert_int_equal(conf_set(&f->conf, "hf_endpoint",
			     "https://mirror.example/", &why),
	    0);
	assert_string_equal(f->conf.hf_endpoint, "https://mirror.example");
	assert_int_equal(conf_set(&f->conf, "hf_endpoint",
			     "https://mirror.example/hf///", &why),
	    0);
	assert_string_equal(f->conf.hf_endpoint, "https://mirror.example/hf");
	assert_int_equal(conf_set(&f->conf, "hf_token_path", "/t", &why), 0);
	assert_string_equal(f->conf.hf_token_path, "/t");
	assert_int_equal(conf_set(&f->conf, "stale_after", "86400", &why), 0);
	assert_int_equal(f->conf.stale_s, 86400);
	assert_int_equal(conf_set(&f->conf, "refresh", "0", &why), 0);
	assert_int_equal(f->conf.refresh_s, 0);
	assert_int_equal(conf_set(&f->conf, "max_leases_per_client", "1", &why),
	    0);
	assert_int_equal(f->conf.max_leases, 1);
	assert_int_equal(conf_set(&f->conf, "max_pulls_per_client", "1024",
			     &why),
	    0);
	assert_int_equal(f->conf.max_pulls, 1024);
	assert_int_equal(conf_set(&f->conf, "allow",
			     "hf://* https://models.example.com/*", &why),
	    0);
	assert_string_equal(f->conf.allow,
	    "hf://* https://models.example.com/*");
	assert_int_equal(conf_set(&f->conf, "allow", "", &why), 0);
	assert_string_equal(f->conf.allow, "");
	assert_null(why);
	assert_int_equal(conf_set(&f->conf, "max_leases_per_client", "0", &why),
	    -EINVAL);
	assert_int_equal(conf_set(&f->conf, "max_pulls_per_client", "1025",
			     &why),
	    -EINVAL);
}

/* A failed conf_set leaves the previous value in place. */
static void
test_set_failure_keeps_value(void **state)
{
	struct fixture *f = *state;
	const char *why = NULL;

	assert_int_equal(conf_set(&f->conf, "store", "/keep", &why), 0);
	assert_int_equal(conf_set(&f->conf, "store", "", &why), -EINVAL);
	assert_string_equal(f->conf.store, "/keep");
	assert_int_equal(conf_set(&f->conf, "max_size", "1k", &why), 0);
	assert_int_equal(conf_set(&f->conf, "max_size", "1x", &why), -EINVAL);
	assert_true(f->conf.max_size == 1000);
	assert_int_equal(conf_set(&f->conf, "refresh", "99", &why), 0);
	assert_int_equal(conf_set(&f->conf, "refresh", "-1", &why), -EINVAL);
	assert_int_equal(f->conf.refresh_s, 99);
	assert_int_equal(conf_set(&f->conf, "hf_endpoint", "ftp://x", &why),
	    -EINVAL);
	assert_string_equal(f->conf.hf_endpoint, "https://huggingface.co");
}

/* include/exclude: split on spaces, tabs and commas; at most 64. */
static void
test_globs(void **state)
{
	struct fixture *f = *state;
	char list[] = " *.json,\t*.txt ,, onnx/*  ", many[64 * 4 + 8];
	const char *g[4], *why = NULL;
	size_t i;

	assert_int_equal(conf_globs(list, g, 4), 3);
	assert_string_equal(g[0], "*.json");
	assert_string_equal(g[1], "*.txt");
	assert_string_equal(g[2], "onnx/*");
	assert_int_equal(conf_globs(list, g, 4), 1); /* cut at the first */
	snprintf(list, sizeof(list), "a b c d e");
	assert_int_equal(conf_globs(list, g, 2), 2);
	assert_int_equal(conf_globs(list + strlen(list), g, 4), 0);

	for (i = 0; i < 64; i++)
		memcpy(many + 4 * i, "*.x ", 4);
	many[4 * 64] = '\0';
	assert_int_equal(conf_set(&f->conf, "include", many, &why), 0);
	memcpy(many + 4 * 64, "*.y", 4);
	assert_int_equal(conf_set(&f->conf, "exclude", many, &why), -EINVAL);
	assert_string_equal(why, "more than 64 patterns");
	assert_string_equal(f->conf.exclude, "");
}

static void
test_set_unknown_key(void **state)
{
	struct fixture *f = *state;
	const char *why = NULL;

	assert_int_equal(conf_set(&f->conf, "bogus", "1", &why), -ENOENT);
	assert_int_equal(conf_set(&f->conf, "Store", "/x", &why), -ENOENT);
	assert_int_equal(conf_set(&f->conf, "stale_s", "1", &why), -ENOENT);
	assert_int_equal(conf_set(&f->conf, "", "1", &why), -ENOENT);
	assert_int_equal(conf_set(&f->conf, NULL, "1", &why), -ENOENT);
	assert_null(why);
	assert_int_equal(conf_set(&f->conf, "store", NULL, &why), -EINVAL);
	assert_non_null(why);
	/* A NULL why is allowed. */
	assert_int_equal(conf_set(&f->conf, "store", "", NULL), -EINVAL);
}

static void
test_socket_length(void **state)
{
	struct fixture *f = *state;
	const char *why = NULL;
	char path[200];

	/* sun_path holds 108 bytes on Linux, NUL included. */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	assert_int_equal(conf_set(&f->conf, "socket", path, &why), 0);
	path[107] = 'a';
	path[108] = '\0';
	assert_int_equal(conf_set(&f->conf, "socket", path, &why), -EINVAL);
	assert_string_equal(why, "socket path is too long");
}

/* --- conf_parse_size --- */

struct size_case {
	const char *text;
	int rc;
	uint64_t value;
};

static const struct size_case size_cases[] = {
	{ "0", 0, 0 },
	{ "100", 0, 100 },
	{ "100B", 0, 100 },
	{ "100b", 0, 100 },
	{ "1k", 0, 1000 },
	{ "1K", 0, 1000 },
	{ "1KB", 0, 1000 },
	{ "1kb", 0, 1000 },
	{ "1KiB", 0, 1024 },
	{ "1kib", 0, 1024 },
	{ "1Ki", 0, 1024 },
	{ "2M", 0, 2000000 },
	{ "2MB", 0, 2000000 },
	{ "512MiB", 0, 536870912ULL },
	{ "512mib", 0, 536870912ULL },
	{ "10G", 0, 10000000000ULL },
	{ "10GB", 0, 10000000000ULL },
	{ "10g", 0, 10000000000ULL },
	{ "1GiB", 0, 1073741824ULL },
	{ "1.5GiB", 0, 1610612736ULL },
	{ "1.5G", 0, 1500000000ULL },
	{ "0.5KiB", 0, 512 },
	{ "1.0001K", 0, 1000 },	     /* 1000.1 bytes, rounded down */
	{ "1.9999K", 0, 1999 },	     /* 1999.9 bytes, rounded down */
	{ "1.5", 0, 1 },	     /* bytes are whole */
	{ "0.001K", 0, 1 },	     /* exactly one byte */
	{ "0.0009K", 0, 0 },	     /* 0.9 bytes */
	{ "0.0009765625KiB", 0, 1 }, /* exactly 1/1024 KiB */
	{ "0.0000000000009094947017729282379150390625TiB", 0, 1 },
	{ "007", 0, 7 },
	{ "1T", 0, 1000000000000ULL },
	{ "1TiB", 0, 1099511627776ULL },
	{ "16777215TiB", 0, 18446742974197923840ULL },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "18446744073709551615B", 0, UINT64_MAX },
	{ "18446744073709551616", -EINVAL, 0 },
	{ "16777216TiB", -EINVAL, 0 },
	{ "18446744073.709551616G", -EINVAL, 0 },
	{ "99999999999999999999T", -EINVAL, 0 },
	{ "", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "+1", -EINVAL, 0 },
	{ " 1", -EINVAL, 0 },
	{ "1 ", -EINVAL, 0 },
	{ "1 GiB", -EINVAL, 0 },
	{ "10X", -EINVAL, 0 },
	{ "10GX", -EINVAL, 0 },
	{ "10GiBB", -EINVAL, 0 },
	{ "10iB", -EINVAL, 0 },
	{ "10P", -EINVAL, 0 },
	{ "10BB", -EINVAL, 0 },
	{ "G", -EINVAL, 0 },
	{ ".5G", -EINVAL, 0 },
	{ "1.G", -EINVAL, 0 },
	{ "1.", -EINVAL, 0 },
	{ "1..5G", -EINVAL, 0 },
	{ "1.5.G", -EINVAL, 0 },
	{ "1e9", -EINVAL, 0 },
	{ "0x10", -EINVAL, 0 },
	{ "1,5G", -EINVAL, 0 },
};

static void
test_parse_size(void **state)
{
	uint64_t v;
	size_t i;
	int rc;

	for (i = 0; i < NELEM(size_cases); i++) {
		v = 12345;
		rc = conf_parse_size(size_cases[i].text, &v);
		if (rc != size_cases[i].rc)
			fail_msg("conf_parse_size(\"%s\"): got %d, want %d",
			    size_cases[i].text, rc, size_cases[i].rc);
		if (rc == 0 && v != size_cases[i].value)
			fail_msg("conf_parse_size(\"%s\"): got %llu, want %llu",
			    size_cases[i].text, (unsigned long long)v,
			    (unsigned long long)size_cases[i].value);
		if (rc != 0 && v != 12345)
			fail_msg("conf_parse_size(\"%s\") wrote on failure",
			    size_cases[i].text);
	}
	assert_int_equal(conf_parse_size(NULL, &v), -EINVAL);
}

/* Over-long text is refused before it is looked at. */
static void
test_parse_size_long(void **state)
{
	char text[200];
	uint64_t v;

	memset(text, '0', sizeof(text));
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(conf_parse_size(text, &v), -EINVAL);
}

/* --- conf_load_file --- */

static void
test_file_values(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(load_text(f,
			     "# modelcache.conf\n"
			     "\n"
			     "   \t\n"
			     "store = /srv/store\n"
			     "socket=/tmp/x.sock\n"
			     "\tmax_size\t=\t2GiB   \n"
			     "models = \"hf://a/b  hf://c/d\"\n"
			     "log_format = \"json\"   # quoted, then a "
			     "comment\n"
			     "hf_endpoint = https://mirror.example/ # comment\n"
			     "hf_token_path = \"\"\n"
			     "stale_after = 45\r\n"
			     "  # indented comment\n"
			     "refresh = 0",
			     err, sizeof(err)),
	    0);
	assert_string_equal(err, "");
	assert_string_equal(f->conf.store, "/srv/store");
	assert_string_equal(f->conf.socket, "/tmp/x.sock");
	assert_true(f->conf.max_size == 2147483648ULL);
	assert_string_equal(f->conf.models, "hf://a/b  hf://c/d");
	assert_string_equal(f->conf.log_format, "json");
	assert_string_equal(f->conf.hf_endpoint, "https://mirror.example");
	assert_string_equal(f->conf.hf_token_path, "");
	assert_int_equal(f->conf.stale_s, 45);
	assert_int_equal(f->conf.refresh_s, 0);
}

/* '#' starts a comment only at the start or after a blank. */
static void
test_file_hash_in_value(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	const char *ref = "https://h.example/f#sha256="
			  "0123456789abcdef0123456789abcdef"
			  "0123456789abcdef0123456789abcdef";
	char text[512];

	snprintf(text, sizeof(text),
	    "models = %s\n"
	    "store = /a#b # real comment\n"
	    "hf_token_path = \"/x # not a comment\"\n"
	    "socket = /s.sock#\n",
	    ref);
	assert_int_equal(load_text(f, text, err, sizeof(err)), 0);
	assert_string_equal(f->conf.models, ref);
	assert_string_equal(f->conf.store, "/a#b");
	assert_string_equal(f->conf.hf_token_path, "/x # not a comment");
	assert_string_equal(f->conf.socket, "/s.sock#");
}

/* Later lines win; an empty file changes nothing. */
static void
test_file_repeat_and_empty(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(load_text(f, "store = /one\nstore = /two\n", err,
			     sizeof(err)),
	    0);
	assert_string_equal(f->conf.store, "/two");
	assert_int_equal(load_text(f, "", err, sizeof(err)), 0);
	assert_string_equal(f->conf.store, "/two");
	assert_int_equal(load_text(f, "\n\n# only comments\n", err,
			     sizeof(err)),
	    0);
	assert_string_equal(f->conf.store, "/two");
}

struct bad_file {
	const char *text;
	const char *err;
};

static const struct bad_file bad_files[] = {
	{ "store /x\n", "1: expected 'key = value'" },
	{ "# ok\n\nstore\n", "3: expected 'key = value'" },
	{ "store = /x\nbogus = 1\n", "2: unknown key 'bogus'" },
	{ "= 1\n", "1: unknown key ''" },
	{ "Store = /x\n", "1: unknown key 'Store'" },
	{ "max_size = 10X\n", "1: max_size: invalid size" },
	{ "\n\nmax_size = -1\n", "3: max_size: invalid size" },
	{ "max_size =\n", "1: max_size: invalid size" },
	{ "log_format = yaml\n", "1: log_format: must be text or json" },
	{ "stale_after = 0\n",
	    "1: stale_after: number of seconds out of range" },
	{ "store = \"/x\n", "1: store: unterminated quote" },
	{ "store = \"/x\" y\n", "1: store: text after closing quote" },
	{ "store = \"/x\"\"y\"\n", "1: store: text after closing quote" },
	{ "store = \"\"\n", "1: store: must not be empty" },
	{ "store = \"a\tb\"\n", "1: store: control character in value" },
	{ "hf_endpoint = ftp://x\n",
	    "1: hf_endpoint: must start with http:// or https://" },
};

static void
test_file_bad_lines(void **state)
{
	struct fixture *f = *state;
	char err[256];
	size_t i;
	int rc;

	for (i = 0; i < NELEM(bad_files); i++) {
		memset(err, 0, sizeof(err));
		rc = load_text(f, bad_files[i].text, err, sizeof(err));
		if (rc != -EINVAL || strcmp(err, bad_files[i].err) != 0)
			fail_msg("bad file %zu: got %d \"%s\", want \"%s\"", i,
			    rc, err, bad_files[i].err);
	}
}

/* Keys before the bad line are applied; those after it are not. */
static void
test_file_partial(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(load_text(f,
			     "store = /before\n"
			     "max_size = 1Q\n"
			     "socket = /after.sock\n",
			     err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "2: max_size: invalid size");
	assert_string_equal(f->conf.store, "/before");
	assert_string_equal(f->conf.socket, "/run/modelcache/modelcache.sock");
	assert_true(f->conf.max_size == 0);
}

static void
test_file_nul_byte(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	static const char text[] = "store = /x\nsocket = /a\0b\n";

	write_file(f, text, sizeof(text) - 1);
	assert_int_equal(conf_load_file(&f->conf, f->path, err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "2: NUL byte in line");
}

static void
test_file_line_limit(void **state)
{
	struct fixture *f = *state;
	size_t vlen = CONF_LINE_MAX - strlen("models = ");
	char err[256] = "";
	char *text;

	/* A line of exactly CONF_LINE_MAX bytes is accepted... */
	text = malloc(CONF_LINE_MAX + 3);
	assert_non_null(text);
	memcpy(text, "models = ", strlen("models = "));
	memset(text + strlen("models = "), 'm', vlen);
	text[CONF_LINE_MAX] = '\n';
	text[CONF_LINE_MAX + 1] = '\0';
	assert_int_equal(load_text(f, text, err, sizeof(err)), 0);
	assert_int_equal(strlen(f->conf.models), vlen);

	/* ...and one byte more is not, even as the last line. */
	text[CONF_LINE_MAX] = 'm';
	text[CONF_LINE_MAX + 1] = '\0';
	assert_int_equal(load_text(f, text, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "1: line is too long");
	free(text);
}

static void
test_file_size_limit(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	char *text;
	size_t i;

	/* CONF_FILE_MAX bytes of comment lines are fine; one more is not. */
	text = malloc(CONF_FILE_MAX + 1);
	assert_non_null(text);
	memset(text, '#', CONF_FILE_MAX + 1);
	for (i = 1000; i < CONF_FILE_MAX + 1; i += 1000)
		text[i] = '\n';
	write_file(f, text, CONF_FILE_MAX);
	assert_int_equal(conf_load_file(&f->conf, f->path, err, sizeof(err)),
	    0);
	write_file(f, text, CONF_FILE_MAX + 1);
	assert_int_equal(conf_load_file(&f->conf, f->path, err, sizeof(err)),
	    -EFBIG);
	assert_non_null(strstr(err, "file is too large"));
	free(text);
}

static void
test_file_missing_and_unreadable(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(conf_load_file(&f->conf, f->path, err, sizeof(err)),
	    -ENOENT);
	assert_non_null(strstr(err, f->path));
	assert_int_equal(conf_load_file(&f->conf, f->dir, err, sizeof(err)),
	    -EISDIR);
	/* err may be left out. */
	assert_int_equal(conf_load_file(&f->conf, f->path, NULL, 0), -ENOENT);
	assert_int_equal(load_text(f, "bogus = 1\n", NULL, 0), -EINVAL);
}

/* A short err buffer gets a cut but terminated message. */
static void
test_file_short_err(void **state)
{
	struct fixture *f = *state;
	char err[8];

	memset(err, 'x', sizeof(err));
	assert_int_equal(load_text(f, "bogus = 1\n", err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "1: unkn");
}

/* --- conf_load_env and precedence --- */

static void
test_env(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(setenv("MODELCACHE_STORE", "/env/store", 1), 0);
	assert_int_equal(setenv("MODELCACHE_SOCKET", "/env.sock", 1), 0);
	assert_int_equal(setenv("MODELCACHE_MODELS", "hf://e/f", 1), 0);
	assert_int_equal(setenv("MODELCACHE_MAX_SIZE", "1.5GiB", 1), 0);
	assert_int_equal(setenv("MODELCACHE_LOG_FORMAT", "json", 1), 0);
	assert_int_equal(setenv("HF_ENDPOINT", "http://localhost:9/", 1), 0);
	assert_int_equal(setenv("HF_TOKEN_PATH", "/env/token", 1), 0);
	assert_int_equal(setenv("MODELCACHE_STALE_AFTER", "5", 1), 0);
	assert_int_equal(setenv("MODELCACHE_REFRESH", "60", 1), 0);
	assert_int_equal(setenv("MODELCACHE_MAX_LEASES_PER_CLIENT", "2", 1), 0);
	assert_int_equal(setenv("MODELCACHE_MAX_PULLS_PER_CLIENT", "3", 1), 0);
	assert_int_equal(setenv("MODELCACHE_ALLOW", "https://h/*,hf://o/*", 1),
	    0);
	assert_int_equal(conf_load_env(&f->conf, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(f->conf.store, "/env/store");
	assert_string_equal(f->conf.socket, "/env.sock");
	assert_string_equal(f->conf.models, "hf://e/f");
	assert_true(f->conf.max_size == 1610612736ULL);
	assert_string_equal(f->conf.log_format, "json");
	assert_string_equal(f->conf.hf_endpoint, "http://localhost:9");
	assert_string_equal(f->conf.hf_token_path, "/env/token");
	assert_int_equal(f->conf.stale_s, 5);
	assert_int_equal(f->conf.refresh_s, 60);
	assert_int_equal(f->conf.max_leases, 2);
	assert_int_equal(f->conf.max_pulls, 3);
	assert_string_equal(f->conf.allow, "https://h/*,hf://o/*");
}

/* index_busy_timeout: from the environment, checked against stale_after. */
static void
test_index_busy(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(f->conf.busy_s, 0); /* a 4th of stale_after */
	assert_int_equal(conf_check(&f->conf, err, sizeof(err)), 0);
	assert_int_equal(setenv("MODELCACHE_STALE_AFTER", "4", 1), 0);
	assert_int_equal(setenv("MODELCACHE_INDEX_BUSY_TIMEOUT", "3", 1), 0);
	assert_int_equal(conf_load_env(&f->conf, err, sizeof(err)), 0);
	assert_int_equal(f->conf.busy_s, 3);
	assert_int_equal(conf_check(&f->conf, err, sizeof(err)), 0);

	/* A waiter must not outlast the stale limit: refused, not cut. */
	assert_int_equal(setenv("MODELCACHE_INDEX_BUSY_TIMEOUT", "4", 1), 0);
	assert_int_equal(conf_load_env(&f->conf, err, sizeof(err)), 0);
	assert_int_equal(conf_check(&f->conf, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
	    "index_busy_timeout (4 s) must be below stale_after (4 s)");
	assert_int_equal(conf_check(&f->conf, NULL, 0), -EINVAL);
	assert_int_equal(load_text(f, "stale_after = 5\n", err, sizeof(err)),
	    0);
	assert_int_equal(conf_check(&f->conf, err, sizeof(err)), 0);

	assert_int_equal(setenv("MODELCACHE_INDEX_BUSY_TIMEOUT", "31", 1), 0);
	assert_int_equal(conf_load_env(&f->conf, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
	    "MODELCACHE_INDEX_BUSY_TIMEOUT: number of seconds out of range");
	assert_int_equal(f->conf.busy_s, 4);
}

/* An empty variable counts as unset. */
static void
test_env_empty_ignored(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(setenv("MODELCACHE_STORE", "", 1), 0);
	assert_int_equal(setenv("MODELCACHE_MAX_SIZE", "", 1), 0);
	assert_int_equal(conf_load_env(&f->conf, err, sizeof(err)), 0);
	assert_string_equal(f->conf.store, "/var/lib/modelcache");
	assert_true(f->conf.max_size == 0);
}

static void
test_env_bad(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";

	assert_int_equal(setenv("MODELCACHE_MAX_SIZE", "10X", 1), 0);
	assert_int_equal(conf_load_env(&f->conf, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "MODELCACHE_MAX_SIZE: invalid size");
	assert_true(f->conf.max_size == 0);
	assert_int_equal(unsetenv("MODELCACHE_MAX_SIZE"), 0);

	assert_int_equal(setenv("MODELCACHE_LOG_FORMAT", "yaml", 1), 0);
	assert_int_equal(conf_load_env(&f->conf, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "MODELCACHE_LOG_FORMAT: must be text or json");
	assert_int_equal(unsetenv("MODELCACHE_LOG_FORMAT"), 0);

	assert_int_equal(setenv("MODELCACHE_REFRESH", "31536001", 1), 0);
	assert_int_equal(conf_load_env(&f->conf, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
	    "MODELCACHE_REFRESH: number of seconds out of range");
	assert_int_equal(conf_load_env(&f->conf, NULL, 0), -EINVAL);
}

/* Defaults, then the file, then the environment, then conf_set(). */
static void
test_precedence(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	const char *why = NULL;

	assert_int_equal(load_text(f,
			     "store = /file/store\n"
			     "socket = /file.sock\n"
			     "max_size = 1G\n"
			     "refresh = 100\n",
			     err, sizeof(err)),
	    0);
	assert_int_equal(setenv("MODELCACHE_STORE", "/env/store", 1), 0);
	assert_int_equal(setenv("MODELCACHE_MAX_SIZE", "2G", 1), 0);
	assert_int_equal(setenv("MODELCACHE_STALE_AFTER", "7", 1), 0);
	assert_int_equal(conf_load_env(&f->conf, err, sizeof(err)), 0);
	assert_int_equal(conf_set(&f->conf, "store", "/flag/store", &why), 0);

	assert_string_equal(f->conf.store, "/flag/store"); /* flag */
	assert_true(f->conf.max_size == 2000000000ULL);	   /* env */
	assert_int_equal(f->conf.stale_s, 7);		   /* env */
	assert_string_equal(f->conf.socket, "/file.sock"); /* file */
	assert_int_equal(f->conf.refresh_s, 100);	   /* file */
	assert_string_equal(f->conf.log_format, "text");   /* default */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test(test_release),
		cmocka_unit_test_setup_teardown(test_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_values, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_set_failure_keeps_value,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_globs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_unknown_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_socket_length, setup,
		    teardown),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_size_long),
		cmocka_unit_test_setup_teardown(test_file_values, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_hash_in_value, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_repeat_and_empty,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_bad_lines, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_partial, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_nul_byte, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_line_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_size_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_file_missing_and_unreadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_short_err, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_busy, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_env_empty_ignored, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_env_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
