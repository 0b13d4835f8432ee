/*
 * test_fetch_origin: unit tests for the transfers of src/fetch.c, one
 * request each on a real libuv loop against the fault-injecting test
 * origin (tests/origin/hf_origin.py) on an ephemeral loopback port, body
 * to a file as a pull writes it (fetch_xfer_to_fd(), the file's size
 * stated with fetch_xfer_expect()).
 *
 * A whole file and a range arrive byte for byte where they belong.  Each
 * lie of the origin about a body is caught with its result, and what was
 * written is never more than was asked for, never past the file's size,
 * and never what a refused answer sent: a body or range longer than asked
 * (FETCH_TOO_LONG), a length or range that announces less
 * (FETCH_TOO_SHORT), a range ignored (FETCH_RANGE_IGNORED); the bytes of
 * a body cut short are kept (FETCH_NETWORK).  Error answers keep their
 * body off the file and say whether to retry and how long to wait (the
 * origin's badrange needs a file over 4 KiB: t0105 has it).  Exits 77
 * (skipped) without python3.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "unit_origin.h"
#include "unit_store.h"
#include "fixture.h"
#include "unit_pull.h"

#include "fetch.h"

#define FILE_IX 1 /* tokenizer.json, 3000 bytes, served by /resolve/ */
#define R_START 1000
#define R_END 1999
#define NOTHING -1
#define PREFIX -2 /* the right bytes from the start, not past the size */

/* What one transfer must end with. */
struct want {
	const char *spec; /* the fault, or NULL */
	int ranged;	  /* bytes R_START..R_END, else the whole file */
	enum fetch_result result;
	long status;
	int written;	 /* NOTHING, PREFIX, or the right bytes, this many */
	int transient;	 /* fetch_transient(): every fault of a body is */
	int64_t wait_ms; /* fetch_wait_ms() */
};

static void
xfer_done(struct fetch_xfer *x)
{
	*(int *)x->arg = 1;
}

/*
 * Fails unless the file holds nothing (n is NOTHING), the right bytes from
 * 0 up to at most the file's size (PREFIX), or the file's right bytes from
 * `from` for n bytes and nothing past them.
 */
static void
assert_written(struct fx *fx, const char *path, uint64_t from, int n)
{
	const struct mfile *f = &fx->files[FILE_IX];
	unsigned char *buf = malloc(f->size + 1);
	struct stat st;
	int fd;

	assert_non_null(buf);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	if (n == NOTHING) {
		assert_int_equal(st.st_size, 0);
	} else if (n == PREFIX) {
		assert_true((uint64_t)st.st_size <= f->size);
		assert_int_equal(pread(fd, buf, f->size, 0), st.st_size);
		assert_memory_equal(buf, f->bytes, (size_t)st.st_size);
	} else {
		assert_int_equal(st.st_size, from + (uint64_t)n);
		assert_int_equal(pread(fd, buf, (size_t)n, (off_t)from), n);
		assert_memory_equal(buf, f->bytes + from, (size_t)n);
	}
	close(fd);
	free(buf);
}

static void
test_transfers(void **state)
{
	static const struct want cases[] = {
		{ NULL, 0, FETCH_OK, 200, 3000, 0, -1 },
		{ NULL, 1, FETCH_OK, 206, R_END - R_START + 1, 0, -1 },
		/* Content-Length over the size: nothing written. */
		{ "extra:64", 0, FETCH_TOO_LONG, 200, NOTHING, 1, -1 },
		/* No length, more bytes than the size: never past it. */
		{ "extraclose:64", 0, FETCH_TOO_LONG, 200, PREFIX, 1, -1 },
		/* Content-Length or a range under what was asked: nothing. */
		{ "short:1000", 0, FETCH_TOO_SHORT, 200, NOTHING, 1, -1 },
		{ "short:100", 1, FETCH_TOO_SHORT, 206, NOTHING, 1, -1 },
		/* Cut after 1000 bytes: those are kept (a pull resumes). */
		{ "truncate:1000", 0, FETCH_NETWORK, 200, 1000, 1, -1 },
		{ "norange", 1, FETCH_RANGE_IGNORED, 200, NOTHING, 1, -1 },
		{ "longrange:100", 1, FETCH_TOO_LONG, 206, NOTHING, 1, -1 },
		{ "status:503", 0, FETCH_OK, 503, NOTHING, 1, -1 },
		{ "retryafter:7", 0, FETCH_OK, 503, NOTHING, 1, 7000 },
		/* RateLimit t=9 with none left: the reset and its second. */
		{ "ratelimit:9", 0, FETCH_OK, 429, NOTHING, 1, 10000 },
		{ "status:404", 0, FETCH_OK, 404, NOTHING, 0, -1 },
	};
	struct fx *fx = *state;
	const struct mfile *f = &fx->files[FILE_IX];
	const struct pull_file *pf;
	struct fetch_xfer *x;
	char path[UNIT_PATH];
	size_t c;
	int fd, done;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct want *w = &cases[c];

		start(fx, w->spec, NULL);
		describe(fx);
		pf = described(fx, f->path);
		unit_fmt(path, sizeof(path), "%s/body.%zu", fx->f.dir, c);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		x = fetch_xfer_new(&fx->fetch, pf->url);
		assert_non_null(x);
		if (w->ranged)
			fetch_xfer_to_fd(x, fd, R_START, R_START, R_END);
		else
			fetch_xfer_to_fd(x, fd, 0, UINT64_MAX, UINT64_MAX);
		fetch_xfer_expect(x, f->size);
		done = 0;
		assert_int_equal(fetch_xfer_start(x, xfer_done, &done), 0);
		while (!done)
			uv_run(&fx->loop, UV_RUN_ONCE);
		close(fd);
		if (x->result != w->result || x->status != w->status)
			fail_msg("%s: result %d status %ld (%s), want %d %ld",
			    w->spec, x->result, x->status, x->curl_error,
			    w->result, w->status);
		assert_written(fx, path, w->ranged ? R_START : 0, w->written);
		if (w->written >= 0)
			assert_int_equal(x->got, w->written);
		if (fetch_transient(x) != w->transient ||
		    fetch_wait_ms(x) != w->wait_ms)
			fail_msg("%s: transient %d wait %lld", w->spec,
			    fetch_transient(x), (long long)fetch_wait_ms(x));
		if (w->status == 404)
			assert_string_equal(x->error_code, "EntryNotFound");
		if (w->spec != NULL)
			assert_int_equal(unit_origin_fired(&fx->origin,
					     w->spec),
			    1);
		fetch_xfer_free(x);
		next_case(fx);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_transfers, setup,
		    teardown),
	};
	const char *why = unit_origin_missing();

	if (why != NULL) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
