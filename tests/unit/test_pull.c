/*
 * test_pull: unit tests for src/pull.c (and the listing of src/origin_hf.c
 * it starts from), driven on a real libuv loop and fetch engine against
 * the fault-injecting test origin (tests/origin/hf_origin.py) on an
 * ephemeral loopback port.
 *
 * The model is four files, three small git files and one LFS file of nine
 * and a half ranges (the tests set the range size to 128 KiB), written by
 * the test, whose digests are computed here from the bytes.  A clean pull
 * must leave each blob (bytes, mode), the hub snapshot and ref, the
 * manifest and the index row, and nothing in tmp/ or claims/; a second
 * pull fetches nothing.  Faults the origin injects a few times are retried
 * and the pull succeeds; faults it injects every time end the pull with
 * the error that names them, and nothing is published.  A pull that failed
 * or was stopped (pull_stop()) keeps the partial file and its saved range
 * state, and the next pull fetches only the ranges that state does not
 * name.  A blob claimed by a live process is waited for, never fetched
 * (its holder publishes it, the pull reuses it); one claimed by a dead
 * process is taken over at once.  Exits 77 (skipped) without python3.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "unit.h"
#include "unit_origin.h"
#include "unit_store.h"
#include "fixture.h"
#include "unit_pull.h"

#include "claim.h"
#include "digest.h"
#include "fetch.h"
#include "index.h"
#include "manifest.h"
#include "origin_hf.h"
#include "pull.h"
#include "ranges.h"
#include "ref.h"
#include "snapshot.h"
#include "store.h"

/* The progress hook (see enum hook). */
static void
progress(void *arg, const struct pull_progress *pp)
{
	struct fx *fx = arg;
	const struct pull_file_progress *f = &pp->files[0];
	char path[PATH];
	struct ingest in;
	int fd;

	if (fx->hook == HOOK_RELEASE && f->state == PULL_WAITING &&
	    !fx->saw_waiting) {
		/* The holder publishes the blob, then lets its claim go. */
		fx->saw_waiting = 1;
		fx->fetched_before_release =
		    (uint64_t)unit_origin_bytes(&fx->origin,
			fx->files[BIG].sha256);
		unit_fmt(path, sizeof(path), "%s/%s", fx->repo,
		    fx->files[BIG].path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(store_ingest(&fx->f.store, fd, 1, &in), 0);
		close(fd);
		assert_string_equal(in.sha256, fx->files[BIG].sha256);
		assert_int_equal(store_blob_publish(&fx->f.store, in.tmp,
				     in.sha256),
		    0);
		claim_release(&fx->f.store, &fx->held);
	}
	if (fx->hook == HOOK_STOP && !fx->stopped &&
	    f->state == PULL_FETCHING && f->bytes > 3 * CHUNK) {
		fx->stopped = 1;
		pull_stop(fx->pull, PULL_STOPPED, "stopped by the test");
	}
}

/*
 * Pulls files[0..n) as org/tiny at the described commit, on the loop,
 * to its end.
 */
static void
pull(struct fx *fx, struct pull_file *files, size_t n, unsigned attempts,
    unsigned per_file, struct pull_result *r)
{
	struct pull_opts o;
	struct manifest m;
	int done = 0;

	memset(&o, 0, sizeof(o));
	o.chunk = CHUNK;
	o.attempts = attempts;
	o.per_file = per_file;
	o.progress = progress;
	o.arg = fx;
	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, "org/tiny",
			     "hf://org/tiny@main"),
	    0);
	assert_int_equal(manifest_add_revision(&m, "main"), 0);
	memcpy(m.commit, fx->desc.commit, sizeof(m.commit));
	assert_int_equal(pull_start(&fx->loop, &fx->f.store, &fx->f.index,
			     &fx->fetch, files, n, &o, &m, r, flag, &done,
			     &fx->pull),
	    0);
	while (!done)
		uv_run(&fx->loop, UV_RUN_ONCE);
	fx->pull = NULL;
	manifest_release(&m);
}

static void
pull_all(struct fx *fx, unsigned attempts, struct pull_result *r)
{
	pull(fx, fx->desc.files, fx->desc.nfiles, attempts, 0, r);
}

/* The bytes of the big file that its saved range state does not name. */
static uint64_t
missing_bytes(struct fx *fx, size_t *ndone)
{
	char state[STORE_PATH_MAX];
	struct ranges r;
	uint64_t missing = BIG_SIZE, len;
	size_t k;

	assert_int_equal(ranges_paths(fx->files[BIG].sha256, NULL, state,
			     sizeof(state)),
	    0);
	assert_int_equal(ranges_load(&fx->f.store, state, &r), 0);
	assert_int_equal(r.size, BIG_SIZE);
	assert_int_equal(r.chunk, CHUNK);
	for (k = 0; k < r.ndone; k++) {
		assert_true(r.done[k] < ranges_count(BIG_SIZE, CHUNK));
		len = (uint64_t)(r.done[k] + 1) * CHUNK > BIG_SIZE
		    ? BIG_SIZE - (uint64_t)r.done[k] * CHUNK
		    : CHUNK;
		missing -= len;
	}
	*ndone = r.ndone;
	ranges_release(&r);
	return missing;
}

/* The partial file of the big file, kept for the next pull, full size. */
static void
assert_partial_kept(struct fx *fx)
{
	char partial[STORE_PATH_MAX];
	struct stat st;

	assert_int_equal(ranges_paths(fx->files[BIG].sha256, partial, NULL,
			     sizeof(partial)),
	    0);
	assert_int_equal(fstatat(fx->f.store.dirfd, partial, &st, 0), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, BIG_SIZE);
}

/*
 * The listing: the commit, every file with its size and the digest the
 * pull checks (SHA-256 for the LFS file, git SHA-1 for the rest), URLs at
 * that commit.
 */
static void
test_describe(void **state)
{
	struct fx *fx = *state;
	struct pull_file *p;
	char at[128];
	size_t i;

	start(fx, NULL);
	describe(fx);
	assert_true(ref_is_hex(fx->desc.commit, DIGEST_SHA1_HEX));
	assert_int_equal(fx->desc.nfiles, NFILES);
	unit_fmt(at, sizeof(at), "/resolve/%s/", fx->desc.commit);
	for (i = 0; i < NFILES; i++) {
		p = described(fx, fx->files[i].path);
		assert_int_equal(p->size, fx->files[i].size);
		assert_non_null(strstr(p->url, at));
		if (i == BIG) {
			assert_string_equal(p->sha256, fx->files[i].sha256);
			assert_string_equal(p->gitsha1, "");
		} else {
			assert_string_equal(p->sha256, "");
			assert_string_equal(p->gitsha1, fx->files[i].gitsha1);
		}
	}
}

/*
 * A clean pull: every blob, the hub snapshot (links followed) and ref, the
 * manifest, the index row; tmp/ and claims/ empty.  Pulled again, every
 * file is reused and nothing is fetched.
 */
static void
test_clean(void **state)
{
	struct fx *fx = *state;
	struct pull_result r;
	char rel[PATH];
	struct manifest m;
	const char *why;
	struct fixture_snaps row;
	uint64_t total = 0;
	size_t i;

	start(fx, NULL);
	describe(fx);
	pull_all(fx, 0, &r);
	if (r.error != PULL_OK)
		fail_msg("pull: %s", r.message);
	for (i = 0; i < NFILES; i++)
		total += fx->files[i].size;
	assert_int_equal(r.bytes_total, total);
	assert_int_equal(r.bytes_origin, total);
	assert_int_equal(r.bytes_reused, 0);
	assert_int_equal(r.claims_lost, 0);
	assert_int_equal(r.unindexed, 0);
	assert_int_equal(unit_origin_bytes(&fx->origin, fx->files[BIG].sha256),
	    BIG_SIZE);
	for (i = 0; i < NFILES; i++) {
		assert_blob(fx, &fx->files[i]);
		unit_fmt(rel, sizeof(rel), "hub/" FOLDER "/snapshots/%s/%s",
		    fx->desc.commit, fx->files[i].path);
		assert_bytes(fx, rel, &fx->files[i]);
	}
	/* The ref names the commit. */
	fixture_assert_ref(&fx->f, "hub/" FOLDER "/refs/main", fx->desc.commit);

	/* The manifest: each file with its SHA-256 and the origin's etag. */
	manifest_init(&m);
	assert_int_equal(snapshot_manifest(&fx->f.store, FOLDER,
			     fx->desc.commit, &m, &why),
	    0);
	assert_string_equal(m.commit, fx->desc.commit);
	assert_string_equal(m.repo, "org/tiny");
	assert_true(manifest_has_revision(&m, "main"));
	assert_int_equal(m.nfiles, NFILES);
	for (i = 0; i < m.nfiles; i++) {
		const struct manifest_file *mf = &m.files[i];
		size_t k;

		for (k = 0; k < NFILES; k++)
			if (strcmp(fx->files[k].path, mf->path) == 0)
				break;
		assert_true(k < NFILES);
		assert_int_equal(mf->size, fx->files[k].size);
		assert_string_equal(mf->sha256, fx->files[k].sha256);
		assert_string_equal(mf->etag,
		    k == BIG ? fx->files[k].sha256 : fx->files[k].gitsha1);
	}
	manifest_release(&m);

	/* The index row. */
	rows(fx, &row);
	assert_int_equal(row.n, 1);
	assert_string_equal(row.v[0].commit, fx->desc.commit);
	assert_string_equal(row.v[0].refs, "main");
	assert_string_equal(row.v[0].source, "hf://org/tiny@main");
	assert_string_equal(row.v[0].trust, "verified");
	assert_int_equal(row.v[0].nfiles, NFILES);
	assert_int_equal(row.v[0].size, total);
	assert_int_equal(fixture_count(fx->f.root, "tmp"), 0);
	assert_int_equal(fixture_count(fx->f.root, "claims"), 0);

	/* Again: every file is in the store. */
	pull_files_free(fx->desc.files, fx->desc.nfiles);
	memset(&fx->desc, 0, sizeof(fx->desc));
	describe(fx);
	unit_origin_reset(&fx->origin);
	pull_all(fx, 0, &r);
	assert_int_equal(r.error, PULL_OK);
	assert_int_equal(r.bytes_origin, 0);
	assert_int_equal(r.bytes_reused, total);
	assert_int_equal(unit_origin_bytes(&fx->origin, fx->files[BIG].sha256),
	    0);
	rows(fx, &row);
	assert_int_equal(row.n, 1);
}

/* Faults the origin injects a few times: retried, then the pull is whole. */
static void
test_retried(void **state)
{
	static const struct {
		const char *spec;
		long long fired;
	} cases[] = {
		{ "retryafter:0*2", 2 },     /* 503, Retry-After: 0 */
		{ "status:503@/cdn/*2", 2 }, /* backoff */
		{ "truncate:1000*2", 2 },    /* the connection cut */
		{ "short:1000*2", 2 },	     /* a body shorter than asked */
		{ "extra:64*2", 2 },	     /* a body longer than asked */
		{ "mutate*1", 1 },	     /* other bytes */
	};
	struct fx *fx = *state;
	struct pull_result r;
	struct fixture_snaps row;
	size_t c, i;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		start(fx, cases[c].spec, NULL);
		describe(fx);
		pull_all(fx, 0, &r);
		if (r.error != PULL_OK)
			fail_msg("%s: %s", cases[c].spec, r.message);
		assert_int_equal(unit_origin_fired(&fx->origin, cases[c].spec),
		    cases[c].fired);
		for (i = 0; i < NFILES; i++)
			assert_blob(fx, &fx->files[i]);
		rows(fx, &row);
		assert_int_equal(row.n, 1);
		assert_int_equal(fixture_count(fx->f.root, "claims"), 0);
		assert_int_equal(fixture_count(fx->f.root, "tmp"), 0);

		next_case(fx);
	}
}

/*
 * Faults the origin injects every time: the pull ends with the error that
 * names them, after the retries it allows (or at once, for an answer that
 * is final), and publishes nothing.
 */
static void
test_exhausted(void **state)
{
	static const struct {
		const char *spec;
		enum pull_error error;
		size_t file;	 /* one it fails, whose blob must be absent */
		long long fired; /* -1: any number */
	} cases[] = {
		{ "retryafter:0", PULL_NETWORK, 0, -1 },
		{ "truncate:1000", PULL_NETWORK, 1, -1 },
		{ "extra:64", PULL_INTEGRITY, BIG, -1 },
		{ "mutate", PULL_INTEGRITY, BIG, -1 },
		{ "status:404@config.json", PULL_NOT_FOUND, 0, 1 },
		{ "status:401@config.json", PULL_UNAUTHORIZED, 0, 1 },
		{ "status:403@config.json", PULL_FORBIDDEN, 0, 1 },
	};
	struct fx *fx = *state;
	struct pull_result r;
	size_t c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		start(fx, cases[c].spec, NULL);
		describe(fx);
		pull_all(fx, 2, &r);
		if (r.error != cases[c].error)
			fail_msg("%s: %s (%s), want %s", cases[c].spec,
			    err_name((enum err_code)r.error), r.message,
			    err_name((enum err_code)cases[c].error));
		assert_true(names_a_file(fx, r.message));
		if (cases[c].fired >= 0)
			assert_int_equal(unit_origin_fired(&fx->origin,
					     cases[c].spec),
			    cases[c].fired);
		if (!no_blob(fx, &fx->files[cases[c].file]))
			fail_msg("%s: %s was published", cases[c].spec,
			    fx->files[cases[c].file].path);
		assert_unpublished(fx);
		next_case(fx);
	}
}

/*
 * After a pull of the big file that ended part way through, with at least
 * one and at most three of its ranges saved: the next pull fetches only
 * the ranges that state does not name, and the blob is whole.
 */
static void
resume(struct fx *fx)
{
	struct pull_result r;
	uint64_t missing;
	size_t ndone;

	assert_true(no_blob(fx, &fx->files[BIG]));
	assert_unpublished(fx);
	assert_partial_kept(fx);
	missing = missing_bytes(fx, &ndone);
	/* The first range's state was saved before the fourth was asked. */
	assert_true(ndone >= 1 && ndone <= 3);

	fx->hook = HOOK_NONE;
	unit_origin_reset(&fx->origin);
	pull(fx, described(fx, "model.safetensors"), 1, 0, 0, &r);
	if (r.error != PULL_OK)
		fail_msg("resume: %s", r.message);
	assert_int_equal(r.bytes_origin, missing);
	assert_int_equal(unit_origin_bytes(&fx->origin, fx->files[BIG].sha256),
	    missing);
	assert_blob(fx, &fx->files[BIG]);
	assert_int_equal(fixture_count(fx->f.root, "tmp"), 0);
	assert_int_equal(fixture_count(fx->f.root, "claims"), 0);
}

/*
 * A pull that failed part way through the big file (every answer after
 * the third range runs long, three times: PULL_INTEGRITY) keeps its
 * partial file and range state; the next pull fetches only the ranges
 * that state does not name, and the blob is whole.
 */
static void
test_resume_after_failure(void **state)
{
	struct fx *fx = *state;
	struct pull_result r;

	start(fx, "slow:1000000000@/cdn/*3", "extra:64@/cdn/*3", NULL);
	describe(fx);
	pull(fx, described(fx, "model.safetensors"), 1, 0, 1, &r);
	assert_int_equal(r.error, PULL_INTEGRITY);
	assert_non_null(strstr(r.message, "model.safetensors"));
	assert_int_equal(unit_origin_fired(&fx->origin, "extra:64@/cdn/*3"), 3);
	assert_int_equal(r.bytes_origin, 3 * CHUNK);
	resume(fx);
}

/*
 * pull_stop() while a range stalls: done() follows with PULL_STOPPED and
 * the message given, nothing is published, the claim is let go, and the
 * partial file and its range state stay; the next pull resumes them.
 */
static void
test_stop(void **state)
{
	struct fx *fx = *state;
	struct pull_result r;

	start(fx, "slow:1000000000@/cdn/*3", "stall:60@/cdn/*1", NULL);
	describe(fx);
	fx->hook = HOOK_STOP;
	pull(fx, described(fx, "model.safetensors"), 1, 0, 1, &r);
	assert_true(fx->stopped);
	assert_int_equal(r.error, PULL_STOPPED);
	assert_string_equal(r.message, "stopped by the test");
	assert_int_equal(unit_origin_fired(&fx->origin, "stall:60@/cdn/*1"), 1);
	resume(fx);
}

/*
 * A blob claimed by a live process (this one, through another claim) is
 * waited for and never fetched: once its holder has published it and let
 * the claim go, the pull reuses it.
 */
static void
test_claim_live_waits(void **state)
{
	struct fx *fx = *state;
	struct pull_result r;

	start(fx, NULL);
	describe(fx);
	assert_int_equal(claim_try(&fx->f.store, &fx->held,
			     fx->files[BIG].sha256, store_now_ms(&fx->f.store),
			     fx->f.store.stale_ms),
	    0);
	fx->hook = HOOK_RELEASE;
	pull(fx, described(fx, "model.safetensors"), 1, 0, 0, &r);
	if (r.error != PULL_OK)
		fail_msg("pull: %s", r.message);
	assert_true(fx->saw_waiting);
	assert_int_equal(fx->fetched_before_release, 0);
	assert_int_equal(r.bytes_origin, 0);
	assert_int_equal(r.bytes_reused, BIG_SIZE);
	assert_int_equal(unit_origin_bytes(&fx->origin, fx->files[BIG].sha256),
	    0);
	assert_blob(fx, &fx->files[BIG]);
	assert_int_equal(fixture_count(fx->f.root, "claims"), 0);
}

/*
 * A claim left by a dead process (our pid, another start time: an earlier
 * incarnation) is taken over at once, and the blob fetched.
 */
static void
test_claim_dead_taken_over(void **state)
{
	struct fx *fx = *state;
	const char *o = fx->f.store.owner, *s = strrchr(o, '.');
	char line[256], rel[STORE_PATH_MAX];
	struct pull_result r;
	int fd;

	assert_non_null(s);
	assert_true(strtoull(s + 1, NULL, 10) > 0);
	unit_fmt(line, sizeof(line), "%.*s.%llu %lld\n", (int)(s - o), o,
	    strtoull(s + 1, NULL, 10) + 1, (long long)claim_now_ms());
	unit_fmt(rel, sizeof(rel), "claims/%s", fx->files[BIG].sha256);
	fd = openat(fx->f.store.dirfd, rel, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);

	start(fx, NULL);
	describe(fx);
	pull(fx, described(fx, "model.safetensors"), 1, 0, 0, &r);
	if (r.error != PULL_OK)
		fail_msg("pull: %s", r.message);
	assert_int_equal(r.bytes_origin, BIG_SIZE);
	assert_blob(fx, &fx->files[BIG]);
	assert_false(fixture_exists(&fx->f, rel));
	assert_int_equal(fixture_count(fx->f.root, "claims"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_describe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exhausted, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resume_after_failure,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_live_waits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_claim_dead_taken_over,
		    setup, teardown),
	};
	const char *why = unit_origin_missing();

	if (why != NULL) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
