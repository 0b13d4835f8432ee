/*
 * test_snapshot: unit tests for src/snapshot.c, publishing and removing a
 * model revision as a whole.
 *
 * A publish is checked in each of the three places it writes: the manifest
 * file (loaded back from disk), the hub view (refs byte for byte, snapshot
 * links followed to the store blob's inode) and the index rows.  A second
 * publish of the same commit must merge with the first (revisions added,
 * created and pinned kept); a publish of another commit under a taken name
 * must take the name off the older manifest on disk as well as move the
 * index ref.  Removal must undo all three and delete exactly the blobs no
 * other snapshot uses, counting their bytes, and must leave alone a blob
 * whose claim someone else holds, and must leave whole a snapshot that a
 * live lease names, however late the lease came.  Every test runs in its own temporary
 * store, built from real blobs ingested through store.h.
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

#include "unit.h"
#include "unit_store.h"
#include "fixture.h"

#include "claim.h"
#include "hub.h"
#include "index.h"
#include "lease.h"
#include "manifest.h"
#include "snapshot.h"
#include "store.h"

#define PATH UNIT_PATH

static void
start(struct manifest *m, const char *repo)
{
	manifest_init(m);
	assert_int_equal(manifest_set_origin(m, REPO_MODEL, repo,
			     "file:///models/x"),
	    0);
}

/* Names m's revisions, derives its commit and copies it out. */
static void
finish(struct manifest *m, const char *rev1, const char *rev2, char *commit)
{
	if (rev1 != NULL)
		assert_int_equal(manifest_add_revision(m, rev1), 0);
	if (rev2 != NULL)
		assert_int_equal(manifest_add_revision(m, rev2), 0);
	assert_int_equal(manifest_derive_commit(m), 0);
	unit_fmt(commit, DIGEST_SHA1_HEX + 1, "%s", m->commit);
}

/* A ref list "a,b" holds name as a whole item. */
static int
refs_have(const char *refs, const char *name)
{
	size_t n = strlen(name);
	const char *p = refs;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == refs || p[-1] == ',') &&
		    (p[n] == ',' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

/* Loads the manifest of folder/commit from its file. */
static void
load(struct fixture *fx, const char *folder, const char *commit,
    struct manifest *m)
{
	char rel[PATH];
	const char *why = NULL;

	unit_fmt(rel, sizeof(rel), "manifests/%s/%s.json", folder, commit);
	manifest_init(m);
	assert_int_equal(manifest_load(&fx->store, rel, m, &why), 0);
	assert_string_equal(m->commit, commit);
}

/* Checks that the ref file holds exactly commit, no newline. */
static void
assert_ref(struct fixture *fx, const char *folder, const char *name,
    const char *commit)
{
	char rel[PATH];

	unit_fmt(rel, sizeof(rel), "hub/%s/refs/%s", folder, name);
	fixture_assert_ref(fx, rel, commit);
}

/*
 * The hub view of m's snapshot: each entry a symlink that reaches the store
 * blob's inode, and each hub blob a hard link of that inode.
 */
static void
assert_view(struct fixture *fx, const char *folder, const struct manifest *m)
{
	char path[PATH], rel[PATH];
	struct stat sb, lb;
	size_t i;

	for (i = 0; i < m->nfiles; i++) {
		const struct manifest_file *f = &m->files[i];

		assert_int_equal(store_blob_path(f->sha256, rel, sizeof(rel)),
		    0);
		unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
		assert_int_equal(lstat(path, &sb), 0);
		unit_fmt(path, sizeof(path), "%s/hub/%s/snapshots/%s/%s",
		    fx->root, folder, m->commit, f->path);
		assert_int_equal(lstat(path, &lb), 0);
		assert_true(S_ISLNK(lb.st_mode));
		assert_int_equal(stat(path, &lb), 0);
		assert_int_equal(lb.st_ino, sb.st_ino);
		assert_int_equal((uint64_t)lb.st_size, f->size);
		unit_fmt(path, sizeof(path), "%s/hub/%s/blobs/%s", fx->root,
		    folder, f->etag);
		assert_int_equal(lstat(path, &lb), 0);
		assert_true(S_ISREG(lb.st_mode));
		assert_int_equal(lb.st_ino, sb.st_ino);
	}
}

static void
test_publish(void **state)
{
	static const char F[] = "models--org--a";
	struct fixture *fx = *state;
	struct blob cfg, model;
	struct manifest m, got;
	struct fixture_files files;
	struct fixture_snap s;
	char C[DIGEST_SHA1_HEX + 1], commit[DIGEST_SHA1_HEX + 1];
	const char *why;
	int64_t refs;

	start(&m, "org/a");
	fixture_add_file(fx, &m, "config.json", "{\"a\":1}\n", 0, &cfg);
	fixture_add_file(fx, &m, "model.safetensors", "weights", 1, &model);
	finish(&m, "main", NULL, C);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 1000), 0);
	assert_int_equal(m.created, 1000);
	assert_int_equal(m.updated, 1000);
	manifest_release(&m);

	/* The manifest, read back from its file. */
	load(fx, F, C, &got);
	assert_string_equal(got.repo, "org/a");
	assert_int_equal(got.type, REPO_MODEL);
	assert_string_equal(got.source, "file:///models/x");
	assert_int_equal(got.nrevisions, 1);
	assert_string_equal(got.revisions[0], "main");
	assert_int_equal(got.created, 1000);
	assert_int_equal(got.updated, 1000);
	assert_int_equal(got.pinned, 0);
	assert_int_equal(got.nfiles, 2);
	assert_string_equal(got.files[0].path, "config.json");
	assert_int_equal(got.files[0].size, cfg.size);
	assert_string_equal(got.files[0].sha256, cfg.sha256);
	assert_string_equal(got.files[0].etag, cfg.gitsha1);
	assert_string_equal(got.files[1].path, "model.safetensors");
	assert_int_equal(got.files[1].size, model.size);
	assert_string_equal(got.files[1].sha256, model.sha256);
	assert_string_equal(got.files[1].etag, model.sha256);

	/* The hub view: links to the store blobs, the ref. */
	assert_view(fx, F, &got);
	assert_ref(fx, F, "main", C);
	manifest_release(&got);

	/* snapshot_manifest() finds the same file. */
	manifest_init(&got);
	assert_int_equal(snapshot_manifest(&fx->store, F, C, &got, &why), 0);
	assert_string_equal(got.commit, C);
	assert_int_equal(got.nfiles, 2);
	manifest_release(&got);

	/* The index rows. */
	s = fixture_one(fx, C);
	assert_string_equal(s.repo, "org/a");
	assert_string_equal(s.folder, F);
	assert_string_equal(s.refs, "main");
	assert_int_equal(s.size, cfg.size + model.size);
	assert_int_equal(s.nfiles, 2);
	assert_int_equal(s.created, 1000);
	assert_int_equal(s.updated, 1000);
	assert_int_equal(s.pinned, 0);
	fixture_files(fx, s.id, &files);
	assert_int_equal(files.n, 2);
	assert_string_equal(files.v[0].path, "config.json");
	assert_string_equal(files.v[0].sha256, cfg.sha256);
	assert_string_equal(files.v[0].etag, cfg.gitsha1);
	assert_int_equal(files.v[0].size, cfg.size);
	assert_string_equal(files.v[1].path, "model.safetensors");
	assert_string_equal(files.v[1].sha256, model.sha256);
	assert_string_equal(files.v[1].etag, model.sha256);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/a", "main",
			     commit),
	    0);
	assert_string_equal(commit, C);
	assert_int_equal(index_blob_refs(&fx->index, cfg.sha256, &refs), 0);
	assert_int_equal(refs, 1);
	assert_int_equal(index_blob_refs(&fx->index, model.sha256, &refs), 0);
	assert_int_equal(refs, 1);
}

static void
test_publish_merges(void **state)
{
	static const char F[] = "models--org--a";
	struct fixture *fx = *state;
	struct manifest m, got;
	struct fixture_snaps all;
	struct fixture_snap s;
	char C[DIGEST_SHA1_HEX + 1], C2[DIGEST_SHA1_HEX + 1];

	start(&m, "org/a");
	fixture_add_file(fx, &m, "config.json", "{}\n", 0, NULL);
	m.pinned = 1;
	finish(&m, "main", NULL, C);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 1000), 0);
	manifest_release(&m);

	/* The same files again, later, under another name and unpinned. */
	start(&m, "org/a");
	fixture_add_file(fx, &m, "config.json", "{}\n", 0, NULL);
	finish(&m, "v1", NULL, C2);
	assert_string_equal(C2, C);
	assert_int_equal(m.pinned, 0);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 2000), 0);
	/* m itself holds the merge. */
	assert_int_equal(m.created, 1000);
	assert_int_equal(m.updated, 2000);
	assert_int_equal(m.pinned, 1);
	manifest_release(&m);

	load(fx, F, C, &got);
	assert_int_equal(got.nrevisions, 2);
	assert_true(manifest_has_revision(&got, "main"));
	assert_true(manifest_has_revision(&got, "v1"));
	assert_int_equal(got.created, 1000);
	assert_int_equal(got.updated, 2000);
	assert_int_equal(got.pinned, 1);
	assert_int_equal(got.nfiles, 1);
	manifest_release(&got);

	/* Still one snapshot, with both names, pinned. */
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &all);
	assert_int_equal(all.n, 1);
	s = all.v[0];
	assert_string_equal(s.commit, C);
	assert_true(refs_have(s.refs, "main"));
	assert_true(refs_have(s.refs, "v1"));
	assert_int_equal(strlen(s.refs), strlen("main,v1"));
	assert_int_equal(s.created, 1000);
	assert_int_equal(s.updated, 2000);
	assert_int_equal(s.pinned, 1);
	assert_ref(fx, F, "main", C);
	assert_ref(fx, F, "v1", C);
}

static void
test_publish_moves_ref(void **state)
{
	static const char F[] = "models--org--a";
	struct fixture *fx = *state;
	struct manifest m, got;
	struct fixture_snap s1, s2;
	char C1[DIGEST_SHA1_HEX + 1], C2[DIGEST_SHA1_HEX + 1];
	char commit[DIGEST_SHA1_HEX + 1];

	start(&m, "org/a");
	fixture_add_file(fx, &m, "config.json", "one\n", 0, NULL);
	finish(&m, "main", "v1", C1);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 1000), 0);
	manifest_release(&m);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/a", "main",
			     commit),
	    0);
	assert_string_equal(commit, C1);

	start(&m, "org/a");
	fixture_add_file(fx, &m, "config.json", "two\n", 0, NULL);
	finish(&m, "main", NULL, C2);
	assert_string_not_equal(C1, C2);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 2000), 0);
	manifest_release(&m);

	/* On disk, "main" left the first manifest; "v1" stayed. */
	load(fx, F, C1, &got);
	assert_int_equal(got.nrevisions, 1);
	assert_string_equal(got.revisions[0], "v1");
	assert_false(manifest_has_revision(&got, "main"));
	assert_int_equal(got.updated, 1000);
	manifest_release(&got);
	load(fx, F, C2, &got);
	assert_int_equal(got.nrevisions, 1);
	assert_string_equal(got.revisions[0], "main");
	manifest_release(&got);

	/* In the index the ref moved. */
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/a", "main",
			     commit),
	    0);
	assert_string_equal(commit, C2);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/a", "v1",
			     commit),
	    0);
	assert_string_equal(commit, C1);
	s1 = fixture_one(fx, C1);
	s2 = fixture_one(fx, C2);
	assert_string_equal(s1.refs, "v1");
	assert_string_equal(s2.refs, "main");

	/* And in the view. */
	assert_ref(fx, F, "main", C2);
	assert_ref(fx, F, "v1", C1);

	/* A rebuild from the files agrees. */
	assert_int_equal(index_rebuild(&fx->index, &fx->store), 0);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/a", "main",
			     commit),
	    0);
	assert_string_equal(commit, C2);
}

static void
test_remove(void **state)
{
	static const char F[] = "models--org--a";
	struct fixture *fx = *state;
	struct hub_report r = { NULL, NULL, 0 };
	struct blob shared, a, b;
	struct manifest m;
	struct fixture_snap s1, s2;
	struct fixture_snaps all;
	uint64_t freed;
	char C1[DIGEST_SHA1_HEX + 1], C2[DIGEST_SHA1_HEX + 1], rel[PATH];
	const char *why;
	int64_t refs;

	start(&m, "org/a");
	fixture_add_file(fx, &m, "shared.bin", "shared bytes, shared", 1,
	    &shared);
	fixture_add_file(fx, &m, "a.json", "only a", 0, &a);
	finish(&m, "v1", NULL, C1);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 1000), 0);
	manifest_release(&m);
	start(&m, "org/a");
	fixture_add_file(fx, &m, "shared.bin", "shared bytes, shared", 1, NULL);
	fixture_add_file(fx, &m, "b.json", "only b, longer", 0, &b);
	finish(&m, "main", NULL, C2);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 2000), 0);
	manifest_release(&m);
	assert_int_equal(fixture_blob_count(fx), 3);
	s1 = fixture_one(fx, C1);
	s2 = fixture_one(fx, C2);

	/* The first goes: its own blob with it, the shared one stays. */
	freed = 0;
	assert_int_equal(snapshot_remove(&fx->store, &fx->index, F, C1, s1.id,
			     60000, &freed),
	    0);
	assert_int_equal(freed, a.size);
	assert_int_equal(store_blob_stat(&fx->store, a.sha256, NULL), -ENOENT);
	assert_int_equal(store_blob_stat(&fx->store, shared.sha256, NULL), 0);
	assert_int_equal(store_blob_stat(&fx->store, b.sha256, NULL), 0);
	assert_int_equal(fixture_blob_count(fx), 2);
	unit_fmt(rel, sizeof(rel), "hub/%s/snapshots/%s", F, C1);
	assert_false(fixture_exists(fx, rel));
	unit_fmt(rel, sizeof(rel), "hub/%s/refs/v1", F);
	assert_false(fixture_exists(fx, rel));
	unit_fmt(rel, sizeof(rel), "hub/%s/blobs/%s", F, a.gitsha1);
	assert_false(fixture_exists(fx, rel));
	unit_fmt(rel, sizeof(rel), "hub/%s/blobs/%s", F, shared.sha256);
	assert_true(fixture_exists(fx, rel));
	unit_fmt(rel, sizeof(rel), "manifests/%s/%s.json", F, C1);
	assert_false(fixture_exists(fx, rel));
	manifest_init(&m);
	assert_int_equal(snapshot_manifest(&fx->store, F, C1, &m, &why),
	    -ENOENT);
	manifest_release(&m);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &all);
	assert_int_equal(all.n, 1);
	assert_string_equal(all.v[0].commit, C2);
	assert_int_equal(index_blob_refs(&fx->index, shared.sha256, &refs), 0);
	assert_int_equal(refs, 1);

	/* The second's view and files are untouched. */
	load(fx, F, C2, &m);
	assert_int_equal(hub_check(&fx->store, &m, &r), 0);
	assert_view(fx, F, &m);
	manifest_release(&m);
	assert_ref(fx, F, "main", C2);

	/* The second goes, and the shared blob with it. */
	freed = 0;
	assert_int_equal(snapshot_remove(&fx->store, &fx->index, F, C2, s2.id,
			     60000, &freed),
	    0);
	assert_int_equal(freed, shared.size + b.size);
	assert_int_equal(fixture_blob_count(fx), 0);
	unit_fmt(rel, sizeof(rel), "hub/%s", F);
	assert_false(fixture_exists(fx, rel));
	unit_fmt(rel, sizeof(rel), "manifests/%s/%s.json", F, C2);
	assert_false(fixture_exists(fx, rel));
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &all);
	assert_int_equal(all.n, 0);
	fixture_assert_empty(fx, "claims");
	fixture_assert_empty(fx, "tmp");
}

static int
collect_orphan(void *arg, const char *sha256)
{
	char *buf = arg;

	assert_int_equal(buf[0], '\0'); /* one expected */
	unit_fmt(buf, DIGEST_HEX_MAX, "%s", sha256);
	return 0;
}

static void
test_remove_claimed(void **state)
{
	static const char F[] = "models--org--a";
	struct fixture *fx = *state;
	struct claim held = { 0 };
	struct blob a, b;
	struct manifest m;
	struct fixture_snaps all;
	uint64_t freed = 0;
	char C[DIGEST_SHA1_HEX + 1], rel[PATH], *line = NULL;
	char orphan[DIGEST_HEX_MAX] = "";
	size_t len = 0;

	start(&m, "org/a");
	fixture_add_file(fx, &m, "a.bin", "bytes of a", 1, &a);
	fixture_add_file(fx, &m, "b.bin", "bytes of b!", 1, &b);
	finish(&m, "main", NULL, C);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 1000), 0);
	manifest_release(&m);

	/* Someone live (another claim of this process) holds a's claim. */
	assert_int_equal(claim_try(&fx->store, &held, a.sha256, claim_now_ms(),
			     60000),
	    0);
	assert_true(held.held);

	/* The removal waits about 2 s for it; never more than the alarm. */
	alarm(60);
	assert_int_equal(snapshot_remove(&fx->store, &fx->index, F, C,
			     fixture_one(fx, C).id, 60000, &freed),
	    0);
	alarm(0);

	/* The claimed blob is left, the other one deleted and counted. */
	assert_int_equal(store_blob_stat(&fx->store, a.sha256, NULL), 0);
	assert_int_equal(store_blob_stat(&fx->store, b.sha256, NULL), -ENOENT);
	assert_int_equal(freed, b.size);
	/* Everything else of the snapshot is gone. */
	unit_fmt(rel, sizeof(rel), "manifests/%s/%s.json", F, C);
	assert_false(fixture_exists(fx, rel));
	unit_fmt(rel, sizeof(rel), "hub/%s", F);
	assert_false(fixture_exists(fx, rel));
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &all);
	assert_int_equal(all.n, 0);
	/* The claim is still the holder's, untouched. */
	unit_fmt(rel, sizeof(rel), "claims/%s", a.sha256);
	assert_int_equal(store_read_file(&fx->store, rel, 1024, &line, &len),
	    0);
	assert_string_equal(line, held.line);
	free(line);
	/* The blob is an orphan in the index, for fsck to clear later. */
	assert_int_equal(index_each_orphan(&fx->index, collect_orphan, orphan),
	    0);
	assert_string_equal(orphan, a.sha256);

	claim_release(&fx->store, &held);
	fixture_assert_empty(fx, "claims");
}

/*
 * A lease taken after the remover looked (gc plans, rm checks, then they
 * remove) still keeps the snapshot: snapshot_remove looks again once the
 * snapshot has vanished from the view, puts it back and answers -EBUSY.
 */
static void
test_remove_leased(void **state)
{
	static const char F[] = "models--org--a";
	struct fixture *fx = *state;
	struct hub_report r = { NULL, NULL, 0 };
	struct lease l = { 0 };
	struct blob a;
	struct manifest m;
	struct fixture_snaps all;
	uint64_t freed = 0;
	char C[DIGEST_SHA1_HEX + 1], rel[PATH];

	start(&m, "org/a");
	fixture_add_file(fx, &m, "a.bin", "bytes of a", 1, &a);
	finish(&m, "main", NULL, C);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 1000), 0);
	manifest_release(&m);
	assert_int_equal(lease_live(&fx->store, F, C, 60000), 0);
	assert_int_equal(lease_take(&fx->store, F, C, &l), 0);

	assert_int_equal(snapshot_remove(&fx->store, &fx->index, F, C,
			     fixture_one(fx, C).id, 60000, &freed),
	    -EBUSY);
	assert_int_equal(freed, 0);
	/* Whole: view (snapshot, links, ref), manifest, row, blob. */
	load(fx, F, C, &m);
	assert_int_equal(hub_check(&fx->store, &m, &r), 0);
	assert_int_equal(r.count, 0);
	assert_view(fx, F, &m);
	manifest_release(&m);
	assert_ref(fx, F, "main", C);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &all);
	assert_int_equal(all.n, 1);
	assert_int_equal(store_blob_stat(&fx->store, a.sha256, NULL), 0);
	fixture_assert_empty(fx, "tmp");

	/* The lease dropped, it goes. */
	lease_drop(&fx->store, &l);
	assert_int_equal(snapshot_remove(&fx->store, &fx->index, F, C,
			     fixture_one(fx, C).id, 60000, &freed),
	    0);
	assert_int_equal(freed, a.size);
	unit_fmt(rel, sizeof(rel), "hub/%s", F);
	assert_false(fixture_exists(fx, rel));
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &all);
	assert_int_equal(all.n, 0);
}

/*
 * A manifest set aside by a removal whose remover died (renamed to a dead
 * owner's aside name): left alone while its remover is alive, put back
 * with its view and row when a live lease names it, kept as a publish saved
 * it when one did, and dropped otherwise.
 */
static void
aside_as_dead(struct fixture *fx, const char *folder, const char *commit,
    char *rel, size_t len)
{
	struct manifest m;
	char mine[PATH], owner[STORE_OWNER_MAX], from[PATH], to[PATH];
	const char *dot = strrchr(fx->store.owner, '.');

	assert_non_null(dot);
	unit_fmt(owner, sizeof(owner), "%.*s.%ld", (int)(dot - fx->store.owner),
	    fx->store.owner, (long)fixture_dead_pid());
	assert_int_equal(store_owner_state(&fx->store, owner), OWNER_DEAD);
	load(fx, folder, commit, &m);
	assert_int_equal(manifest_aside(&fx->store, &m, mine, sizeof(mine)), 0);
	manifest_release(&m);
	/* Ours while we live: no recovery takes it. */
	assert_int_equal(snapshot_aside_owned(&fx->store, mine, fx->store.owner,
			     60000),
	    1);
	assert_int_equal(snapshot_recover_asides(&fx->store, &fx->index, 60000),
	    0);
	assert_true(fixture_exists(fx, mine));
	unit_fmt(rel, len, "manifests/%s/%s.json.removing.%s", folder, commit,
	    owner);
	unit_fmt(from, sizeof(from), "%s/%s", fx->root, mine);
	unit_fmt(to, sizeof(to), "%s/%s", fx->root, rel);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(snapshot_aside_owned(&fx->store, rel, owner, 60000),
	    0);
}

static void
test_aside_recover(void **state)
{
	static const char F[] = "models--org--a";
	struct fixture *fx = *state;
	struct hub_report r = { NULL, NULL, 0 };
	struct lease l = { 0 };
	struct fixture_snaps all;
	struct manifest m;
	struct blob a;
	char C[DIGEST_SHA1_HEX + 1], rel[PATH], mf[PATH];

	start(&m, "org/a");
	fixture_add_file(fx, &m, "a.bin", "bytes of a", 1, &a);
	finish(&m, "main", NULL, C);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 1000), 0);
	manifest_release(&m);
	unit_fmt(mf, sizeof(mf), "manifests/%s/%s.json", F, C);

	/* Leased: put back, and the view and row made whole again. */
	aside_as_dead(fx, F, C, rel, sizeof(rel));
	assert_false(fixture_exists(fx, mf));
	assert_int_equal(hub_unpublish(&fx->store, F, C), 0);
	assert_int_equal(index_refresh(&fx->index, &fx->store), 0);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &all);
	assert_int_equal(all.n, 0);
	assert_int_equal(lease_take(&fx->store, F, C, &l), 0);
	assert_int_equal(snapshot_recover_asides(&fx->store, &fx->index, 60000),
	    0);
	assert_true(fixture_exists(fx, mf));
	assert_false(fixture_exists(fx, rel));
	load(fx, F, C, &m);
	assert_int_equal(hub_check(&fx->store, &m, &r), 0);
	assert_int_equal(r.count, 0);
	assert_view(fx, F, &m);
	manifest_release(&m);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &all);
	assert_int_equal(all.n, 1);

	/* Leased, but a publish saved the manifest since: that one stays. */
	load(fx, F, C, &m);
	aside_as_dead(fx, F, C, rel, sizeof(rel));
	assert_int_equal(manifest_save_new(&fx->store, &m), 0);
	manifest_release(&m);
	assert_int_equal(snapshot_aside_recover(&fx->store, &fx->index, rel, F,
			     C, 60000),
	    SNAPSHOT_ASIDE_DROPPED);
	assert_true(fixture_exists(fx, mf));
	assert_false(fixture_exists(fx, rel));

	/* No lease: the aside file is dropped, the snapshot stays removed. */
	lease_drop(&fx->store, &l);
	aside_as_dead(fx, F, C, rel, sizeof(rel));
	assert_int_equal(snapshot_aside_recover(&fx->store, &fx->index, rel, F,
			     C, 60000),
	    SNAPSHOT_ASIDE_DROPPED);
	assert_false(fixture_exists(fx, mf));
	assert_false(fixture_exists(fx, rel));
	assert_int_equal(store_blob_stat(&fx->store, a.sha256, NULL), 0);
}

static void
test_pin(void **state)
{
	static const char F[] = "models--org--a";
	struct fixture *fx = *state;
	struct manifest m, got;
	char C[DIGEST_SHA1_HEX + 1];
	int64_t id;

	start(&m, "org/a");
	fixture_add_file(fx, &m, "config.json", "{}\n", 0, NULL);
	finish(&m, "main", NULL, C);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 1000), 0);
	manifest_release(&m);
	id = fixture_one(fx, C).id;
	assert_int_equal(fixture_one(fx, C).pinned, 0);

	assert_int_equal(snapshot_pin(&fx->store, &fx->index, F, C, id, 1), 0);
	load(fx, F, C, &got);
	assert_int_equal(got.pinned, 1);
	/* Nothing else of the manifest changes. */
	assert_int_equal(got.nrevisions, 1);
	assert_string_equal(got.revisions[0], "main");
	assert_int_equal(got.created, 1000);
	assert_int_equal(got.nfiles, 1);
	manifest_release(&got);
	assert_int_equal(fixture_one(fx, C).pinned, 1);

	/* Pinning twice is harmless. */
	assert_int_equal(snapshot_pin(&fx->store, &fx->index, F, C, id, 1), 0);
	assert_int_equal(fixture_one(fx, C).pinned, 1);

	assert_int_equal(snapshot_pin(&fx->store, &fx->index, F, C, id, 0), 0);
	load(fx, F, C, &got);
	assert_int_equal(got.pinned, 0);
	manifest_release(&got);
	assert_int_equal(fixture_one(fx, C).pinned, 0);

	/* The pin lives in the files: a rebuilt index has it. */
	assert_int_equal(snapshot_pin(&fx->store, &fx->index, F, C, id, 1), 0);
	assert_int_equal(index_rebuild(&fx->index, &fx->store), 0);
	assert_int_equal(fixture_one(fx, C).pinned, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_publish,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_publish_merges,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_publish_moves_ref,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_remove,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_remove_claimed,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_remove_leased,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_aside_recover,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_pin, fixture_setup_index,
		    fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
