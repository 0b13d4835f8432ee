/*
 * test_hub: unit tests for src/hub.c, the Hugging Face cache view.
 *
 * The view must match huggingface_hub's own cache to the letter
 * (shared/reference/hf-hub.md, section 3), so the layout tests walk the
 * whole of hub/ and compare every entry, with its kind and, for symlinks,
 * its exact target, against the set the reference prescribes: nothing
 * missing and nothing else.  Blobs are checked by inode against the store,
 * refs byte for byte.  The repair tests damage the view the ways a crash or
 * a person can, check that hub_check() names the damage, and that
 * hub_publish() puts the exact tree back.  Every test runs in its own
 * temporary store, built from real blobs ingested through store.h.
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
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "unit_store.h"
#include "fixture.h"

#include "hub.h"
#include "index.h"
#include "manifest.h"
#include "snapshot.h"
#include "store.h"

#define PATH UNIT_PATH

static void
start(struct manifest *m, enum repo_type type, const char *repo)
{
	manifest_init(m);
	assert_int_equal(manifest_set_origin(m, type, repo, "file:///models/x"),
	    0);
}

static void
finish(struct manifest *m, const char *rev)
{
	if (rev != NULL)
		assert_int_equal(manifest_add_revision(m, rev), 0);
	assert_int_equal(manifest_derive_commit(m), 0);
	assert_int_equal(strlen(m->commit), DIGEST_SHA1_HEX);
}

/* Lists every entry below root/rel: "d p", "f p" or "l p -> target". */
static void
walk_tree(const char *root, const char *rel, struct list *l)
{
	char path[PATH], sub[PATH], target[PATH];
	struct dirent *e;
	struct stat st;
	ssize_t n;
	DIR *d;

	unit_fmt(path, sizeof(path), "%s/%s", root, rel);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		unit_fmt(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "",
		    e->d_name);
		unit_fmt(path, sizeof(path), "%s/%s", root, sub);
		assert_int_equal(lstat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			list_add(l, "d %s", sub);
			walk_tree(root, sub, l);
		} else if (S_ISLNK(st.st_mode)) {
			n = readlink(path, target, sizeof(target) - 1);
			assert_true(n > 0);
			target[n] = '\0';
			list_add(l, "l %s -> %s", sub, target);
		} else if (S_ISREG(st.st_mode))
			list_add(l, "f %s", sub);
		else
			list_add(l, "? %s", sub);
	}
	closedir(d);
}

/* Compares all of hub/ with want (which is sorted and kept). */
static void
assert_hub_tree(struct fixture *fx, struct list *want)
{
	struct list got = { 0 };
	char hub[PATH];

	unit_fmt(hub, sizeof(hub), "%s/hub", fx->root);
	walk_tree(hub, "", &got);
	list_assert_same("hub/ tree", &got, want, 1);
	list_free(&got);
}

/* Nothing may be left behind in tmp/. */
static void
assert_tmp_empty(struct fixture *fx)
{
	struct list got = { 0 }, want = { 0 };
	char tmp[PATH];

	unit_fmt(tmp, sizeof(tmp), "%s/tmp", fx->root);
	walk_tree(tmp, "", &got);
	list_assert_same("tmp/", &got, &want, 1);
	list_free(&got);
}

/* The link target written independently: "../" depth+2 times. */
static void
target_of(const char *path, const char *etag, char *buf, size_t len)
{
	size_t off = 0;
	const char *p;

	for (p = path; *p != '\0'; p++)
		if (*p == '/') {
			unit_fmt(buf + off, len - off, "../");
			off += 3;
		}
	unit_fmt(buf + off, len - off, "../../blobs/%s", etag);
}

/*
 * Adds to want what the view of m is made of: the folder's three
 * directories, blobs, the snapshot with its directories and links.  Refs
 * are added by the caller, who knows which manifest holds which.
 */
static void
want_manifest(struct list *want, const struct manifest *m, const char *F)
{
	char target[PATH], dir[PATH], *slash;
	size_t i;

	list_add(want, "d %s", F);
	list_add(want, "d %s/blobs", F);
	list_add(want, "d %s/refs", F);
	list_add(want, "d %s/snapshots", F);
	list_add(want, "d %s/snapshots/%s", F, m->commit);
	for (i = 0; i < m->nfiles; i++) {
		const struct manifest_file *f = &m->files[i];

		list_add(want, "f %s/blobs/%s", F, f->etag);
		target_of(f->path, f->etag, target, sizeof(target));
		list_add(want, "l %s/snapshots/%s/%s -> %s", F, m->commit,
		    f->path, target);
		unit_fmt(dir, sizeof(dir), "%s", f->path);
		while ((slash = strrchr(dir, '/')) != NULL) {
			*slash = '\0';
			list_add(want, "d %s/snapshots/%s/%s", F, m->commit,
			    dir);
		}
	}
}

/*
 * For each file of m: the hub blob is the store blob's inode; the snapshot
 * entry is a symlink with the expected target that resolves, through the
 * view, to that same inode and the file's bytes.
 */
static void
assert_links(struct fixture *fx, const struct manifest *m, const char *F,
    const char *const *contents)
{
	char path[PATH], blob[PATH], rel[PATH], target[PATH], cur[PATH];
	char buf[256];
	struct stat sb, hb, lb;
	size_t i;
	ssize_t n;
	int fd;

	for (i = 0; i < m->nfiles; i++) {
		const struct manifest_file *f = &m->files[i];

		assert_int_equal(store_blob_path(f->sha256, rel, sizeof(rel)),
		    0);
		unit_fmt(blob, sizeof(blob), "%s/%s", fx->root, rel);
		assert_int_equal(lstat(blob, &sb), 0);
		unit_fmt(path, sizeof(path), "%s/hub/%s/blobs/%s", fx->root, F,
		    f->etag);
		assert_int_equal(lstat(path, &hb), 0);
		assert_true(S_ISREG(hb.st_mode));
		assert_int_equal(hb.st_ino, sb.st_ino);
		assert_int_equal(hb.st_dev, sb.st_dev);

		unit_fmt(path, sizeof(path), "%s/hub/%s/snapshots/%s/%s",
		    fx->root, F, m->commit, f->path);
		assert_int_equal(lstat(path, &lb), 0);
		assert_true(S_ISLNK(lb.st_mode));
		n = readlink(path, cur, sizeof(cur) - 1);
		assert_true(n > 0);
		cur[n] = '\0';
		target_of(f->path, f->etag, target, sizeof(target));
		assert_string_equal(cur, target);
		assert_int_equal(stat(path, &lb), 0);
		assert_int_equal(lb.st_ino, sb.st_ino);
		assert_int_equal((uint64_t)lb.st_size, f->size);
		if (contents == NULL)
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		n = read(fd, buf, sizeof(buf));
		close(fd);
		assert_int_equal(n, strlen(contents[i]));
		assert_memory_equal(buf, contents[i], (size_t)n);
	}
}

/* A hub_report that records "<problem name> <path>" for each problem. */
static void
on_bad(void *arg, const char *path, enum hub_problem problem)
{
	list_add(arg, "%s %s", hub_problem_name(problem), path);
}

/* Runs hub_check() and compares its reports with want (then emptied). */
static void
assert_check(struct fixture *fx, const struct manifest *m, struct list *want)
{
	struct list got = { 0 };
	struct hub_report r = { on_bad, &got, 0 };
	size_t nwant;
	int rc;

	rc = hub_check(&fx->store, m, &r);
	list_sort(want, 1);
	nwant = want->n;
	list_assert_same("hub_check reports", &got, want, 1);
	assert_int_equal(rc, (int)nwant);
	assert_int_equal(r.count, nwant);
	list_free(&got);
	list_free(want);
}

static void
test_link_target(void **state)
{
#define E "0123456789abcdef0123456789abcdef01234567"
	char buf[256];

	assert_int_equal(hub_link_target("a.json", E, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "../../blobs/" E);
	assert_int_equal(hub_link_target("x/a.json", E, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "../../../blobs/" E);
	assert_int_equal(hub_link_target("a/b/c/d.bin", E, buf, sizeof(buf)),
	    0);
	assert_string_equal(buf, "../../../../../blobs/" E);

	/* Exactly enough room, then one byte short. */
	assert_int_equal(hub_link_target("a.json", E, buf,
			     sizeof("../../blobs/" E)),
	    0);
	assert_string_equal(buf, "../../blobs/" E);
	assert_int_equal(hub_link_target("a.json", E, buf,
			     sizeof("../../blobs/" E) - 1),
	    -ENAMETOOLONG);
	assert_int_equal(hub_link_target("a/b/c/d.bin", E, buf, 8),
	    -ENAMETOOLONG);
#undef E
}

static void
test_publish_layout(void **state)
{
	static const char *const contents[] = { "deep bytes\n", "{\"a\":1}\n",
		"safetensors weights", "xa" };
	static const char F[] = "models--org--name";
	struct fixture *fx = *state;
	struct blob cfg, model, xa, deep;
	struct list want = { 0 };
	struct manifest m;
	char C[DIGEST_SHA1_HEX + 1], rel[PATH], path[PATH];
	struct stat st;

	start(&m, REPO_MODEL, "org/name");
	fixture_add_file(fx, &m, "config.json", contents[1], 0, &cfg);
	fixture_add_file(fx, &m, "model.safetensors", contents[2], 1, &model);
	fixture_add_file(fx, &m, "x/a.json", contents[3], 0, &xa);
	fixture_add_file(fx, &m, "a/b/c/d.bin", contents[0], 1, &deep);
	finish(&m, "main");
	memcpy(C, m.commit, sizeof(C));

	assert_int_equal(hub_publish(&fx->store, &m), 0);

	/* The tree, written out by hand from the reference. */
	list_add(&want, "d %s", F);
	list_add(&want, "d %s/blobs", F);
	list_add(&want, "f %s/blobs/%s", F, cfg.gitsha1);
	list_add(&want, "f %s/blobs/%s", F, model.sha256);
	list_add(&want, "f %s/blobs/%s", F, xa.gitsha1);
	list_add(&want, "f %s/blobs/%s", F, deep.sha256);
	list_add(&want, "d %s/refs", F);
	list_add(&want, "f %s/refs/main", F);
	list_add(&want, "d %s/snapshots", F);
	list_add(&want, "d %s/snapshots/%s", F, C);
	list_add(&want, "l %s/snapshots/%s/config.json -> ../../blobs/%s", F, C,
	    cfg.gitsha1);
	list_add(&want, "l %s/snapshots/%s/model.safetensors -> ../../blobs/%s",
	    F, C, model.sha256);
	list_add(&want, "d %s/snapshots/%s/x", F, C);
	list_add(&want, "l %s/snapshots/%s/x/a.json -> ../../../blobs/%s", F, C,
	    xa.gitsha1);
	list_add(&want, "d %s/snapshots/%s/a", F, C);
	list_add(&want, "d %s/snapshots/%s/a/b", F, C);
	list_add(&want, "d %s/snapshots/%s/a/b/c", F, C);
	list_add(&want,
	    "l %s/snapshots/%s/a/b/c/d.bin -> ../../../../../blobs/%s", F, C,
	    deep.sha256);
	assert_hub_tree(fx, &want);

	/* manifest_derive_commit() sorted the files by path. */
	assert_string_equal(m.files[0].path, "a/b/c/d.bin");
	assert_links(fx, &m, F, contents);

	/* A hard link, never a copy or a symlink: two names, one inode. */
	assert_int_equal(store_blob_path(model.sha256, rel, sizeof(rel)), 0);
	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_nlink, 2);

	unit_fmt(rel, sizeof(rel), "hub/%s/refs/main", F);
	fixture_assert_ref(fx, rel, C);
	assert_tmp_empty(fx);

	list_free(&want);
	manifest_release(&m);
}

static void
test_publish_nested_ref_and_types(void **state)
{
	struct fixture *fx = *state;
	struct list want = { 0 };
	struct manifest d, g;
	char rel[PATH];

	/* A dataset with a branch and a pull request revision. */
	start(&d, REPO_DATASET, "org/name");
	fixture_add_file(fx, &d, "data/train.csv", "a,b\n1,2\n", 0, NULL);
	finish(&d, "main");
	assert_int_equal(manifest_add_revision(&d, "refs/pr/1"), 0);
	assert_int_equal(hub_publish(&fx->store, &d), 0);

	/* A legacy single-part model id. */
	start(&g, REPO_MODEL, "gpt2");
	fixture_add_file(fx, &g, "config.json", "{}", 0, NULL);
	finish(&g, "v1.0");
	assert_int_equal(hub_publish(&fx->store, &g), 0);

	want_manifest(&want, &d, "datasets--org--name");
	list_add(&want, "f datasets--org--name/refs/main");
	list_add(&want, "d datasets--org--name/refs/refs");
	list_add(&want, "d datasets--org--name/refs/refs/pr");
	list_add(&want, "f datasets--org--name/refs/refs/pr/1");
	want_manifest(&want, &g, "models--gpt2");
	list_add(&want, "f models--gpt2/refs/v1.0");
	assert_hub_tree(fx, &want);

	fixture_assert_ref(fx, "hub/datasets--org--name/refs/main", d.commit);
	fixture_assert_ref(fx, "hub/datasets--org--name/refs/refs/pr/1",
	    d.commit);
	fixture_assert_ref(fx, "hub/models--gpt2/refs/v1.0", g.commit);
	assert_links(fx, &d, "datasets--org--name", NULL);
	assert_links(fx, &g, "models--gpt2", NULL);
	unit_fmt(rel, sizeof(rel), "%s/hub/models--org--name", fx->root);
	assert_int_equal(access(rel, F_OK), -1);
	assert_tmp_empty(fx);

	list_free(&want);
	manifest_release(&d);
	manifest_release(&g);
}

/* Inode and mtime of a store-relative path, not following links. */
static void
lstat_rel(struct fixture *fx, const char *rel, struct stat *st)
{
	char path[PATH];

	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	assert_int_equal(lstat(path, st), 0);
}

static void
test_publish_idempotent(void **state)
{
	struct fixture *fx = *state;
	struct list want = { 0 };
	struct manifest m;
	struct stat ref1, ref2, link1, link2, snap1, snap2;
	char ref[PATH], link[PATH], snap[PATH];

	start(&m, REPO_MODEL, "org/name");
	fixture_add_file(fx, &m, "config.json", "{\"x\":2}", 0, NULL);
	fixture_add_file(fx, &m, "sub/w.bin", "weights", 1, NULL);
	finish(&m, "main");
	assert_int_equal(hub_publish(&fx->store, &m), 0);

	unit_fmt(ref, sizeof(ref), "hub/models--org--name/refs/main");
	unit_fmt(link, sizeof(link), "hub/models--org--name/snapshots/%s/%s",
	    m.commit, "sub/w.bin");
	unit_fmt(snap, sizeof(snap), "hub/models--org--name/snapshots/%s",
	    m.commit);
	lstat_rel(fx, ref, &ref1);
	lstat_rel(fx, link, &link1);
	lstat_rel(fx, snap, &snap1);

	assert_int_equal(hub_publish(&fx->store, &m), 0);
	assert_int_equal(hub_publish(&fx->store, &m), 0);

	want_manifest(&want, &m, "models--org--name");
	list_add(&want, "f models--org--name/refs/main");
	assert_hub_tree(fx, &want);
	assert_links(fx, &m, "models--org--name", NULL);
	fixture_assert_ref(fx, ref, m.commit);

	/* Nothing was rewritten: a read-only view stays untouched. */
	lstat_rel(fx, ref, &ref2);
	lstat_rel(fx, link, &link2);
	lstat_rel(fx, snap, &snap2);
	assert_int_equal(ref1.st_ino, ref2.st_ino);
	assert_int_equal(link1.st_ino, link2.st_ino);
	assert_int_equal(snap1.st_ino, snap2.st_ino);
	assert_tmp_empty(fx);

	list_free(&want);
	manifest_release(&m);
}

static void
test_publish_shared_blob(void **state)
{
	static const char F[] = "models--org--name";
	struct fixture *fx = *state;
	struct list want = { 0 };
	struct manifest a, b;
	struct blob shared;
	struct stat sa, sb, hub, store;
	char path[PATH], rel[PATH];

	start(&a, REPO_MODEL, "org/name");
	fixture_add_file(fx, &a, "config.json", "{\"shared\":1}", 0, &shared);
	fixture_add_file(fx, &a, "w.bin", "old weights", 1, NULL);
	finish(&a, "main");
	assert_int_equal(hub_publish(&fx->store, &a), 0);

	/* The next revision: same config, new weights. */
	start(&b, REPO_MODEL, "org/name");
	fixture_add_file(fx, &b, "config.json", "{\"shared\":1}", 0, NULL);
	fixture_add_file(fx, &b, "w.bin", "new weights", 1, NULL);
	finish(&b, "main");
	assert_string_not_equal(a.commit, b.commit);
	assert_int_equal(hub_publish(&fx->store, &b), 0);

	want_manifest(&want, &a, F);
	want_manifest(&want, &b, F);
	list_add(&want, "f %s/refs/main", F);
	assert_hub_tree(fx, &want);
	assert_links(fx, &a, F, NULL);
	assert_links(fx, &b, F, NULL);

	/* One hub blob for the shared file, linked from both snapshots. */
	unit_fmt(path, sizeof(path), "%s/hub/%s/snapshots/%s/config.json",
	    fx->root, F, a.commit);
	assert_int_equal(stat(path, &sa), 0);
	unit_fmt(path, sizeof(path), "%s/hub/%s/snapshots/%s/config.json",
	    fx->root, F, b.commit);
	assert_int_equal(stat(path, &sb), 0);
	unit_fmt(path, sizeof(path), "%s/hub/%s/blobs/%s", fx->root, F,
	    shared.gitsha1);
	assert_int_equal(lstat(path, &hub), 0);
	assert_int_equal(store_blob_path(shared.sha256, rel, sizeof(rel)), 0);
	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	assert_int_equal(lstat(path, &store), 0);
	assert_int_equal(sa.st_ino, hub.st_ino);
	assert_int_equal(sb.st_ino, hub.st_ino);
	assert_int_equal(store.st_ino, hub.st_ino);
	assert_int_equal(store.st_nlink, 2);

	/* main moved to the newer revision. */
	unit_fmt(rel, sizeof(rel), "hub/%s/refs/main", F);
	fixture_assert_ref(fx, rel, b.commit);
	assert_tmp_empty(fx);

	list_free(&want);
	manifest_release(&a);
	manifest_release(&b);
}

/* Replaces the store-relative rel with a symlink to target. */
static void
relink(struct fixture *fx, const char *rel, const char *target)
{
	char path[PATH];

	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(target, path), 0);
}

/* Replaces the store-relative rel with a plain copy of its bytes. */
static void
recopy(struct fixture *fx, const char *rel)
{
	char path[PATH], buf[256];
	ssize_t n;
	int fd;

	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	assert_true(n > 0);
	close(fd);
	assert_int_equal(unlink(path), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, (size_t)n), n);
	close(fd);
}

/* After a repair: no problem left, the exact tree, nothing in tmp/. */
static void
assert_repaired(struct fixture *fx, const struct manifest *m, struct list *tree)
{
	struct list none = { 0 };

	assert_int_equal(hub_publish(&fx->store, m), 0);
	assert_check(fx, m, &none);
	assert_hub_tree(fx, tree);
	assert_links(fx, m, "models--org--name", NULL);
	fixture_assert_ref(fx, "hub/models--org--name/refs/main", m->commit);
	assert_tmp_empty(fx);
}

static void
test_check_and_repair(void **state)
{
	static const char F[] = "models--org--name";
	struct fixture *fx = *state;
	struct list tree = { 0 }, want = { 0 };
	struct manifest m;
	struct blob cfg, model, xa;
	char snap[PATH], rel[PATH], blob[PATH], store_blob[PATH], path[PATH];
	char target[PATH];

	start(&m, REPO_MODEL, "org/name");
	fixture_add_file(fx, &m, "config.json", "{\"c\":3}", 0, &cfg);
	fixture_add_file(fx, &m, "model.safetensors", "tensors", 1, &model);
	fixture_add_file(fx, &m, "x/a.json", "xa!", 0, &xa);
	finish(&m, "main");
	assert_int_equal(hub_publish(&fx->store, &m), 0);
	want_manifest(&tree, &m, F);
	list_add(&tree, "f %s/refs/main", F);
	assert_check(fx, &m, &want);
	unit_fmt(snap, sizeof(snap), "hub/%s/snapshots/%s", F, m.commit);

	/* A snapshot entry deleted: half-built. */
	unit_fmt(rel, sizeof(rel), "%s/config.json", snap);
	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	assert_int_equal(unlink(path), 0);
	list_add(&want, "hub_entry_missing %s", rel);
	assert_check(fx, &m, &want);
	assert_repaired(fx, &m, &tree);

	/* A link pointing at another, existing blob of the folder. */
	unit_fmt(rel, sizeof(rel), "%s/x/a.json", snap);
	unit_fmt(target, sizeof(target), "../../../blobs/%s", model.sha256);
	relink(fx, rel, target);
	list_add(&want, "hub_link_wrong %s", rel);
	assert_check(fx, &m, &want);
	assert_repaired(fx, &m, &tree);

	/* A link pointing nowhere: wrong, and dangling. */
	unit_fmt(rel, sizeof(rel), "%s/config.json", snap);
	relink(fx, rel, "../../blobs/0000000000000000000000000000000000000000");
	list_add(&want, "hub_link_wrong %s", rel);
	list_add(&want, "hub_link_dangling %s", rel);
	assert_check(fx, &m, &want);
	assert_repaired(fx, &m, &tree);

	/* The right target, but the hub blob is gone. */
	unit_fmt(blob, sizeof(blob), "hub/%s/blobs/%s", F, xa.gitsha1);
	unit_fmt(path, sizeof(path), "%s/%s", fx->root, blob);
	assert_int_equal(unlink(path), 0);
	list_add(&want, "hub_link_dangling %s/x/a.json", snap);
	assert_check(fx, &m, &want);
	assert_repaired(fx, &m, &tree);

	/* A hub blob replaced by a copy: same bytes, another inode. */
	unit_fmt(blob, sizeof(blob), "hub/%s/blobs/%s", F, model.sha256);
	recopy(fx, blob);
	list_add(&want, "hub_blob_unlinked %s", blob);
	assert_check(fx, &m, &want);
	assert_repaired(fx, &m, &tree);

	/*
	 * A hub blob replaced by a symlink into the store: HF tools would
	 * delete the store blob through it.
	 */
	unit_fmt(blob, sizeof(blob), "hub/%s/blobs/%s", F, cfg.gitsha1);
	assert_int_equal(store_blob_path(cfg.sha256, store_blob,
			     sizeof(store_blob)),
	    0);
	unit_fmt(target, sizeof(target), "../../../%s", store_blob);
	relink(fx, blob, target);
	unit_fmt(path, sizeof(path), "%s/%s", fx->root, blob);
	assert_int_equal(access(path, R_OK), 0); /* it does resolve */
	list_add(&want, "hub_blob_unlinked %s", blob);
	assert_check(fx, &m, &want);
	assert_repaired(fx, &m, &tree);

	/* The whole snapshot gone. */
	assert_int_equal(store_remove_tree(&fx->store, snap), 0);
	list_add(&want, "hub_snapshot_missing %s", snap);
	assert_check(fx, &m, &want);
	assert_repaired(fx, &m, &tree);

	/* A ref with a newline, as a careless writer leaves it. */
	unit_fmt(path, sizeof(path), "%s\n", m.commit);
	unit_write(fx->root, "hub/models--org--name/refs/main", path,
	    strlen(path));
	assert_int_equal(hub_publish(&fx->store, &m), 0);
	fixture_assert_ref(fx, "hub/models--org--name/refs/main", m.commit);
	assert_hub_tree(fx, &tree);
	assert_tmp_empty(fx);

	list_free(&tree);
	manifest_release(&m);
}

/* has_manifest() for hub_check_folder(): true for commits in the list. */
static int
in_list(void *arg, const char *folder, const char *commit)
{
	const struct list *l = arg;
	size_t i;

	assert_string_equal(folder, "models--org--name");
	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], commit) == 0)
			return 1;
	return 0;
}

static void
check_folder(struct fixture *fx, struct list *known, struct list *want)
{
	struct list got = { 0 };
	struct hub_report r = { on_bad, &got, 0 };
	size_t nwant;
	int rc;

	rc = hub_check_folder(&fx->store, "models--org--name", in_list, known,
	    &r);
	list_sort(want, 1);
	nwant = want->n;
	list_assert_same("hub_check_folder reports", &got, want, 1);
	assert_int_equal(rc, (int)nwant);
	assert_int_equal(r.count, nwant);
	list_free(&got);
	list_free(want);
}

static void
test_check_folder(void **state)
{
	static const char R[] = "hub/models--org--name/refs";
	static const char MISSING[] =
	    "1111111111111111111111111111111111111111";
	static const char NONE[] = "2222222222222222222222222222222222222222";
	struct fixture *fx = *state;
	struct list known = { 0 }, want = { 0 };
	struct manifest m;
	char buf[128], path[256];

	start(&m, REPO_MODEL, "org/name");
	fixture_add_file(fx, &m, "config.json", "{}", 0, NULL);
	finish(&m, "main");
	assert_int_equal(manifest_add_revision(&m, "refs/pr/1"), 0);
	assert_int_equal(hub_publish(&fx->store, &m), 0);
	list_add(&known, "%s", m.commit);
	check_folder(fx, &known, &want);

	/* A trailing newline makes the ref unreadable to HF. */
	unit_fmt(buf, sizeof(buf), "%s\n", m.commit);
	unit_write(fx->root, "hub/models--org--name/refs/nl", buf, strlen(buf));
	list_add(&want, "hub_ref_bad %s/nl", R);
	/* Upper case is not the commit either; nor is a short sha. */
	unit_fmt(buf, sizeof(buf), "%s", m.commit);
	buf[0] = 'A';
	buf[1] = 'B';
	unit_write(fx->root, "hub/models--org--name/refs/up", buf, 40);
	list_add(&want, "hub_ref_bad %s/up", R);
	unit_write(fx->root, "hub/models--org--name/refs/short", m.commit, 7);
	list_add(&want, "hub_ref_bad %s/short", R);
	/* 40 hex, but no such snapshot; nested too. */
	unit_write(fx->root, "hub/models--org--name/refs/gone", NONE, 40);
	list_add(&want, "hub_ref_dangling %s/gone", R);
	unit_write(fx->root, "hub/models--org--name/refs/refs/pr/9", NONE, 40);
	list_add(&want, "hub_ref_dangling %s/refs/pr/9", R);
	/* A snapshot that no manifest describes. */
	unit_fmt(path, sizeof(path),
	    "hub/models--org--name/snapshots/%s/config.json", MISSING);
	unit_write(fx->root, path, "{}", 2);
	list_add(&want, "hub_snapshot_stray hub/models--org--name/snapshots/%s",
	    MISSING);
	check_folder(fx, &known, &want);

	/* Once it has a manifest it is not stray. */
	list_add(&known, "%s", MISSING);
	list_add(&want, "hub_ref_dangling %s/gone", R);
	list_add(&want, "hub_ref_dangling %s/refs/pr/9", R);
	list_add(&want, "hub_ref_bad %s/nl", R);
	list_add(&want, "hub_ref_bad %s/up", R);
	list_add(&want, "hub_ref_bad %s/short", R);
	check_folder(fx, &known, &want);

	list_free(&known);
	manifest_release(&m);
}

static void
test_problem_names(void **state)
{
	static const struct {
		enum hub_problem p;
		const char *name;
	} names[] = {
		{ HUB_SNAPSHOT_MISSING, "hub_snapshot_missing" },
		{ HUB_ENTRY_MISSING, "hub_entry_missing" },
		{ HUB_LINK_WRONG, "hub_link_wrong" },
		{ HUB_LINK_DANGLING, "hub_link_dangling" },
		{ HUB_BLOB_UNLINKED, "hub_blob_unlinked" },
		{ HUB_REF_BAD, "hub_ref_bad" },
		{ HUB_REF_DANGLING, "hub_ref_dangling" },
		{ HUB_SNAPSHOT_STRAY, "hub_snapshot_stray" },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_string_equal(hub_problem_name(names[i].p),
		    names[i].name);
		assert_non_null(hub_problem_text(names[i].p));
		assert_true(strlen(hub_problem_text(names[i].p)) > 0);
	}
}

static void
test_unpublish(void **state)
{
	static const char F[] = "models--org--name";
	struct fixture *fx = *state;
	struct list want = { 0 };
	struct manifest a, b;
	struct blob shared, only_a, only_b;
	char path[PATH];

	start(&a, REPO_MODEL, "org/name");
	fixture_add_file(fx, &a, "config.json", "{\"shared\":2}", 0, &shared);
	fixture_add_file(fx, &a, "w/a.bin", "only in a", 1, &only_a);
	finish(&a, "main");
	assert_int_equal(manifest_add_revision(&a, "v1"), 0);
	assert_int_equal(manifest_add_revision(&a, "refs/pr/1"), 0);
	assert_int_equal(hub_publish(&fx->store, &a), 0);

	start(&b, REPO_MODEL, "org/name");
	fixture_add_file(fx, &b, "config.json", "{\"shared\":2}", 0, NULL);
	fixture_add_file(fx, &b, "w/b.bin", "only in b", 1, &only_b);
	finish(&b, "dev");
	assert_int_equal(hub_publish(&fx->store, &b), 0);

	/* A second repo, which must not be touched. */
	{
		struct manifest o;

		start(&o, REPO_MODEL, "org/other");
		fixture_add_file(fx, &o, "config.json", "{\"shared\":2}", 0,
		    NULL);
		finish(&o, "main");
		assert_int_equal(hub_publish(&fx->store, &o), 0);
		want_manifest(&want, &o, "models--org--other");
		list_add(&want, "f models--org--other/refs/main");
		manifest_release(&o);
	}

	assert_int_equal(hub_unpublish(&fx->store, F, a.commit), 0);
	/* b's snapshot and refs stay; so does the blob it shares with a. */
	want_manifest(&want, &b, F);
	list_add(&want, "f %s/refs/dev", F);
	assert_hub_tree(fx, &want);
	assert_links(fx, &b, F, NULL);
	fixture_assert_ref(fx, "hub/models--org--name/refs/dev", b.commit);
	unit_fmt(path, sizeof(path), "%s/hub/%s/blobs/%s", fx->root, F,
	    only_a.sha256);
	assert_int_equal(access(path, F_OK), -1);
	unit_fmt(path, sizeof(path), "%s/hub/%s/blobs/%s", fx->root, F,
	    shared.gitsha1);
	assert_int_equal(access(path, F_OK), 0);
	/* The store blobs are the store's: the view never deletes them. */
	assert_int_equal(store_blob_stat(&fx->store, only_a.sha256, NULL), 0);
	assert_tmp_empty(fx);

	/* Unpublishing again, or a commit never published, changes nothing. */
	assert_int_equal(hub_unpublish(&fx->store, F, a.commit), 0);
	assert_hub_tree(fx, &want);
	list_free(&want);

	/* The last snapshot takes the whole folder with it. */
	assert_int_equal(hub_unpublish(&fx->store, F, b.commit), 0);
	unit_fmt(path, sizeof(path), "%s/hub/%s", fx->root, F);
	assert_int_equal(access(path, F_OK), -1);
	{
		struct manifest o;

		start(&o, REPO_MODEL, "org/other");
		fixture_add_file(fx, &o, "config.json", "{\"shared\":2}", 0,
		    NULL);
		finish(&o, "main");
		want_manifest(&want, &o, "models--org--other");
		list_add(&want, "f models--org--other/refs/main");
		manifest_release(&o);
	}
	assert_hub_tree(fx, &want);
	assert_int_equal(store_blob_stat(&fx->store, shared.sha256, NULL), 0);
	assert_int_equal(store_blob_stat(&fx->store, only_b.sha256, NULL), 0);
	assert_tmp_empty(fx);

	list_free(&want);
	manifest_release(&a);
	manifest_release(&b);
}

static int
collect_folder(void *arg, const char *folder)
{
	list_add(arg, "%s", folder);
	return 0;
}

static int
stop_at_first(void *arg, const char *folder)
{
	(*(int *)arg)++;
	return 7;
}

static void
test_each_folder(void **state)
{
	struct fixture *fx = *state;
	struct list got = { 0 }, want = { 0 };
	struct manifest m;
	int calls = 0;

	assert_int_equal(hub_each_folder(&fx->store, collect_folder, &got), 0);
	list_assert_same("empty hub", &got, &want, 1);

	start(&m, REPO_MODEL, "org/name");
	fixture_add_file(fx, &m, "config.json", "{}", 0, NULL);
	finish(&m, "main");
	assert_int_equal(hub_publish(&fx->store, &m), 0);
	manifest_release(&m);
	start(&m, REPO_DATASET, "org/name");
	fixture_add_file(fx, &m, "config.json", "{}", 0, NULL);
	finish(&m, "main");
	assert_int_equal(hub_publish(&fx->store, &m), 0);
	manifest_release(&m);

	assert_int_equal(hub_each_folder(&fx->store, collect_folder, &got), 0);
	list_add(&want, "models--org--name");
	list_add(&want, "datasets--org--name");
	list_assert_same("hub folders", &got, &want, 1);
	assert_int_equal(hub_each_folder(&fx->store, stop_at_first, &calls), 7);
	assert_int_equal(calls, 1);
	list_free(&got);
	list_free(&want);
}

static void
test_folder_parse(void **state)
{
	static const struct {
		const char *folder;
		enum repo_type type;
		const char *repo;
	} good[] = {
		{ "models--org--name", REPO_MODEL, "org/name" },
		{ "models--gpt2", REPO_MODEL, "gpt2" },
		{ "datasets--a--b", REPO_DATASET, "a/b" },
		{ "spaces--a--b", REPO_SPACE, "a/b" },
		{ "models--Org_1--Na.me-2", REPO_MODEL, "Org_1/Na.me-2" },
	};
	static const char *const bad[] = { "foo", "models--", "models--a--b--c",
		"kernels--a--b", "models", "models-a--b", "model--a--b",
		"Models--a--b", "models----b", "models--a--", "models--a--b/c",
		"", ".locks", "CACHEDIR.TAG" };
	char repo[REF_FOLDER_MAX], back[REF_FOLDER_MAX];
	enum repo_type type;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		type = REPO_SPACE + 1;
		memset(repo, 'x', sizeof(repo));
		if (hub_folder_parse(good[i].folder, &type, repo,
			sizeof(repo)) != 0)
			fail_msg("hub_folder_parse(\"%s\") failed",
			    good[i].folder);
		assert_int_equal(type, good[i].type);
		assert_string_equal(repo, good[i].repo);
		/* And back again. */
		assert_int_equal(ref_folder_of(type, repo, back, sizeof(back)),
		    0);
		assert_string_equal(back, good[i].folder);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hub_folder_parse(bad[i], &type, repo, sizeof(repo)) !=
		    -EINVAL)
			fail_msg("hub_folder_parse(\"%s\") accepted it",
			    bad[i]);
	/* A buffer too small for the repo is refused, not overrun. */
	assert_int_equal(hub_folder_parse("models--org--name", &type, repo, 4),
	    -EINVAL);
}

/* Writes len bytes as the store-relative file rel, replacing it. */
static void
put(struct fixture *fx, const char *rel, const char *content, size_t len)
{
	char path[PATH];
	FILE *f;

	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	unlink(path);
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Publishes a one-file model org/name at rev; its commit in m. */
static void
publish_one(struct fixture *fx, struct manifest *m, const char *content,
    const char *rev)
{
	start(m, REPO_MODEL, "org/name");
	fixture_add_file(fx, m, "config.json", content, 0, NULL);
	finish(m, rev);
	assert_int_equal(hub_publish(&fx->store, m), 0);
}

/*
 * hub_ref_read() gives what hub_publish() wrote and the ref's age on the
 * store's clock; hub_ref_touch() makes it young again, and nothing else.
 */
static void
test_ref_read_touch(void **state)
{
	struct fixture *fx = *state;
	char commit[DIGEST_SHA1_HEX + 1], path[PATH];
	struct timespec old[2];
	struct manifest m, d;
	int64_t age = -1;

	publish_one(fx, &m, "{}", "main");
	assert_int_equal(hub_ref_read(&fx->store, "models--org--name", "main",
			     commit, &age),
	    0);
	assert_string_equal(commit, m.commit);
	assert_true(age >= 0 && age < 3600);

	/* Confirmed a day ago: its age says so; a touch confirms it now. */
	unit_fmt(path, sizeof(path), "%s/hub/models--org--name/refs/main",
	    fx->root);
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 86400;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	assert_int_equal(hub_ref_read(&fx->store, "models--org--name", "main",
			     commit, &age),
	    0);
	assert_true(age >= 86400 - 3600);
	assert_int_equal(hub_ref_touch(&fx->store, "models--org--name", "main"),
	    0);
	assert_int_equal(hub_ref_read(&fx->store, "models--org--name", "main",
			     commit, NULL),
	    0);
	assert_string_equal(commit, m.commit);
	assert_int_equal(hub_ref_read(&fx->store, "models--org--name", "main",
			     commit, &age),
	    0);
	assert_true(age < 86400 - 3600);

	/* A nested revision name reads the same way. */
	start(&d, REPO_DATASET, "org/data");
	fixture_add_file(fx, &d, "a.csv", "a\n", 0, NULL);
	finish(&d, "refs/pr/1");
	assert_int_equal(hub_publish(&fx->store, &d), 0);
	assert_int_equal(hub_ref_read(&fx->store, "datasets--org--data",
			     "refs/pr/1", commit, NULL),
	    0);
	assert_string_equal(commit, d.commit);

	/* Touching a ref that is not there creates nothing. */
	assert_int_equal(hub_ref_touch(&fx->store, "models--org--name", "v9"),
	    -ENOENT);
	unit_fmt(path, sizeof(path), "%s/hub/models--org--name/refs/v9",
	    fx->root);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(hub_ref_touch(&fx->store, "models--org--name",
			     "../main"),
	    -EINVAL);
	manifest_release(&m);
	manifest_release(&d);
}

/*
 * A missing ref is -ENOENT; one that is not exactly 40 hex digits in a
 * regular file is -EINVAL, a FIFO included (without blocking); commit is
 * left as it was, and the ref file as it is.
 */
static void
test_ref_read_bad(void **state)
{
	struct fixture *fx = *state;
	static const char *const bad[] = {
		"0123456789abcdef0123456789abcdef01234567\n", /* newline */
		"0123456789ABCDEF0123456789ABCDEF01234567",   /* uppercase */
		"0123456789abcdef0123456789abcdef0123456",    /* 39 */
		"0123456789abcdef0123456789abcdef0123456x",   /* not hex */
		"",
	};
	const char *folder = "models--org--name";
	char commit[DIGEST_SHA1_HEX + 1], path[PATH], rel[PATH];
	struct manifest m;
	size_t i;

	publish_one(fx, &m, "{}", "main");
	memset(commit, 'z', sizeof(commit));
	assert_int_equal(hub_ref_read(&fx->store, folder, "v1", commit, NULL),
	    -ENOENT);
	assert_int_equal(hub_ref_read(&fx->store, "models--no--such", "main",
			     commit, NULL),
	    -ENOENT);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(fx, "hub/models--org--name/refs/main", bad[i],
		    strlen(bad[i]));
		if (hub_ref_read(&fx->store, folder, "main", commit, NULL) !=
		    -EINVAL)
			fail_msg("ref '%s' was not refused", bad[i]);
	}
	/* Bad names never reach a path. */
	assert_int_equal(hub_ref_read(&fx->store, folder, "../../../x", commit,
			     NULL),
	    -EINVAL);
	assert_int_equal(hub_ref_read(&fx->store, "a/b", "main", commit, NULL),
	    -EINVAL);
	/* A FIFO, a symlink, a directory: refused, never waited on. */
	unit_fmt(rel, sizeof(rel), "hub/%s/refs/fifo", folder);
	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_int_equal(hub_ref_read(&fx->store, folder, "fifo", commit, NULL),
	    -EINVAL);
	unit_fmt(path, sizeof(path), "%s/hub/%s/refs/link", fx->root, folder);
	assert_int_equal(symlink("main", path), 0);
	assert_int_equal(hub_ref_read(&fx->store, folder, "link", commit, NULL),
	    -EINVAL);
	unit_fmt(path, sizeof(path), "%s/hub/%s/refs/dir", fx->root, folder);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(hub_ref_read(&fx->store, folder, "dir", commit, NULL),
	    -EINVAL);
	for (i = 0; i < DIGEST_SHA1_HEX; i++)
		assert_int_equal(commit[i], 'z');
	/* The bad ref is still there for fsck to see and repair. */
	unit_fmt(path, sizeof(path), "%s/hub/%s/refs/main", fx->root, folder);
	assert_int_equal(access(path, F_OK), 0);
	manifest_release(&m);
}

static void
test_snapshot_dir(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(hub_snapshot_dir("models--org--name",
			     "0123456789abcdef0123456789abcdef01234567", buf,
			     sizeof(buf)),
	    0);
	assert_string_equal(buf,
	    "hub/models--org--name/snapshots/"
	    "0123456789abcdef0123456789abcdef01234567");
	assert_int_equal(hub_snapshot_dir("models--org--name",
			     "0123456789abcdef0123456789abcdef01234567", buf,
			     20),
	    -ENAMETOOLONG);
}

/* Parses text and locates it with name and revision: store_locate's rc. */
static int
locate(const char *text, const char *name, const char *revision,
    struct store_place *p)
{
	const char *why;
	struct ref ref;
	int rc;

	ref_init(&ref);
	if (ref_parse(&ref, text, &why) < 0)
		fail_msg("'%s': %s", text, why);
	rc = store_locate(&ref, name, revision, p);
	ref_release(&ref);
	return rc;
}

static void
assert_place(const struct store_place *p, enum repo_type type, const char *repo,
    const char *folder, const char *revision, int is_commit)
{
	assert_int_equal(p->type, type);
	assert_string_equal(p->repo, repo);
	assert_string_equal(p->folder, folder);
	assert_string_equal(p->revision, revision);
	assert_int_equal(p->is_commit, is_commit);
}

#define C40 "0123456789abcdef0123456789abcdef01234567"
#define S64 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void
test_store_locate(void **state)
{
	struct store_place p;

	(void)state;
	/* hf://: a branch by default, a tag, a commit id, a dataset. */
	assert_int_equal(locate("org/name", NULL, NULL, &p), 0);
	assert_place(&p, REPO_MODEL, "org/name", "models--org--name", "main",
	    0);
	assert_int_equal(locate("hf://org/name@v1.0", NULL, NULL, &p), 0);
	assert_place(&p, REPO_MODEL, "org/name", "models--org--name", "v1.0",
	    0);
	assert_int_equal(locate("org/name@" C40, NULL, NULL, &p), 0);
	assert_place(&p, REPO_MODEL, "org/name", "models--org--name", C40, 1);
	assert_int_equal(locate("org/name@0123456", NULL, NULL, &p), 0);
	assert_place(&p, REPO_MODEL, "org/name", "models--org--name", "0123456",
	    0);
	assert_int_equal(locate("hf://datasets/org/d@refs/pr/1", NULL, NULL,
			     &p),
	    0);
	assert_place(&p, REPO_DATASET, "org/d", "datasets--org--d", "refs/pr/1",
	    0);
	/* An import's --revision; an hf:// reference takes no other name. */
	assert_int_equal(locate("org/name", NULL, "v2", &p), 0);
	assert_place(&p, REPO_MODEL, "org/name", "models--org--name", "v2", 0);
	assert_int_equal(locate("org/name", "other/name", NULL, &p), -EINVAL);

	/* https://: named after host and file, or as the caller says. */
	assert_int_equal(locate("https://example.com:8443/a/model.gguf"
				"#sha256=" S64,
			     NULL, NULL, &p),
	    0);
	assert_place(&p, REPO_MODEL, "example.com/model.gguf",
	    "models--example.com--model.gguf", "main", 0);
	assert_int_equal(locate("https://example.com/a/model.gguf", "me/m",
			     "v3", &p),
	    0);
	assert_place(&p, REPO_MODEL, "me/m", "models--me--m", "v3", 0);
	assert_int_equal(locate("https://example.com/a/model.gguf", "a..b",
			     NULL, &p),
	    -EINVAL);

	/* file://: a local directory needs a name. */
	assert_int_equal(locate("file:///models/x", NULL, NULL, &p), -EINVAL);
	assert_int_equal(locate("file:///models/x", "org/local", NULL, &p), 0);
	assert_place(&p, REPO_MODEL, "org/local", "models--org--local", "main",
	    0);
	assert_int_equal(locate("file:///models/x", "org/local", C40, &p), 0);
	assert_place(&p, REPO_MODEL, "org/local", "models--org--local", C40, 1);

	/* Other kinds are not stored (yet); bad revisions are refused. */
	assert_int_equal(locate("s3://bucket/prefix", "org/s3", NULL, &p),
	    -EINVAL);
	assert_int_equal(locate("org/name", NULL, "a..b", &p), -EINVAL);
}

/*
 * hub_resolve(): a branch is its ref in the view (which wins over the
 * index, with its age: 1); a commit id, a prefix, or a branch the view
 * has no ref for, asks the index (0).
 */
static void
test_resolve(void **state)
{
	struct fixture *fx = *state;
	char commit[DIGEST_SHA1_HEX + 1], prefix[8];
	struct store_place p;
	struct manifest a, b;
	struct index index;
	int64_t age;

	assert_int_equal(index_open(&index, &fx->store, NULL), 0);
	start(&a, REPO_MODEL, "org/name");
	fixture_add_file(fx, &a, "config.json", "{\"a\":1}", 0, NULL);
	finish(&a, "main");
	assert_int_equal(snapshot_publish(&fx->store, &index, &a, 1000), 0);
	start(&b, REPO_MODEL, "org/name");
	fixture_add_file(fx, &b, "config.json", "{\"b\":2}", 0, NULL);
	finish(&b, "v2");
	assert_int_equal(snapshot_publish(&fx->store, &index, &b, 1000), 0);

	/* A branch: its ref, young. */
	assert_int_equal(locate("org/name@main", NULL, NULL, &p), 0);
	assert_int_equal(hub_resolve(&fx->store, &index, &p, commit, &age), 1);
	assert_string_equal(commit, a.commit);
	assert_true(age >= 0 && age < 3600);

	/* The commit ids, whole and as a prefix: the index, no age. */
	assert_int_equal(locate("org/name", NULL, b.commit, &p), 0);
	assert_int_equal(hub_resolve(&fx->store, &index, &p, commit, &age), 0);
	assert_string_equal(commit, b.commit);
	memcpy(prefix, a.commit, 7);
	prefix[7] = '\0';
	assert_int_equal(locate("org/name", NULL, prefix, &p), 0);
	assert_int_equal(hub_resolve(&fx->store, &index, &p, commit, NULL), 0);
	assert_string_equal(commit, a.commit);

	/* The view's ref is the truth: moved, it answers before the index. */
	put(fx, "hub/models--org--name/refs/main", b.commit, DIGEST_SHA1_HEX);
	assert_int_equal(locate("org/name", NULL, NULL, &p), 0);
	assert_int_equal(hub_resolve(&fx->store, &index, &p, commit, &age), 1);
	assert_string_equal(commit, b.commit);
	assert_true(age >= 0);

	/* Without its ref, a branch the index knows still resolves. */
	assert_int_equal(unlinkat(fx->store.dirfd,
			     "hub/models--org--name/refs/v2", 0),
	    0);
	assert_int_equal(locate("org/name@v2", NULL, NULL, &p), 0);
	assert_int_equal(hub_resolve(&fx->store, &index, &p, commit, &age), 0);
	assert_string_equal(commit, b.commit);

	/* Nothing by that name. */
	assert_int_equal(locate("org/name@nope", NULL, NULL, &p), 0);
	assert_int_equal(hub_resolve(&fx->store, &index, &p, commit, &age),
	    -ENOENT);
	assert_int_equal(locate("org/other", NULL, NULL, &p), 0);
	assert_int_equal(hub_resolve(&fx->store, &index, &p, commit, &age),
	    -ENOENT);

	manifest_release(&a);
	manifest_release(&b);
	index_close(&index);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_target),
		cmocka_unit_test_setup_teardown(test_publish_layout,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_publish_nested_ref_and_types, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(test_publish_idempotent,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_publish_shared_blob,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_check_and_repair,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_check_folder,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test(test_problem_names),
		cmocka_unit_test_setup_teardown(test_unpublish, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(test_each_folder, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test(test_folder_parse),
		cmocka_unit_test_setup_teardown(test_ref_read_touch,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_ref_read_bad,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test(test_snapshot_dir),
		cmocka_unit_test(test_store_locate),
		cmocka_unit_test_setup_teardown(test_resolve, fixture_setup,
		    fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
