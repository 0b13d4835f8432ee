/*
 * unit_pull.h: the fixture test_pull and test_pull_ref share: a store
 * with its index, a libuv loop with the fetch engine, and a model of four
 * files (three small git files, one LFS file of nine and a half ranges of
 * CHUNK bytes) written for the test origin (unit_origin.h), whose digests
 * are computed here from the bytes; and the checks of what a pull leaves.
 * Include after unit.h, unit_origin.h, unit_store.h and fixture.h.
 */
#ifndef MC_UNIT_PULL_H
#define MC_UNIT_PULL_H

#include <dirent.h>
#include <stdarg.h>
#include <sys/stat.h>

#include <uv.h>

#include "claim.h"
#include "digest.h"
#include "fetch.h"
#include "index.h"
#include "manifest.h"
#include "origin_hf.h"
#include "pull.h"
#include "pull_ref.h"
#include "ref.h"
#include "store.h"

#define PATH UNIT_PATH
#define CHUNK (128 * 1024)
#define NFILES 4
#define BIG 3 /* model.safetensors, the LFS file */
#define BIG_SIZE (9 * CHUNK + CHUNK / 2)
#define FOLDER "models--org--tiny"
#define WATCHDOG_S 120

/* One file of the model, as written for the origin. */
struct mfile {
	const char *path;
	unsigned char *bytes;
	size_t size;
	char sha256[DIGEST_HEX_MAX], gitsha1[DIGEST_HEX_MAX];
};

enum hook { HOOK_NONE, HOOK_RELEASE, HOOK_STOP };

struct fx {
	struct fixture f; /* the store and its index (fixture.h) */
	char repo[512];	  /* f.dir/repo: what the origin serves */
	uv_loop_t loop;
	struct fetch fetch;
	struct unit_origin origin;
	struct mfile files[NFILES];
	struct ref ref;
	struct hf_origin hf;
	struct origin_desc desc;
	struct pull *pull;
	struct pull_ref *op;
	/* what test_pull's progress hook does, and what it saw */
	enum hook hook;
	struct claim held; /* HOOK_RELEASE: published, then let go */
	int saw_waiting, stopped;
	uint64_t fetched_before_release;
};

static inline void
put_file(struct fx *fx, size_t i, const char *path, unsigned char *bytes,
    size_t size)
{
	struct mfile *f = &fx->files[i];

	f->path = path;
	f->bytes = bytes;
	f->size = size;
	unit_write(fx->repo, path, bytes, size);
	assert_int_equal(digest_buf(DIGEST_SHA256, bytes, size, f->sha256), 0);
	assert_int_equal(digest_buf(DIGEST_GITSHA1, bytes, size, f->gitsha1),
	    0);
}

static inline unsigned char *
text(const char *s)
{
	unsigned char *p = (unsigned char *)strdup(s);

	assert_non_null(p);
	return p;
}

static inline int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct fetch_opts fo;
	unsigned char *tok;

	assert_non_null(fx);
	alarm(WATCHDOG_S); /* a pull that never ends fails the test */
	fixture_open(&fx->f, 1);
	unit_fmt(fx->repo, sizeof(fx->repo), "%s/repo", fx->f.dir);
	put_file(fx, 0, "config.json", text("{\"model_type\": \"tiny\"}\n"),
	    24);
	tok = unit_pattern(3000, 7);
	memset(tok, 'a', 16);
	put_file(fx, 1, "tokenizer.json", tok, 3000);
	put_file(fx, 2, "sub/notes.txt", text("notes, in a folder\n"), 19);
	put_file(fx, BIG, "model.safetensors", unit_pattern(BIG_SIZE, 42),
	    BIG_SIZE);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	memset(&fo, 0, sizeof(fo));
	assert_int_equal(fetch_init(&fx->fetch, &fx->loop, &fo), 0);
	fx->origin.pid = -1;
	ref_init(&fx->ref);
	*state = fx;
	return 0;
}

static inline int
teardown(void **state)
{
	struct fx *fx = *state;
	size_t i;

	unit_origin_stop(&fx->origin);
	pull_files_free(fx->desc.files, fx->desc.nfiles);
	ref_release(&fx->ref);
	claim_release(&fx->f.store, &fx->held);
	fetch_close(&fx->fetch);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	fixture_close(&fx->f);
	for (i = 0; i < NFILES; i++)
		free(fx->files[i].bytes);
	free(fx);
	alarm(0);
	return 0;
}

/*
 * Starts the origin serving org/tiny with the NULL-ended arguments: fault
 * specs, and options ("--page-size", "1") as pairs.
 */
static inline void
start(struct fx *fx, ...)
{
	const char *args[UNIT_ORIGIN_ARGS + 1];
	char repo[600];
	const char *spec;
	size_t n = 0;
	va_list ap;

	unit_fmt(repo, sizeof(repo), "org/tiny=%s", fx->repo);
	args[n++] = "--repo";
	args[n++] = repo;
	va_start(ap, fx);
	while ((spec = va_arg(ap, const char *)) != NULL) {
		assert_true(n + 2 < UNIT_ORIGIN_ARGS);
		if (strncmp(spec, "--", 2) == 0) {
			args[n++] = spec;
			args[n++] = va_arg(ap, const char *);
			continue;
		}
		args[n++] = "--fault";
		args[n++] = spec;
	}
	va_end(ap);
	args[n] = NULL;
	unit_origin_start(&fx->origin, fx->f.dir, args);
}

static inline void
flag(void *arg)
{
	*(int *)arg = 1;
}

/* Lists the model at the origin: hf_describe_start(), run to its end. */
static inline void
describe(struct fx *fx)
{
	const char *why;
	int done = 0;

	assert_int_equal(ref_parse(&fx->ref, "hf://org/tiny", &why), 0);
	fx->hf.endpoint = fx->origin.url;
	assert_int_equal(hf_describe_start(&fx->hf, &fx->fetch, &fx->ref, 1,
			     &fx->desc, flag, &done),
	    0);
	while (!done)
		uv_run(&fx->loop, UV_RUN_ONCE);
	if (fx->desc.error != PULL_OK)
		fail_msg("describe: %s", fx->desc.message);
}

/* The described file of path. */
static inline struct pull_file *
described(struct fx *fx, const char *path)
{
	size_t i;

	for (i = 0; i < fx->desc.nfiles; i++)
		if (strcmp(fx->desc.files[i].path, path) == 0)
			return &fx->desc.files[i];
	fail_msg("'%s' is not in the listing", path);
	return NULL;
}

/* Fails unless path (under the store) holds exactly the file's bytes. */
static inline void
assert_bytes(struct fx *fx, const char *rel, const struct mfile *f)
{
	char path[PATH];
	unsigned char *buf = malloc(f->size + 1);
	FILE *in;

	assert_non_null(buf);
	unit_fmt(path, sizeof(path), "%s/%s", fx->f.root, rel);
	in = fopen(path, "rb");
	if (in == NULL)
		fail_msg("%s: %s", rel, strerror(errno));
	assert_int_equal(fread(buf, 1, f->size + 1, in), f->size);
	fclose(in);
	assert_memory_equal(buf, f->bytes, f->size);
	free(buf);
}

/* The blob of f: its bytes, its size, read-only. */
static inline void
assert_blob(struct fx *fx, const struct mfile *f)
{
	char rel[STORE_PATH_MAX];
	uint64_t size;
	struct stat st;

	assert_int_equal(store_blob_stat(&fx->f.store, f->sha256, &size), 0);
	assert_int_equal(size, f->size);
	assert_int_equal(store_blob_path(f->sha256, rel, sizeof(rel)), 0);
	assert_int_equal(fstatat(fx->f.store.dirfd, rel, &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0444);
	assert_bytes(fx, rel, f);
}

static inline int
no_blob(struct fx *fx, const struct mfile *f)
{
	return store_blob_stat(&fx->f.store, f->sha256, NULL) == -ENOENT;
}

/* The index rows of org/tiny. */
static inline void
rows(struct fx *fx, struct fixture_snaps *s)
{
	fixture_snaps(&fx->f, REPO_MODEL, "org/tiny", NULL, s);
}

/*
 * A failed pull published nothing: no index row, manifest or hub
 * snapshot, no claim left, and no private partial file (an LFS file's
 * partial and range state stay, to be resumed).
 */
static inline void
assert_unpublished(struct fx *fx)
{
	char rel[PATH], path[PATH];
	struct dirent *e;
	struct fixture_snaps r;
	DIR *d;

	rows(fx, &r);
	assert_int_equal(r.n, 0);
	assert_false(fixture_exists(&fx->f, "manifests/" FOLDER));
	unit_fmt(rel, sizeof(rel), "hub/" FOLDER "/snapshots/%s",
	    fx->desc.commit);
	assert_false(fixture_exists(&fx->f, rel));
	assert_false(fixture_exists(&fx->f, "hub/" FOLDER "/refs/main"));
	assert_int_equal(fixture_count(fx->f.root, "claims"), 0);
	unit_fmt(path, sizeof(path), "%s/tmp", fx->f.root);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' &&
		    strncmp(e->d_name, "partial.", 8) != 0)
			fail_msg("tmp/%s left behind", e->d_name);
	closedir(d);
}

/* The next case of a table: a new origin, an empty store. */
static inline void
next_case(struct fx *fx)
{
	unit_origin_stop(&fx->origin);
	pull_files_free(fx->desc.files, fx->desc.nfiles);
	memset(&fx->desc, 0, sizeof(fx->desc));
	index_close(&fx->f.index);
	store_release(&fx->f.store);
	unit_rmdir(strdup(fx->f.root));
	assert_int_equal(store_open(&fx->f.store, fx->f.root, 1), 0);
	assert_int_equal(index_open(&fx->f.index, &fx->f.store, NULL), 0);
}

/* Whether message names one of the model's files. */
static inline int
names_a_file(struct fx *fx, const char *message)
{
	size_t i;

	for (i = 0; i < NFILES; i++)
		if (strstr(message, fx->files[i].path) != NULL)
			return 1;
	return 0;
}

#endif
