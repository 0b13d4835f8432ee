/*
 * test_fsck: unit tests for src/fsck.c, reconciling the store's records.
 *
 * Each test builds a good store of two snapshots (real blobs, manifests,
 * hub view and index rows, the index then opened afresh so that it was
 * not just built), checks that fsck finds nothing in it, and then damages
 * it in one way, the way a crash, a disk or a person can.  fsck must then
 * report exactly that damage, with its kind, path and class (residue or
 * problem), nothing else; with repair set it must report it repaired, and
 * a second run must find nothing at all.  Each test also checks what the
 * repair left: the quarantined file in tmp/, the row back in the index,
 * the snapshot that could not be kept gone, the other one untouched.
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
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "unit_store.h"
#include "fixture.h"

#include "claim.h"
#include "fsck.h"
#include "hub.h"
#include "index.h"
#include "lease.h"
#include "manifest.h"
#include "snapshot.h"
#include "store.h"

#define PATH UNIT_PATH
#define STALE_MS 60000

#define FA "models--org--a"
#define FB "models--org--b"

/*
 * Per-test state: the store + index fixture (fixture.h), and the two
 * snapshots of the good store: A (org/a: config.json, git etag,
 * and model.safetensors, LFS) and B (org/b: config.json and weights.bin).
 */
struct fx {
	struct fixture f;
	char ca[DIGEST_SHA1_HEX + 1], cb[DIGEST_SHA1_HEX + 1];
	struct blob a_cfg, a_model, b_cfg, b_weights;
};

static void
blob_rel(const struct blob *b, char *buf, size_t len)
{
	assert_int_equal(store_blob_path(b->sha256, buf, len), 0);
}

static void
publish(struct fx *fx, struct manifest *m, int64_t now, char *commit)
{
	assert_int_equal(manifest_add_revision(m, "main"), 0);
	assert_int_equal(manifest_derive_commit(m), 0);
	unit_fmt(commit, DIGEST_SHA1_HEX + 1, "%s", m->commit);
	assert_int_equal(snapshot_publish(&fx->f.store, &fx->f.index, m, now),
	    0);
	manifest_release(m);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct manifest m;

	assert_non_null(fx);
	fixture_open(&fx->f, 1);

	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, "org/a",
			     "file:///models/a"),
	    0);
	fixture_add_file(&fx->f, &m, "config.json", "{\"a\":1}\n", 0,
	    &fx->a_cfg);
	fixture_add_file(&fx->f, &m, "model.safetensors", "weights of a", 1,
	    &fx->a_model);
	publish(fx, &m, 1000, fx->ca);

	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, "org/b",
			     "file:///models/b"),
	    0);
	fixture_add_file(&fx->f, &m, "config.json", "{\"b\":2}\n", 0,
	    &fx->b_cfg);
	fixture_add_file(&fx->f, &m, "weights.bin", "weights of b, more", 1,
	    &fx->b_weights);
	publish(fx, &m, 2000, fx->cb);

	/* Opened again, the index was not just built: nothing to say. */
	index_close(&fx->f.index);
	assert_int_equal(index_open(&fx->f.index, &fx->f.store, NULL), 0);
	assert_int_equal(fx->f.index.rebuilt, 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	fixture_close(&fx->f);
	free(fx);
	return 0;
}

/* Records "<kind> <residue> <repaired> <path>" for each issue. */
static void
on_issue(void *arg, const struct fsck_issue *i)
{
	assert_non_null(i->kind);
	assert_non_null(i->path);
	assert_non_null(i->what);
	assert_true(i->what[0] != '\0');
	list_add(arg, "%s %d %d %s", i->kind, i->residue, i->repaired, i->path);
}

/*
 * Runs fsck and compares its reports with the NULL-terminated list of
 * expected "<kind> <residue> <repaired> <path>" lines; checks that the
 * counts agree with them.
 */
static void
run(struct fx *fx, int repair, int hash, ...)
{
	struct fsck_opts o = { repair, hash, STALE_MS, on_issue, NULL };
	struct fsck_result r;
	struct list got = { 0 }, want = { 0 };
	unsigned problems = 0, residue = 0, repaired = 0, unrepaired = 0;
	const char *s;
	char kind[64];
	int res, rep;
	va_list ap;

	va_start(ap, hash);
	while ((s = va_arg(ap, const char *)) != NULL) {
		list_add(&want, "%s", s);
		assert_int_equal(sscanf(s, "%63s %d %d", kind, &res, &rep), 3);
		if (res)
			residue++;
		else
			problems++;
		if (rep)
			repaired++;
		else if (!res)
			unrepaired++;
	}
	va_end(ap);
	o.arg = &got;
	memset(&r, 0xff, sizeof(r));
	assert_int_equal(fsck_run(&fx->f.store, &fx->f.index, &o, &r), 0);
	list_assert_same("fsck reports", &got, &want, 0);
	assert_int_equal(r.problems, problems);
	assert_int_equal(r.residue, residue);
	assert_int_equal(r.repaired, repaired);
	assert_int_equal(r.unrepaired, unrepaired);
	list_free(&got);
	list_free(&want);
}

/* Nothing to report, with or without hashing. */
static void
assert_clean(struct fx *fx)
{
	run(fx, 0, 1, NULL);
	run(fx, 0, 0, NULL);
}

static void
path_of(struct fx *fx, const char *rel, char *buf, size_t len)
{
	unit_fmt(buf, len, "%s/%s", fx->f.root, rel);
}

/* The number of index rows of commit. */
static int
count_one(void *arg, const struct index_snapshot *s)
{
	(*(int *)arg)++;
	return 0;
}

static int
indexed(struct fx *fx, const char *commit)
{
	int n = 0;

	assert_int_equal(index_each_snapshot(&fx->f.index, REPO_MODEL, NULL,
			     commit, count_one, &n),
	    0);
	return n;
}

static int
grab_id(void *arg, const struct index_snapshot *s)
{
	*(int64_t *)arg = s->id;
	return 0;
}

static int64_t
id_of(struct fx *fx, const char *commit)
{
	int64_t id = 0;

	assert_int_equal(indexed(fx, commit), 1);
	assert_int_equal(index_each_snapshot(&fx->f.index, REPO_MODEL, NULL,
			     commit, grab_id, &id),
	    0);
	assert_true(id > 0);
	return id;
}

/* "<host>.<pidns>.<pid>" of a dead process on this host and namespace. */
static void
dead_owner(struct fx *fx, char *buf, size_t len)
{
	const char *dot = strrchr(fx->f.store.owner, '.');

	assert_non_null(dot);
	unit_fmt(buf, len, "%.*s.%ld", (int)(dot - fx->f.store.owner),
	    fx->f.store.owner, (long)fixture_dead_pid());
	assert_int_equal(store_owner_state(&fx->f.store, buf), OWNER_DEAD);
}

static void
test_clean(void **state)
{
	struct fx *fx = *state;

	assert_clean(fx);
	/* Repair on a good store changes nothing. */
	run(fx, 1, 1, NULL);
	assert_clean(fx);
	assert_int_equal(indexed(fx, fx->ca), 1);
	assert_int_equal(indexed(fx, fx->cb), 1);
}

static void
test_blob_corrupt(void **state)
{
	struct fx *fx = *state;
	char rel[PATH], path[PATH], line[PATH + 64];
	unsigned char c;
	int fd;

	blob_rel(&fx->a_model, rel, sizeof(rel));
	path_of(fx, rel, path, sizeof(path));
	assert_int_equal(chmod(path, 0644), 0);
	fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, 3), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, 3), 1);
	close(fd);
	assert_int_equal(chmod(path, 0444), 0);

	/* Sizes match: only hashing finds it. */
	run(fx, 0, 0, NULL);
	unit_fmt(line, sizeof(line), "blob_corrupt 0 0 %s", rel);
	run(fx, 0, 1, line, NULL);

	unit_fmt(line, sizeof(line), "blob_corrupt 0 1 %s", rel);
	run(fx, 1, 1, line, NULL);
	assert_clean(fx);
	/* The bad bytes are kept aside; the snapshot using them is gone. */
	assert_int_equal(fixture_quarantined(fx->f.root, ".corrupt"), 1);
	assert_int_equal(store_blob_stat(&fx->f.store, fx->a_model.sha256,
			     NULL),
	    -ENOENT);
	assert_int_equal(store_blob_stat(&fx->f.store, fx->a_cfg.sha256, NULL),
	    -ENOENT);
	assert_int_equal(indexed(fx, fx->ca), 0);
	unit_fmt(rel, sizeof(rel), "manifests/%s/%s.json", FA, fx->ca);
	assert_false(fixture_exists(&fx->f, rel));
	assert_false(fixture_exists(&fx->f, "hub/" FA));
	/* B is untouched. */
	assert_int_equal(indexed(fx, fx->cb), 1);
	assert_int_equal(store_blob_verify(&fx->f.store, fx->b_weights.sha256,
			     fx->b_weights.size),
	    0);
}

static void
test_blob_missing(void **state)
{
	struct fx *fx = *state;
	char rel[PATH], path[PATH], line[PATH + 64];

	blob_rel(&fx->a_cfg, rel, sizeof(rel));
	path_of(fx, rel, path, sizeof(path));
	assert_int_equal(unlink(path), 0);

	unit_fmt(line, sizeof(line), "blob_missing 0 0 %s", rel);
	run(fx, 0, 0, line, NULL);
	unit_fmt(line, sizeof(line), "blob_missing 0 1 %s", rel);
	run(fx, 1, 0, line, NULL);
	assert_clean(fx);
	/* A snapshot without its bytes is undone; B stays. */
	assert_int_equal(indexed(fx, fx->ca), 0);
	assert_false(fixture_exists(&fx->f, "hub/" FA));
	assert_int_equal(store_blob_stat(&fx->f.store, fx->a_model.sha256,
			     NULL),
	    -ENOENT);
	assert_int_equal(indexed(fx, fx->cb), 1);
	assert_true(fixture_exists(&fx->f, "hub/" FB "/refs/main"));
}

/*
 * A leased snapshot whose blob is missing stays: fsck --repair reports the
 * blob unrepaired and goes on to the rest of the store.
 */
static void
test_blob_missing_leased(void **state)
{
	struct fx *fx = *state;
	char rel[PATH], path[PATH], line[PATH + 64];
	struct lease l = { 0 };

	blob_rel(&fx->a_cfg, rel, sizeof(rel));
	path_of(fx, rel, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(lease_take(&fx->f.store, FA, fx->ca, &l), 0);

	unit_fmt(line, sizeof(line), "blob_missing 0 0 %s", rel);
	run(fx, 1, 0, line, NULL);
	/* Kept whole but for the missing blob; B untouched. */
	assert_int_equal(indexed(fx, fx->ca), 1);
	assert_true(fixture_exists(&fx->f, "hub/" FA "/refs/main"));
	assert_int_equal(store_blob_stat(&fx->f.store, fx->a_model.sha256,
			     NULL),
	    0);
	assert_int_equal(indexed(fx, fx->cb), 1);
	lease_drop(&fx->f.store, &l);
	/* Once the lease is gone, the repair undoes it. */
	unit_fmt(line, sizeof(line), "blob_missing 0 1 %s", rel);
	run(fx, 1, 0, line, NULL);
	assert_int_equal(indexed(fx, fx->ca), 0);
	assert_false(fixture_exists(&fx->f, "hub/" FA));
}

static void
test_blob_mode(void **state)
{
	struct fx *fx = *state;
	char rel[PATH], path[PATH], line[PATH + 64];
	struct stat st;

	blob_rel(&fx->b_cfg, rel, sizeof(rel));
	path_of(fx, rel, path, sizeof(path));
	assert_int_equal(chmod(path, 0644), 0);

	unit_fmt(line, sizeof(line), "blob_mode 0 0 %s", rel);
	run(fx, 0, 0, line, NULL);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	unit_fmt(line, sizeof(line), "blob_mode 0 1 %s", rel);
	run(fx, 1, 0, line, NULL);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0444);
	assert_clean(fx);
	assert_int_equal(indexed(fx, fx->cb), 1);
}

static void
test_blob_orphan(void **state)
{
	struct fx *fx = *state;
	char rel[PATH], line[PATH + 64];
	struct blob o;

	/* Published, but its import stopped before the manifest. */
	fixture_blob(&fx->f, "an orphan", strlen("an orphan"), &o);
	blob_rel(&o, rel, sizeof(rel));

	unit_fmt(line, sizeof(line), "blob_orphan 1 0 %s", rel);
	run(fx, 0, 0, line, NULL);
	assert_int_equal(store_blob_stat(&fx->f.store, o.sha256, NULL), 0);
	unit_fmt(line, sizeof(line), "blob_orphan 1 1 %s", rel);
	run(fx, 1, 0, line, NULL);
	assert_int_equal(store_blob_stat(&fx->f.store, o.sha256, NULL),
	    -ENOENT);
	assert_clean(fx);
	assert_int_equal(store_blob_stat(&fx->f.store, fx->a_cfg.sha256, NULL),
	    0);
}

static void
test_tmp_stale(void **state)
{
	struct fx *fx = *state;
	char owner[STORE_OWNER_MAX], name[PATH], live[PATH], line[PATH + 64];
	int fd;

	dead_owner(fx, owner, sizeof(owner));
	unit_fmt(name, sizeof(name), "tmp/%s.xyz", owner);
	assert_int_equal(store_write_atomic(&fx->f.store, name, "x", 1, 0600),
	    0);
	/* A tmp file of this live process: work in flight. */
	fd = store_tmp_create(&fx->f.store, ".part", live, sizeof(live));
	assert_true(fd >= 0);
	close(fd);

	unit_fmt(line, sizeof(line), "tmp_stale 1 0 %s", name);
	run(fx, 0, 0, line, NULL);
	assert_true(fixture_exists(&fx->f, name));
	unit_fmt(line, sizeof(line), "tmp_stale 1 1 %s", name);
	run(fx, 1, 0, line, NULL);
	assert_false(fixture_exists(&fx->f, name));
	assert_true(fixture_exists(&fx->f, live));
	assert_clean(fx);
	assert_true(fixture_exists(&fx->f, live));
}

static void
test_claim_stale(void **state)
{
	struct fx *fx = *state;
	char owner[STORE_OWNER_MAX], rel[PATH], text[PATH], line[PATH + 64];
	struct claim live = { 0 };

	dead_owner(fx, owner, sizeof(owner));
	unit_fmt(rel, sizeof(rel), "claims/%s", fx->a_cfg.sha256);
	unit_fmt(text, sizeof(text), "%s 123\n", owner);
	assert_int_equal(store_write_atomic(&fx->f.store, rel, text,
			     strlen(text), 0644),
	    0);
	/* A claim of this live process is not stale. */
	assert_int_equal(claim_try(&fx->f.store, &live, fx->b_cfg.sha256,
			     claim_now_ms(), STALE_MS),
	    0);

	unit_fmt(line, sizeof(line), "claim_stale 1 0 %s", rel);
	run(fx, 0, 0, line, NULL);
	assert_true(fixture_exists(&fx->f, rel));
	unit_fmt(line, sizeof(line), "claim_stale 1 1 %s", rel);
	run(fx, 1, 0, line, NULL);
	assert_false(fixture_exists(&fx->f, rel));
	unit_fmt(rel, sizeof(rel), "claims/%s", fx->b_cfg.sha256);
	assert_true(fixture_exists(&fx->f, rel));
	assert_clean(fx);
	assert_true(live.held);
	claim_release(&fx->f.store, &live);
	assert_false(fixture_exists(&fx->f, rel));
}

static void
test_manifest_unindexed(void **state)
{
	struct fx *fx = *state;
	char line[PATH + 64], commit[DIGEST_SHA1_HEX + 1];

	/* A publish stopped after the manifest and view, before the index. */
	assert_int_equal(index_remove(&fx->f.index, id_of(fx, fx->ca)), 0);
	assert_int_equal(indexed(fx, fx->ca), 0);

	unit_fmt(line, sizeof(line),
	    "manifest_unindexed 1 0 manifests/%s/%s.json", FA, fx->ca);
	run(fx, 0, 0, line, NULL);
	assert_int_equal(indexed(fx, fx->ca), 0);
	unit_fmt(line, sizeof(line),
	    "manifest_unindexed 1 1 manifests/%s/%s.json", FA, fx->ca);
	run(fx, 1, 0, line, NULL);
	assert_clean(fx);
	/* The row is back, refs with it. */
	assert_int_equal(indexed(fx, fx->ca), 1);
	assert_int_equal(index_resolve(&fx->f.index, REPO_MODEL, "org/a",
			     "main", commit),
	    0);
	assert_string_equal(commit, fx->ca);
}

static void
test_index_stale(void **state)
{
	struct fx *fx = *state;
	char rel[PATH], path[PATH], l1[PATH], l2[PATH], l3[PATH], l4[PATH];
	char r1[PATH], r2[PATH];

	unit_fmt(rel, sizeof(rel), "manifests/%s/%s.json", FA, fx->ca);
	path_of(fx, rel, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	blob_rel(&fx->a_cfg, r1, sizeof(r1));
	blob_rel(&fx->a_model, r2, sizeof(r2));

	/*
	 * Without its manifest the row is stale, the view's snapshot a stray
	 * and the blobs orphans: what a removal stopped past its commit
	 * point leaves, residue.
	 */
	unit_fmt(l1, sizeof(l1), "index_stale 1 0 manifests/%s/%s.json", FA,
	    fx->ca);
	unit_fmt(l2, sizeof(l2), "hub_snapshot_stray 1 0 hub/%s/snapshots/%s",
	    FA, fx->ca);
	unit_fmt(l3, sizeof(l3), "blob_orphan 1 0 %s", r1);
	unit_fmt(l4, sizeof(l4), "blob_orphan 1 0 %s", r2);
	run(fx, 0, 0, l1, l2, l3, l4, NULL);
	assert_int_equal(indexed(fx, fx->ca), 1);

	unit_fmt(l1, sizeof(l1), "index_stale 1 1 manifests/%s/%s.json", FA,
	    fx->ca);
	unit_fmt(l2, sizeof(l2), "hub_snapshot_stray 1 1 hub/%s/snapshots/%s",
	    FA, fx->ca);
	unit_fmt(l3, sizeof(l3), "blob_orphan 1 1 %s", r1);
	unit_fmt(l4, sizeof(l4), "blob_orphan 1 1 %s", r2);
	run(fx, 1, 0, l1, l2, l3, l4, NULL);
	assert_clean(fx);
	assert_int_equal(indexed(fx, fx->ca), 0);
	assert_false(fixture_exists(&fx->f, "hub/" FA));
	assert_false(fixture_exists(&fx->f, r1));
	assert_false(fixture_exists(&fx->f, r2));
	assert_int_equal(indexed(fx, fx->cb), 1);
}

/* Renames ca's manifest aside as a removal of a dead owner would have. */
static void
set_aside(struct fx *fx, char *rel, size_t len)
{
	char owner[STORE_OWNER_MAX], from[PATH], to[PATH];

	dead_owner(fx, owner, sizeof(owner));
	unit_fmt(rel, len, "manifests/%s/%s.json.removing.%s", FA, fx->ca,
	    owner);
	unit_fmt(from, sizeof(from), "%s/manifests/%s/%s.json", fx->f.root, FA,
	    fx->ca);
	path_of(fx, rel, to, sizeof(to));
	assert_int_equal(rename(from, to), 0);
}

/*
 * A removal killed just after its commit point (the manifest renamed
 * aside): while a lease names the snapshot, repair puts the manifest back
 * and the snapshot is whole; without one, the aside file goes and the rest
 * is the residue of any removal stopped past its commit point.
 */
static void
test_manifest_removing(void **state)
{
	struct fx *fx = *state;
	struct lease l = { 0 };
	char rel[PATH], l0[PATH], l1[PATH], l2[PATH], l3[PATH], l4[PATH];
	char r1[PATH], r2[PATH], mf[PATH];

	unit_fmt(mf, sizeof(mf), "manifests/%s/%s.json", FA, fx->ca);
	blob_rel(&fx->a_cfg, r1, sizeof(r1));
	blob_rel(&fx->a_model, r2, sizeof(r2));
	unit_fmt(l1, sizeof(l1), "index_stale 1 0 %s", mf);
	unit_fmt(l2, sizeof(l2), "hub_snapshot_stray 1 0 hub/%s/snapshots/%s",
	    FA, fx->ca);
	unit_fmt(l3, sizeof(l3), "blob_orphan 1 0 %s", r1);
	unit_fmt(l4, sizeof(l4), "blob_orphan 1 0 %s", r2);

	/* Leased: reported, then put back whole. */
	set_aside(fx, rel, sizeof(rel));
	assert_int_equal(lease_take(&fx->f.store, FA, fx->ca, &l), 0);
	unit_fmt(l0, sizeof(l0), "manifest_removing 1 0 %s", rel);
	run(fx, 0, 0, l0, l1, l2, l3, l4, NULL);
	assert_true(fixture_exists(&fx->f, rel));
	unit_fmt(l0, sizeof(l0), "manifest_removing 1 1 %s", rel);
	run(fx, 1, 1, l0, NULL);
	assert_clean(fx);
	assert_true(fixture_exists(&fx->f, mf));
	assert_false(fixture_exists(&fx->f, rel));
	assert_int_equal(indexed(fx, fx->ca), 1);
	assert_true(fixture_exists(&fx->f, r1));
	lease_drop(&fx->f.store, &l);

	/* No lease: the aside file goes, and the removal's residue. */
	set_aside(fx, rel, sizeof(rel));
	unit_fmt(l0, sizeof(l0), "manifest_removing 1 1 %s", rel);
	unit_fmt(l1, sizeof(l1), "index_stale 1 1 %s", mf);
	unit_fmt(l2, sizeof(l2), "hub_snapshot_stray 1 1 hub/%s/snapshots/%s",
	    FA, fx->ca);
	unit_fmt(l3, sizeof(l3), "blob_orphan 1 1 %s", r1);
	unit_fmt(l4, sizeof(l4), "blob_orphan 1 1 %s", r2);
	run(fx, 1, 0, l0, l1, l2, l3, l4, NULL);
	assert_clean(fx);
	assert_false(fixture_exists(&fx->f, rel));
	assert_false(fixture_exists(&fx->f, mf));
	assert_int_equal(indexed(fx, fx->ca), 0);
	assert_int_equal(indexed(fx, fx->cb), 1);
}

static void
test_manifest_bad(void **state)
{
	static const char garbage[] = "{\"format\":1,\"files\":[ not json";
	struct fx *fx = *state;
	char rel[PATH], line[PATH + 64];

	unit_fmt(rel, sizeof(rel), "manifests/models--org--c/%s.json",
	    "cccccccccccccccccccccccccccccccccccccccc");
	assert_int_equal(store_write_atomic(&fx->f.store, rel, garbage,
			     sizeof(garbage) - 1, 0444),
	    0);

	unit_fmt(line, sizeof(line), "manifest_bad 0 0 %s", rel);
	run(fx, 0, 0, line, NULL);
	assert_true(fixture_exists(&fx->f, rel));
	unit_fmt(line, sizeof(line), "manifest_bad 0 1 %s", rel);
	run(fx, 1, 0, line, NULL);
	assert_false(fixture_exists(&fx->f, rel));
	assert_int_equal(fixture_quarantined(fx->f.root, ".json.manifest"), 1);
	assert_clean(fx);
	assert_int_equal(indexed(fx, fx->ca), 1);
	assert_int_equal(indexed(fx, fx->cb), 1);
}

static void
test_hub_ref_bad(void **state)
{
	struct fx *fx = *state;
	char rel[PATH], text[64], line[PATH + 64], *buf = NULL;
	size_t len = 0;

	unit_fmt(rel, sizeof(rel), "hub/%s/refs/main", FA);
	unit_fmt(text, sizeof(text), "%s\n", fx->ca);
	assert_int_equal(store_write_atomic(&fx->f.store, rel, text,
			     strlen(text), 0644),
	    0);

	unit_fmt(line, sizeof(line), "hub_ref_bad 0 0 %s", rel);
	run(fx, 0, 0, line, NULL);
	unit_fmt(line, sizeof(line), "hub_ref_bad 0 1 %s", rel);
	run(fx, 1, 0, line, NULL);
	assert_clean(fx);
	/* Written again, exactly 40 hex digits. */
	assert_int_equal(store_read_file(&fx->f.store, rel, 64, &buf, &len), 0);
	assert_int_equal(len, DIGEST_SHA1_HEX);
	assert_string_equal(buf, fx->ca);
	free(buf);
}

static void
test_hub_entry_missing(void **state)
{
	struct fx *fx = *state;
	char rel[PATH], path[PATH], line[PATH + 64], target[PATH];
	ssize_t n;

	unit_fmt(rel, sizeof(rel), "hub/%s/snapshots/%s/config.json", FA,
	    fx->ca);
	path_of(fx, rel, path, sizeof(path));
	assert_int_equal(unlink(path), 0);

	unit_fmt(line, sizeof(line), "hub_entry_missing 0 0 %s", rel);
	run(fx, 0, 0, line, NULL);
	assert_false(fixture_exists(&fx->f, rel));
	unit_fmt(line, sizeof(line), "hub_entry_missing 0 1 %s", rel);
	run(fx, 1, 0, line, NULL);
	assert_clean(fx);
	n = readlink(path, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	unit_fmt(line, sizeof(line), "../../blobs/%s", fx->a_cfg.gitsha1);
	assert_string_equal(target, line);
}

/* What a removal killed after moving the last snapshot out leaves. */
static void
test_hub_folder_empty(void **state)
{
	struct fx *fx = *state;
	const char *rel = "hub/models--org--gone";
	char line[PATH + 64];

	assert_int_equal(store_mkdirs(&fx->f.store,
			     "hub/models--org--gone/"
			     "snapshots"),
	    0);
	unit_fmt(line, sizeof(line), "hub_folder_empty 1 0 %s", rel);
	run(fx, 0, 0, line, NULL);
	assert_true(fixture_exists(&fx->f, rel));
	unit_fmt(line, sizeof(line), "hub_folder_empty 1 1 %s", rel);
	run(fx, 1, 0, line, NULL);
	assert_false(fixture_exists(&fx->f, rel));
	assert_clean(fx);
}

static void
test_hub_snapshot_stray(void **state)
{
	struct fx *fx = *state;
	char rel[PATH], line[PATH + 64];

	unit_fmt(rel, sizeof(rel), "hub/%s/snapshots/%s", FA,
	    "dddddddddddddddddddddddddddddddddddddddd");
	assert_int_equal(store_mkdirs(&fx->f.store, rel), 0);

	unit_fmt(line, sizeof(line), "hub_snapshot_stray 1 0 %s", rel);
	run(fx, 0, 0, line, NULL);
	assert_true(fixture_exists(&fx->f, rel));
	unit_fmt(line, sizeof(line), "hub_snapshot_stray 1 1 %s", rel);
	run(fx, 1, 0, line, NULL);
	assert_false(fixture_exists(&fx->f, rel));
	assert_clean(fx);
	/* The real snapshot stays. */
	unit_fmt(rel, sizeof(rel), "hub/%s/snapshots/%s/config.json", FA,
	    fx->ca);
	assert_true(fixture_exists(&fx->f, rel));
	assert_true(fixture_exists(&fx->f, "hub/" FA "/refs/main"));
}

static void
test_hub_snapshot_missing(void **state)
{
	struct fx *fx = *state;

	/* A view folder a removal stopped in, with no manifest left. */
	assert_int_equal(store_mkdirs(&fx->f.store,
			     "hub/models--org--ghost/blobs"),
	    0);

	run(fx, 0, 0,
	    "hub_snapshot_missing 1 0 hub/models--org--ghost/snapshots", NULL);
	assert_true(fixture_exists(&fx->f, "hub/models--org--ghost"));
	run(fx, 1, 0,
	    "hub_snapshot_missing 1 1 hub/models--org--ghost/snapshots", NULL);
	assert_false(fixture_exists(&fx->f, "hub/models--org--ghost"));
	assert_clean(fx);
	assert_true(fixture_exists(&fx->f, "hub/" FA "/refs/main"));
	assert_true(fixture_exists(&fx->f, "hub/" FB "/refs/main"));
}

static void
test_blob_stray(void **state)
{
	static const char rel[] = "blobs/sha256/00/notahash";
	struct fx *fx = *state;

	assert_int_equal(store_write_atomic(&fx->f.store, rel, "stray", 5,
			     0444),
	    0);

	run(fx, 0, 0, "blob_stray 0 0 blobs/sha256/00/notahash", NULL);
	assert_true(fixture_exists(&fx->f, rel));
	run(fx, 1, 0, "blob_stray 0 1 blobs/sha256/00/notahash", NULL);
	assert_false(fixture_exists(&fx->f, rel));
	assert_int_equal(fixture_quarantined(fx->f.root, ".notahash.stray"), 1);
	assert_clean(fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blob_corrupt, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_blob_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_blob_missing_leased, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_blob_mode, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_blob_orphan, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tmp_stale, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_claim_stale, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_manifest_unindexed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_index_stale, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_manifest_removing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_manifest_bad, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hub_ref_bad, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hub_entry_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hub_folder_empty, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hub_snapshot_stray, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hub_snapshot_missing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_blob_stray, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
