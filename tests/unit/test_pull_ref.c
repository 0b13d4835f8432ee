/*
 * test_pull_ref: unit tests for src/pull_ref.c and the Hub origin
 * (src/origin_hf.c) it describes references with, driven on a real libuv
 * loop and fetch engine against the test origin (tests/origin/hf_origin.py)
 * on an ephemeral loopback port, with the model of unit_pull.h.
 *
 * A reference pulled by revision and by commit fills the result (repo,
 * revision as asked, commit, trust, files) and publishes the snapshot
 * under the revision name only; the include and exclude globs choose the
 * files; a tree listed one file a page is whole.  What the Hub refuses (a
 * revision or repository it does not know, a token missing or wrong, a
 * gated repository, an API that keeps failing) ends the operation with the
 * error that names it and publishes nothing; an API failure that passes is
 * retried.  pull_ref_stop() ends it while the origin is asked and while
 * the files are pulled: done() once, PULL_STOPPED, nothing published.
 * Exits 77 (skipped) without python3.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "unit_origin.h"
#include "unit_store.h"
#include "fixture.h"
#include "unit_pull.h"

#include "pull_ref.h"
#include "snapshot.h"

static void
count(void *arg)
{
	(*(int *)arg)++;
}

/* pull_ref_stop() once two of the big file's ranges are in. */
static void
stop_when_fetching(void *arg, const struct pull_progress *pp)
{
	struct fx *fx = arg;
	size_t i;

	for (i = 0; i < pp->nfiles; i++)
		if (!fx->stopped && pp->files[i].state == PULL_FETCHING &&
		    pp->files[i].file->size == BIG_SIZE &&
		    pp->files[i].bytes > 2 * CHUNK) {
			fx->stopped = 1;
			pull_ref_stop(fx->op);
		}
}

/*
 * Pulls the reference text on the loop to its end, with the Hub token
 * token (NULL: none) and the NULL-ended include globs; done() must come
 * once.  o->pull's range size is CHUNK.
 */
static void
pull_ref(struct fx *fx, const char *text, const char *token,
    const char *const *include, int stop, struct pull_ref_result *r)
{
	struct pull_ref_opts o;
	struct ref ref;
	const char *why;
	int done = 0;

	ref_init(&ref);
	assert_int_equal(ref_parse(&ref, text, &why), 0);
	memset(&o, 0, sizeof(o));
	o.hf.endpoint = fx->origin.url;
	o.hf.token = token;
	for (; include != NULL && *include != NULL; include++)
		o.hf.include[o.hf.ninclude++] = *include;
	o.pull.chunk = CHUNK;
	o.pull.per_file = 1;
	o.pull.attempts = 2;
	o.pull.progress = stop_when_fetching;
	o.pull.arg = fx;
	fx->stopped = !stop; /* the hook stops it only when asked */
	assert_int_equal(pull_ref_start(&fx->loop, &fx->f.store, &fx->f.index,
			     &fx->fetch, &ref, 1, &o, r, count, &done, &fx->op),
	    0);
	while (done == 0)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_int_equal(done, 1);
	fx->op = NULL;
	ref_release(&ref);
}

/*
 * By revision, then by commit: the result says what was asked and what it
 * resolved to; one snapshot, whose only revision name is main.
 */
static void
test_hf(void **state)
{
	struct fx *fx = *state;
	struct pull_ref_result r;
	char text[128];
	struct fixture_snaps row;
	uint64_t total = 0;
	size_t i;

	start(fx, NULL);
	describe(fx);
	pull_ref(fx, "hf://org/tiny", NULL, NULL, 0, &r);
	if (r.pull.error != PULL_OK)
		fail_msg("pull: %s", r.pull.message);
	assert_string_equal(r.repo, "org/tiny");
	assert_string_equal(r.revision, "main");
	assert_string_equal(r.commit, fx->desc.commit);
	assert_string_equal(r.trust, "verified");
	assert_int_equal(r.nfiles, NFILES);
	for (i = 0; i < NFILES; i++) {
		assert_blob(fx, &fx->files[i]);
		total += fx->files[i].size;
	}
	assert_int_equal(r.pull.bytes_origin, total);
	rows(fx, &row);
	assert_int_equal(row.n, 1);
	assert_string_equal(row.v[0].commit, fx->desc.commit);
	assert_string_equal(row.v[0].refs, "main");
	assert_string_equal(row.v[0].source, "hf://org/tiny@main");

	unit_fmt(text, sizeof(text), "hf://org/tiny@%s", fx->desc.commit);
	pull_ref(fx, text, NULL, NULL, 0, &r);
	if (r.pull.error != PULL_OK)
		fail_msg("pull by commit: %s", r.pull.message);
	assert_string_equal(r.revision, fx->desc.commit);
	assert_string_equal(r.commit, fx->desc.commit);
	assert_int_equal(r.pull.bytes_origin, 0);
	assert_int_equal(r.pull.bytes_reused, total);
	rows(fx, &row);
	assert_int_equal(row.n, 1);
	assert_string_equal(row.v[0].refs, "main");
	assert_int_equal(fixture_count(fx->f.root, "tmp"), 0);
	assert_int_equal(fixture_count(fx->f.root, "claims"), 0);
}

/* The include globs choose the files; the tree one file a page is whole. */
static void
test_globs_and_pages(void **state)
{
	static const char *const json[] = { "*.json", NULL };
	struct fx *fx = *state;
	struct pull_ref_result r;
	struct fixture_snaps row;

	start(fx, "--page-size", "1", NULL);
	pull_ref(fx, "hf://org/tiny", NULL, json, 0, &r);
	if (r.pull.error != PULL_OK)
		fail_msg("pull: %s", r.pull.message);
	assert_int_equal(r.nfiles, 2);
	assert_blob(fx, &fx->files[0]);
	assert_blob(fx, &fx->files[1]);
	assert_true(no_blob(fx, &fx->files[2]));
	assert_true(no_blob(fx, &fx->files[BIG]));
	rows(fx, &row);
	assert_int_equal(row.n, 1);
	assert_int_equal(row.v[0].nfiles, 2);

	/* Every page followed: all four files. */
	next_case(fx);
	start(fx, "--page-size", "1", NULL);
	pull_ref(fx, "hf://org/tiny", NULL, NULL, 0, &r);
	if (r.pull.error != PULL_OK)
		fail_msg("pull: %s", r.pull.message);
	assert_int_equal(r.nfiles, NFILES);
	assert_blob(fx, &fx->files[BIG]);
}

/*
 * What the Hub refuses ends the operation with the error that names it;
 * nothing is published.  An API answer that fails a few times is retried.
 */
static void
test_refused(void **state)
{
	static const struct {
		const char *ref, *token, *opt, *arg;
		enum pull_error error;
		const char *fault;
		long long fired; /* -1: not counted */
	} cases[] = {
		{ "hf://org/tiny@nope", NULL, NULL, NULL, PULL_NOT_FOUND, NULL,
		    -1 },
		{ "hf://org/none", NULL, NULL, NULL, PULL_UNAUTHORIZED, NULL,
		    -1 },
		{ "hf://org/tiny", NULL, "--token", "s3cret", PULL_UNAUTHORIZED,
		    NULL, -1 },
		{ "hf://org/tiny", "wrong", "--token", "s3cret",
		    PULL_UNAUTHORIZED, NULL, -1 },
		{ "hf://org/tiny", "s3cret", "--token", "s3cret", PULL_OK, NULL,
		    -1 },
		{ "hf://org/tiny", NULL, "--gated", "auto", PULL_UNAUTHORIZED,
		    NULL, -1 },
		{ "hf://org/tiny", "s3cret", "--gated", "manual",
		    PULL_FORBIDDEN, NULL, -1 },
		{ "hf://org/tiny", NULL, NULL, NULL, PULL_OK,
		    "retryafter:0@/revision/*2", 2 },
		{ "hf://org/tiny", NULL, NULL, NULL, PULL_NETWORK,
		    "retryafter:0@/revision/", 5 },
		{ "hf://org/tiny", NULL, NULL, NULL, PULL_NOT_FOUND,
		    "status:404@/tree/", 1 },
	};
	struct fx *fx = *state;
	struct pull_ref_result r;
	struct fixture_snaps row;
	size_t c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		if (cases[c].opt != NULL)
			start(fx, cases[c].opt, cases[c].arg, cases[c].fault,
			    NULL);
		else
			start(fx, cases[c].fault, NULL);
		pull_ref(fx, cases[c].ref, cases[c].token, NULL, 0, &r);
		if (r.pull.error != cases[c].error)
			fail_msg("%s (token %s, %s %s, fault %s): %s (%s),"
				 " want %s",
			    cases[c].ref, cases[c].token, cases[c].opt,
			    cases[c].arg, cases[c].fault,
			    err_name((enum err_code)r.pull.error),
			    r.pull.message,
			    err_name((enum err_code)cases[c].error));
		if (cases[c].fault != NULL && cases[c].fired >= 0)
			assert_int_equal(unit_origin_fired(&fx->origin,
					     cases[c].fault),
			    cases[c].fired);
		rows(fx, &row);
		if (cases[c].error == PULL_OK) {
			assert_int_equal(row.n, 1);
			assert_blob(fx, &fx->files[BIG]);
		} else {
			assert_true(r.pull.message[0] != '\0');
			assert_unpublished(fx);
			assert_int_equal(fixture_count(fx->f.root,
					     "blobs/sha256"),
			    0);
		}
		next_case(fx);
	}
}

/*
 * pull_ref_stop() while the origin is asked, and while a range of the
 * big file stalls: done() once, PULL_STOPPED, nothing published, and the
 * big file's partial kept for the next pull.
 */
static void
test_stop(void **state)
{
	struct fx *fx = *state;
	struct pull_ref_opts o;
	struct pull_ref_result r;
	struct ref ref;
	const char *why;
	int done = 0;

	start(fx, "slow:1000000000@/cdn/*2", "stall:60@/cdn/*1", NULL);
	ref_init(&ref);
	assert_int_equal(ref_parse(&ref, "hf://org/tiny", &why), 0);
	memset(&o, 0, sizeof(o));
	o.hf.endpoint = fx->origin.url;
	assert_int_equal(pull_ref_start(&fx->loop, &fx->f.store, &fx->f.index,
			     &fx->fetch, &ref, 1, &o, &r, count, &done,
			     &fx->op),
	    0);
	pull_ref_stop(fx->op); /* before the origin has answered */
	while (done == 0)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_int_equal(done, 1);
	assert_int_equal(r.pull.error, PULL_STOPPED);
	assert_unpublished(fx);
	assert_int_equal(unit_origin_fired(&fx->origin, "stall:60@/cdn/*1"), 0);
	ref_release(&ref);

	pull_ref(fx, "hf://org/tiny", NULL, NULL, 1, &r);
	assert_true(fx->stopped);
	assert_int_equal(r.pull.error, PULL_STOPPED);
	assert_int_equal(unit_origin_fired(&fx->origin, "stall:60@/cdn/*1"), 1);
	assert_true(no_blob(fx, &fx->files[BIG]));
	assert_unpublished(fx);
	assert_int_equal(fixture_count(fx->f.root, "claims"), 0);

	/* Resumed from the ranges saved: whole. */
	unit_origin_reset(&fx->origin);
	pull_ref(fx, "hf://org/tiny", NULL, NULL, 0, &r);
	if (r.pull.error != PULL_OK)
		fail_msg("pull: %s", r.pull.message);
	assert_true(unit_origin_bytes(&fx->origin, fx->files[BIG].sha256) <=
	    BIG_SIZE - CHUNK);
	assert_blob(fx, &fx->files[BIG]);
	assert_int_equal(fixture_count(fx->f.root, "tmp"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_globs_and_pages, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
	};
	const char *why = unit_origin_missing();

	if (why != NULL) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
