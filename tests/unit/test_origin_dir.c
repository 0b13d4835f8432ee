/*
 * test_origin_dir: unit tests for src/origin_dir.c, a local directory as an
 * origin.
 *
 * Listing is checked on real trees: every file with its repo-relative path
 * and size, largest first, the top-level .git left out, and each kind of
 * entry that cannot be imported (a fifo, symlinks that leave the tree,
 * dangle or lead to a directory, names a repo cannot hold) refused with a
 * message that names it.  Importing is checked against digests computed
 * here from the bytes written: SHA-256 for every file, the etag as the Hub
 * would give it (SHA-256 for LFS files, git blob SHA-1 for the rest), one
 * blob for two files with the same bytes, the same commit for the same
 * tree, progress that never passes the total and ends on it.  A failed
 * import must name the file and leave no tmp file, claim or manifest.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "unit_store.h"
#include "fixture.h"

#include "digest.h"
#include "index.h"
#include "manifest.h"
#include "origin_dir.h"
#include "store.h"

#define PATH UNIT_PATH
#define MIB (1024 * 1024)
#define MAXCALLS 4096

/* What the progress callback saw. */
struct calls {
	uint64_t done[MAXCALLS], total[MAXCALLS];
	size_t files_done[MAXCALLS], files[MAXCALLS];
	size_t n;
};

/* Writes size bytes of c to src/name. */
static void
put(struct fixture *fx, const char *name, int c, size_t size)
{
	char *buf = malloc(size + 1);

	assert_non_null(buf);
	memset(buf, c, size);
	unit_write(fx->src, name, buf, size);
	free(buf);
}

static void
src_path(struct fixture *fx, const char *name, char *buf, size_t len)
{
	unit_fmt(buf, len, "%s/%s", fx->src, name);
}

static void
link_to(struct fixture *fx, const char *target, const char *name)
{
	char path[PATH];

	src_path(fx, name, path, sizeof(path));
	assert_int_equal(symlink(target, path), 0);
}

/* The listing's file at path, or a failure. */
static const struct dir_file *
find(const struct dir_listing *l, const char *path)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->files[i].path, path) == 0)
			return &l->files[i];
	fail_msg("'%s' is not listed", path);
	return NULL;
}

static void
test_list_nested(void **state)
{
	struct fixture *fx = *state;
	struct dir_listing l;
	char err[256] = "", real[PATH_MAX], want[PATH];
	static const struct {
		const char *path;
		uint64_t size;
	} files[] = {
		/* In the order the listing must give: largest first. */
		{ "a/mid.bin", 300 },
		{ "a/b/deep.json", 50 },
		{ "x0", 20 },
		{ "x1", 20 }, /* ties go by path */
		{ "top.txt", 5 },
		{ "a/b/c/d/tiny", 1 },
		{ ".gitattributes", 0 },
	};
	uint64_t total = 0;
	size_t i;

	put(fx, "x1", '1', 20);
	put(fx, "top.txt", 't', 5);
	put(fx, "a/b/c/d/tiny", 'y', 1);
	put(fx, "a/mid.bin", 'm', 300);
	put(fx, "x0", '0', 20);
	put(fx, "a/b/deep.json", 'd', 50);
	put(fx, ".gitattributes", 0, 0);
	/* A checkout's git metadata is left out. */
	put(fx, ".git/HEAD", 'h', 4000);
	put(fx, ".git/objects/ab/cdef", 'o', 9000);

	assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), 0);
	assert_non_null(realpath(fx->src, real));
	assert_string_equal(l.root, real);
	assert_int_equal(l.n, sizeof(files) / sizeof(files[0]));
	for (i = 0; i < l.n; i++) {
		assert_string_equal(l.files[i].path, files[i].path);
		assert_int_equal(l.files[i].size, files[i].size);
		unit_fmt(want, sizeof(want), "%s/%s", real, files[i].path);
		assert_string_equal(l.files[i].src, want);
		total += files[i].size;
	}
	assert_int_equal(l.total, total);
	dir_listing_release(&l);
	assert_null(l.files);
	assert_int_equal(l.n, 0);

	/* The same tree through a path with a trailing slash and a "..". */
	unit_fmt(want, sizeof(want), "%s/a/../", fx->src);
	assert_int_equal(dir_list(want, &l, err, sizeof(err)), 0);
	assert_string_equal(l.root, real);
	assert_int_equal(l.n, sizeof(files) / sizeof(files[0]));
	dir_listing_release(&l);
}

/* Lists a tree holding one good file and bad; fails unless refused. */
static void
assert_refused(struct fixture *fx, const char *bad)
{
	struct dir_listing l;
	char err[512] = "";

	memset(&l, 0xa5, sizeof(l));
	assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), -EINVAL);
	if (strstr(err, bad) == NULL)
		fail_msg("the message '%s' does not name '%s'", err, bad);
	assert_int_equal(l.n, 0);
	assert_null(l.files);
	assert_null(l.root);
}

/* Empties the source tree, leaving a good file in it. */
static void
reset_src(struct fixture *fx)
{
	char cmd[PATH + 32];

	unit_fmt(cmd, sizeof(cmd), "rm -rf '%s'", fx->src);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(mkdir(fx->src, 0755), 0);
	put(fx, "good.json", 'g', 10);
	put(fx, "sub/also-good", 'g', 10);
}

static void
test_list_rejects(void **state)
{
	struct fixture *fx = *state;
	char path[PATH], outside[PATH];

	unit_fmt(outside, sizeof(outside), "%s/outside.bin", fx->dir);
	unit_write(fx->dir, "outside.bin", "secret", 6);

	reset_src(fx);
	src_path(fx, "sub/pipe", path, sizeof(path));
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_refused(fx, "sub/pipe");

	reset_src(fx);
	link_to(fx, outside, "out.bin");
	assert_refused(fx, "out.bin");

	reset_src(fx);
	link_to(fx, "../../outside.bin", "sub/rel-out.bin");
	assert_refused(fx, "sub/rel-out.bin");

	reset_src(fx);
	link_to(fx, "nowhere.bin", "dangling.bin");
	assert_refused(fx, "dangling.bin");

	reset_src(fx);
	link_to(fx, "sub", "dirlink");
	assert_refused(fx, "dirlink");

	reset_src(fx);
	put(fx, "sub/back\\slash.txt", 'b', 3);
	assert_refused(fx, "back\\slash.txt");

	reset_src(fx);
	put(fx, "ctl\001char", 'c', 3);
	assert_refused(fx, "ctl\001char");

	reset_src(fx);
	put(fx, "sub/tab\there", 'c', 3);
	assert_refused(fx, "sub/tab\there");

	/* And the good tree alone is fine. */
	{
		struct dir_listing l;
		char err[256];

		reset_src(fx);
		assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), 0);
		assert_int_equal(l.n, 2);
		dir_listing_release(&l);
	}
}

static void
test_list_symlink_inside(void **state)
{
	struct fixture *fx = *state;
	const struct dir_file *f;
	struct dir_listing l;
	char err[256] = "", real[PATH_MAX], want[PATH];

	put(fx, "real.bin", 'r', 123);
	put(fx, "sub/real.json", 'j', 7);
	link_to(fx, "real.bin", "alias.bin");
	link_to(fx, "../real.bin", "sub/up.bin");
	link_to(fx, "real.json", "sub/same.json");

	assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), 0);
	assert_non_null(realpath(fx->src, real));
	assert_int_equal(l.n, 5);
	f = find(&l, "alias.bin");
	assert_int_equal(f->size, 123);
	unit_fmt(want, sizeof(want), "%s/real.bin", real);
	assert_string_equal(f->src, want);
	f = find(&l, "sub/up.bin");
	assert_int_equal(f->size, 123);
	assert_string_equal(f->src, want);
	f = find(&l, "sub/same.json");
	assert_int_equal(f->size, 7);
	unit_fmt(want, sizeof(want), "%s/sub/real.json", real);
	assert_string_equal(f->src, want);
	assert_int_equal(l.total, 123 * 3 + 7 * 2);
	dir_listing_release(&l);
}

static void
test_list_bad_dir(void **state)
{
	struct fixture *fx = *state;
	struct dir_listing l;
	char err[512], path[PATH];

	/* Empty, or holding only git metadata. */
	err[0] = '\0';
	assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), -ENOENT);
	assert_true(err[0] != '\0');
	assert_null(l.files);
	put(fx, ".git/HEAD", 'h', 10);
	assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), -ENOENT);

	/* Missing. */
	unit_fmt(path, sizeof(path), "%s/missing", fx->dir);
	err[0] = '\0';
	assert_int_equal(dir_list(path, &l, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "missing"));

	/* A file. */
	put(fx, "file.txt", 'f', 3);
	unit_fmt(path, sizeof(path), "%s/file.txt", fx->src);
	err[0] = '\0';
	assert_int_equal(dir_list(path, &l, err, sizeof(err)), -ENOTDIR);
	assert_non_null(strstr(err, "file.txt"));
	assert_null(l.files);
}

static void
test_is_lfs(void **state)
{
	static const char *const lfs[] = { "model.safetensors", "x.bin",
		"weights/model.gguf", "onnx/model.onnx", "tokenizer.model",
		"data.parquet", "a.tar.gz", "m.pt", "m.pth", "m.ckpt", "m.h5",
		"m.msgpack", "m.npz", "m.pkl", "m.zip" };
	static const char *const git[] = { "config.json", "README.md",
		"tokenizer.json", "vocab.txt", "model.safetensors.index.json",
		"bin", "safetensors", "merges.txt", "x.binx" };
	size_t i;

	for (i = 0; i < sizeof(lfs) / sizeof(lfs[0]); i++)
		if (!dir_is_lfs(lfs[i], 1))
			fail_msg("'%s' should be in LFS", lfs[i]);
	for (i = 0; i < sizeof(git) / sizeof(git[0]); i++)
		if (dir_is_lfs(git[i], 1))
			fail_msg("'%s' should be in git", git[i]);

	/* By size, whatever the name: 10 MiB and up. */
	assert_false(dir_is_lfs("config.json", 0));
	assert_false(dir_is_lfs("config.json", 10 * MIB - 1));
	assert_true(dir_is_lfs("config.json", 10 * MIB));
	assert_true(dir_is_lfs("config.json", 10 * MIB + 1));
	assert_true(dir_is_lfs("README.md", UINT64_MAX));
	assert_true(dir_is_lfs("x.bin", 0));
}

static void
on_progress(void *arg, uint64_t done, uint64_t total, size_t files_done,
    size_t files)
{
	struct calls *c = arg;

	assert_true(c->n < MAXCALLS);
	c->done[c->n] = done;
	c->total[c->n] = total;
	c->files_done[c->n] = files_done;
	c->files[c->n] = files;
	c->n++;
}

/* The entries of a store-relative folder, found recursively. */
static int
entries(struct fixture *fx, const char *rel)
{
	char path[PATH], sub[PATH];
	struct dirent *e;
	int n = 0;
	DIR *d;

	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n++;
		if (e->d_type == DT_DIR) {
			unit_fmt(sub, sizeof(sub), "%s/%s", rel, e->d_name);
			n += entries(fx, sub);
		}
	}
	closedir(d);
	return n;
}

static int
count_snap(void *arg, const struct index_snapshot *s)
{
	(*(int *)arg)++;
	return 0;
}

static int
snapshots(struct fixture *fx)
{
	int n = 0;

	assert_int_equal(index_each_snapshot(&fx->index, REPO_MODEL, NULL, NULL,
			     count_snap, &n),
	    0);
	return n;
}

/* The source tree of the import tests, with its expected digests. */
struct want {
	const char *path;
	char *bytes;
	size_t size;
	int lfs;
	char sha256[DIGEST_HEX_MAX], etag[DIGEST_HEX_MAX];
};

static void
want_file(struct fixture *fx, struct want *w, const char *path, int c,
    size_t size, int lfs)
{
	size_t i;

	w->path = path;
	w->size = size;
	w->lfs = lfs;
	w->bytes = malloc(size + 1);
	assert_non_null(w->bytes);
	for (i = 0; i < size; i++)
		w->bytes[i] = (char)(c + (int)(i % 7));
	unit_write(fx->src, path, w->bytes, size);
	assert_int_equal(digest_buf(DIGEST_SHA256, w->bytes, size, w->sha256),
	    0);
	if (lfs)
		memcpy(w->etag, w->sha256, sizeof(w->etag));
	else
		assert_int_equal(digest_buf(DIGEST_GITSHA1, w->bytes, size,
				     w->etag),
		    0);
}

static void
check_files(const struct manifest *m, const struct want *w, size_t n)
{
	size_t i, j;

	assert_int_equal(m->nfiles, n);
	for (i = 0; i < n; i++) {
		for (j = 0; j < m->nfiles; j++)
			if (strcmp(m->files[j].path, w[i].path) == 0)
				break;
		if (j == m->nfiles)
			fail_msg("'%s' is not in the manifest", w[i].path);
		assert_int_equal(m->files[j].size, w[i].size);
		assert_string_equal(m->files[j].sha256, w[i].sha256);
		assert_string_equal(m->files[j].etag, w[i].etag);
		assert_int_equal(strlen(m->files[j].etag),
		    w[i].lfs ? DIGEST_SHA256_HEX : DIGEST_SHA1_HEX);
	}
}

static void
test_import(void **state)
{
	struct fixture *fx = *state;
	struct import_opts o;
	struct dir_listing l;
	struct manifest m, disk;
	struct want w[6];
	struct calls *c = calloc(1, sizeof(*c));
	char err[512] = "", C[DIGEST_SHA1_HEX + 1], rel[PATH], real[PATH_MAX];
	char path[PATH], buf[64];
	const char *why;
	size_t i;
	ssize_t n;
	int fd;

	assert_non_null(c);
	want_file(fx, &w[0], "config.json", '{', 40, 0);
	want_file(fx, &w[1], "model.safetensors", 'A', 5000, 1);
	want_file(fx, &w[2], "sub/vocab.txt", 'v', 700, 0);
	want_file(fx, &w[3], "dup1.txt", 'D', 333, 0);
	want_file(fx, &w[4], "deep/er/dup2.txt", 'D', 333, 0);
	/* In LFS by its size alone. */
	want_file(fx, &w[5], "big.dat", 'b', 10 * MIB, 1);
	assert_string_equal(w[3].sha256, w[4].sha256);

	assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 6);
	memset(&o, 0, sizeof(o));
	o.type = REPO_MODEL;
	o.repo = "org/imp";
	o.workers = 3;
	o.stale_ms = 60000;
	o.progress.fn = on_progress;
	o.progress.arg = c;
	manifest_init(&m);
	assert_int_equal(dir_import(&fx->store, &fx->index, &l, &o, &m, err,
			     sizeof(err)),
	    0);

	/* The manifest returned. */
	check_files(&m, w, 6);
	assert_string_equal(m.repo, "org/imp");
	assert_int_equal(m.type, REPO_MODEL);
	assert_non_null(realpath(fx->src, real));
	unit_fmt(path, sizeof(path), "file://%s", real);
	assert_string_equal(m.source, path);
	assert_int_equal(m.nrevisions, 1);
	assert_string_equal(m.revisions[0], "main");
	assert_int_equal(strlen(m.commit), DIGEST_SHA1_HEX);
	unit_fmt(C, sizeof(C), "%s", m.commit);
	manifest_release(&m);

	/* The one on disk says the same. */
	unit_fmt(rel, sizeof(rel), "manifests/models--org--imp/%s.json", C);
	manifest_init(&disk);
	assert_int_equal(manifest_load(&fx->store, rel, &disk, &why), 0);
	check_files(&disk, w, 6);
	manifest_release(&disk);

	/* Two files of the same bytes share one blob; all blobs are good. */
	assert_int_equal(fixture_blob_count(fx), 5);
	for (i = 0; i < 6; i++)
		assert_int_equal(store_blob_verify(&fx->store, w[i].sha256,
				     w[i].size),
		    0);
	/* Published as a whole: index row and view. */
	assert_int_equal(snapshots(fx), 1);
	unit_fmt(path, sizeof(path), "%s/hub/models--org--imp/snapshots/%s/%s",
	    fx->root, C, w[0].path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, w[0].size);
	assert_memory_equal(buf, w[0].bytes, w[0].size);
	/* Nothing left behind. */
	assert_int_equal(entries(fx, "tmp"), 0);
	assert_int_equal(entries(fx, "claims"), 0);

	/* Progress: never past the total, ending on it. */
	assert_true(c->n >= 1);
	for (i = 0; i < c->n; i++) {
		assert_int_equal(c->total[i], l.total);
		assert_true(c->done[i] <= c->total[i]);
		assert_int_equal(c->files[i], 6);
		assert_true(c->files_done[i] <= c->files[i]);
		if (i > 0) {
			assert_true(c->done[i] >= c->done[i - 1]);
			assert_true(c->files_done[i] >= c->files_done[i - 1]);
		}
	}
	assert_int_equal(c->done[c->n - 1], l.total);
	assert_int_equal(c->files_done[c->n - 1], 6);

	/* The same tree again, with other workers: the same commit. */
	o.workers = 1;
	o.progress.fn = NULL;
	manifest_init(&m);
	assert_int_equal(dir_import(&fx->store, &fx->index, &l, &o, &m, err,
			     sizeof(err)),
	    0);
	assert_string_equal(m.commit, C);
	check_files(&m, w, 6);
	manifest_release(&m);
	assert_int_equal(snapshots(fx), 1);
	assert_int_equal(fixture_blob_count(fx), 5);
	assert_int_equal(entries(fx, "tmp"), 0);
	assert_int_equal(entries(fx, "claims"), 0);

	dir_listing_release(&l);
	for (i = 0; i < 6; i++)
		free(w[i].bytes);
	free(c);
}

/*
 * A tree so small that the worker may finish before the importing thread
 * first waits for it: progress must still be reported, ending on the total.
 */
static void
test_import_progress_small(void **state)
{
	struct fixture *fx = *state;
	struct import_opts o;
	struct dir_listing l;
	struct manifest m;
	struct calls *c = calloc(1, sizeof(*c));
	char err[512] = "";
	int round;

	assert_non_null(c);
	put(fx, "a.txt", 'a', 3);
	put(fx, "b.txt", 'b', 4);
	assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), 0);
	memset(&o, 0, sizeof(o));
	o.type = REPO_MODEL;
	o.repo = "org/small";
	o.workers = 1;
	o.stale_ms = 60000;
	o.progress.fn = on_progress;
	o.progress.arg = c;
	for (round = 0; round < 10; round++) {
		memset(c, 0, sizeof(*c));
		manifest_init(&m);
		assert_int_equal(dir_import(&fx->store, &fx->index, &l, &o, &m,
				     err, sizeof(err)),
		    0);
		manifest_release(&m);
		assert_true(c->n >= 1);
		assert_int_equal(c->done[c->n - 1], 7);
		assert_int_equal(c->total[c->n - 1], 7);
		assert_int_equal(c->files_done[c->n - 1], 2);
		assert_int_equal(c->files[c->n - 1], 2);
	}
	dir_listing_release(&l);
	free(c);
}

/* After a failed import: err names path, and the store holds nothing. */
static void
assert_failed_clean(struct fixture *fx, int rc, const char *err,
    const char *path)
{
	assert_true(rc < 0);
	if (strstr(err, path) == NULL)
		fail_msg("the message '%s' does not name '%s'", err, path);
	assert_int_equal(entries(fx, "tmp"), 0);
	assert_int_equal(entries(fx, "claims"), 0);
	assert_int_equal(entries(fx, "manifests"), 0);
	assert_int_equal(entries(fx, "hub"), 0);
	assert_int_equal(snapshots(fx), 0);
}

/* A tree of several files, so that other workers are busy at the failure. */
static void
import_tree(struct fixture *fx)
{
	put(fx, "a.bin", 'a', 300000);
	put(fx, "b.bin", 'b', 200000);
	put(fx, "c.json", 'c', 1000);
	put(fx, "sub/d.txt", 'd', 100);
	put(fx, "sub/e.txt", 'e', 50000);
	put(fx, "f.txt", 'f', 10);
}

static void
import_opts(struct import_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->type = REPO_MODEL;
	o->repo = "org/fail";
	o->workers = 4;
	o->stale_ms = 60000;
}

static void
test_import_vanished(void **state)
{
	struct fixture *fx = *state;
	struct import_opts o;
	struct dir_listing l;
	struct manifest m;
	char err[512] = "", path[PATH];
	int rc;

	import_tree(fx);
	assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 6);
	/* Gone between the listing and the import. */
	src_path(fx, "sub/e.txt", path, sizeof(path));
	assert_int_equal(unlink(path), 0);

	import_opts(&o);
	manifest_init(&m);
	rc = dir_import(&fx->store, &fx->index, &l, &o, &m, err, sizeof(err));
	assert_int_equal(rc, -ENOENT);
	assert_failed_clean(fx, rc, err, "sub/e.txt");
	manifest_release(&m);

	/* Put back, the same listing imports. */
	put(fx, "sub/e.txt", 'e', 50000);
	err[0] = '\0';
	manifest_init(&m);
	assert_int_equal(dir_import(&fx->store, &fx->index, &l, &o, &m, err,
			     sizeof(err)),
	    0);
	assert_int_equal(m.nfiles, 6);
	manifest_release(&m);
	assert_int_equal(snapshots(fx), 1);
	assert_int_equal(entries(fx, "tmp"), 0);
	dir_listing_release(&l);
}

static void
test_import_changed(void **state)
{
	struct fixture *fx = *state;
	struct import_opts o;
	struct dir_listing l;
	struct manifest m;
	char err[512] = "";
	int rc;

	import_tree(fx);
	assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), 0);
	/* Grown between the listing and the import. */
	put(fx, "c.json", 'c', 1001);

	import_opts(&o);
	manifest_init(&m);
	rc = dir_import(&fx->store, &fx->index, &l, &o, &m, err, sizeof(err));
	assert_failed_clean(fx, rc, err, "c.json");
	manifest_release(&m);
	dir_listing_release(&l);
}

static void
test_import_unreadable(void **state)
{
	struct fixture *fx = *state;
	struct import_opts o;
	struct dir_listing l;
	struct manifest m;
	char err[512] = "", path[PATH];
	int rc;

	/* Root reads it anyway: test_import_vanished covers the failure. */
	if (geteuid() == 0)
		skip();
	import_tree(fx);
	src_path(fx, "sub/d.txt", path, sizeof(path));
	assert_int_equal(chmod(path, 0), 0);
	assert_int_equal(dir_list(fx->src, &l, err, sizeof(err)), 0);

	import_opts(&o);
	manifest_init(&m);
	rc = dir_import(&fx->store, &fx->index, &l, &o, &m, err, sizeof(err));
	assert_int_equal(rc, -EACCES);
	assert_failed_clean(fx, rc, err, "sub/d.txt");
	manifest_release(&m);
	dir_listing_release(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_list_nested,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_list_rejects,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_list_symlink_inside,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_list_bad_dir,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test(test_is_lfs),
		cmocka_unit_test_setup_teardown(test_import_progress_small,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_import,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_import_vanished,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_import_changed,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_import_unreadable,
		    fixture_setup_index, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
