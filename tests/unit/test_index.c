/*
 * test_index: unit tests for src/index.c, and for the eviction planning of
 * src/gc.c that reads it.
 *
 * The index is checked through its API field by field: what index_add()
 * records, the orders it promises (files by path, snapshots least recently
 * used first), how refs move between revisions, how blobs are counted once
 * however many snapshots share them, and what removal leaves for the
 * orphan sweep.  Its SQLite file is checked directly where the contract is
 * the file itself: the schema version, the journal mode, and that a missing
 * or corrupt index.db is rebuilt from the manifests with nothing lost.  Two
 * processes opening a new store at once must both succeed.  Work queued
 * off a loop (index_queue()) runs in order, one job at a time.  The gc tests
 * publish real snapshots (blobs, manifests, hub view) and check that a plan
 * frees a shared blob only with its last user, never evicts a pinned
 * snapshot, and that running it deletes exactly the blobs it counted.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "unit.h"
#include "unit_store.h"
#include "fixture.h"

#include "gc.h"
#include "hub.h"
#include "index.h"
#include "manifest.h"
#include "snapshot.h"
#include "store.h"

#define PATH UNIT_PATH
#define MAXFILE 16

/* Hand-made commit ids; CA and CB share their first seven digits. */
#define CA "1234567aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define CB "1234567bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CC "cccccccccccccccccccccccccccccccccccccccc"
#define CO "0000000000000000000000000000000000000001"

/* Adds path with content (a published blob) to m; git etag. */
static void
add_file(struct fixture *fx, struct manifest *m, const char *path,
    const char *content, struct blob *out)
{
	fixture_add_file(fx, m, path, content, 0, out);
}

/* Adds path with size bytes of c; LFS etag. */
static void
add_sized(struct fixture *fx, struct manifest *m, const char *path, int c,
    size_t size, struct blob *out)
{
	struct blob b;
	char *buf = malloc(size);

	assert_non_null(buf);
	memset(buf, c, size);
	fixture_blob(fx, buf, size, &b);
	free(buf);
	assert_int_equal(manifest_add_file(m, path, b.size, b.sha256, b.sha256),
	    0);
	if (out != NULL)
		*out = b;
}

/* Starts a manifest with a hand-made commit and update time. */
static void
start(struct manifest *m, enum repo_type type, const char *repo,
    const char *commit, int64_t updated)
{
	manifest_init(m);
	assert_int_equal(manifest_set_origin(m, type, repo, "file:///models/x"),
	    0);
	unit_fmt(m->commit, sizeof(m->commit), "%s", commit);
	m->created = updated;
	m->updated = updated;
}

static void
rev(struct manifest *m, const char *name)
{
	assert_int_equal(manifest_add_revision(m, name), 0);
}

/* One integer from a query on the index's own connection. */
static int64_t
sql_int(struct fixture *fx, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(fx->index.db, sql, -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
sql_text(struct fixture *fx, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *st;
	const unsigned char *t;

	assert_int_equal(sqlite3_prepare_v2(fx->index.db, sql, -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	t = sqlite3_column_text(st, 0);
	unit_fmt(buf, len, "%s", t == NULL ? "" : (const char *)t);
	sqlite3_finalize(st);
}

struct digests {
	char v[MAXFILE][DIGEST_HEX_MAX];
	size_t n;
};

static int
collect_orphan(void *arg, const char *sha256)
{
	struct digests *d = arg;

	assert_true(d->n < MAXFILE);
	unit_fmt(d->v[d->n++], DIGEST_HEX_MAX, "%s", sha256);
	return 0;
}

static int
digest_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The orphans, sorted (no order is promised), comma-separated. */
static void
orphans(struct fixture *fx, char *out, size_t len)
{
	struct digests d;
	size_t i, n = 0;

	memset(&d, 0, sizeof(d));
	assert_int_equal(index_each_orphan(&fx->index, collect_orphan, &d), 0);
	qsort(d.v, d.n, sizeof(d.v[0]), digest_cmp);
	out[0] = '\0';
	for (i = 0; i < d.n; i++) {
		unit_fmt(out + n, len - n, "%s%s", i > 0 ? "," : "", d.v[i]);
		n += strlen(out + n);
	}
}

/* "a,b" with a and b in sorted order. */
static void
pair(const char *a, const char *b, char *out, size_t len)
{
	if (strcmp(a, b) < 0)
		unit_fmt(out, len, "%s,%s", a, b);
	else
		unit_fmt(out, len, "%s,%s", b, a);
}

static void
test_open_schema(void **state)
{
	struct fixture *fx = *state;
	struct stat st;
	char path[PATH], buf[256];

	unit_fmt(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(index_open(&fx->index, &fx->store, NULL), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(sql_int(fx, "PRAGMA user_version"), 2);
	sql_text(fx,
	    "SELECT group_concat(name, ',') FROM (SELECT name FROM"
	    " sqlite_master WHERE type='table' ORDER BY name)",
	    buf, sizeof(buf));
	assert_string_equal(buf,
	    "access,blobs,files,manifests,meta,models,pins,refs,snapshots");
	/* The store's tmp folder is on a local filesystem: WAL. */
	assert_string_equal(fx->index.journal, "wal");
	sql_text(fx, "PRAGMA journal_mode", buf, sizeof(buf));
	assert_string_equal(buf, "wal");
	assert_int_equal(sql_int(fx, "PRAGMA foreign_keys"), 1);
	assert_int_equal(sql_int(fx,
			     "SELECT count(*) FROM meta WHERE key='built'"),
	    1);
	/* A new store is built (from no manifests) at its first open. */
	assert_int_equal(fx->index.rebuilt, 1);
	index_close(&fx->index);
	assert_null(fx->index.db);

	/* Opening again finds it built and at the current version. */
	assert_int_equal(index_open(&fx->index, &fx->store, NULL), 0);
	assert_int_equal(fx->index.rebuilt, 0);
	assert_int_equal(sql_int(fx, "PRAGMA user_version"), 2);
	index_close(&fx->index);
}

static void
test_open_newer_version(void **state)
{
	struct fixture *fx = *state;
	char path[PATH];

	assert_int_equal(index_open(&fx->index, &fx->store, NULL), 0);
	assert_int_equal(sqlite3_exec(fx->index.db, "PRAGMA user_version=99",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	index_close(&fx->index);
	/* Made by a newer modelcache: refused, and left where it is. */
	assert_int_equal(index_open(&fx->index, &fx->store, NULL), -EPROTO);
	assert_null(fx->index.db);
	unit_fmt(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(access(path, F_OK), 0);
}

static void
test_add_and_list(void **state)
{
	struct fixture *fx = *state;
	struct blob b, a, c;
	struct fixture_snaps s;
	struct fixture_files f;
	struct manifest m;
	struct fixture_snap one_s;

	/* Files added out of path order; the commit set by hand. */
	start(&m, REPO_MODEL, "org/name", CA, 100);
	m.created = 50;
	snprintf(m.trust, sizeof(m.trust), "tofu");
	add_file(fx, &m, "b.bin", "bbbb", &b);
	add_file(fx, &m, "a/x.json", "{}", &a);
	add_file(fx, &m, "c.txt", "hello c", &c);
	rev(&m, "main");
	assert_int_equal(index_add(&fx->index, &m), 0);

	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 1);
	assert_true(s.v[0].id > 0);
	assert_int_equal(s.v[0].type, REPO_MODEL);
	assert_string_equal(s.v[0].repo, "org/name");
	assert_string_equal(s.v[0].folder, "models--org--name");
	assert_string_equal(s.v[0].commit, CA);
	assert_string_equal(s.v[0].source, "file:///models/x");
	assert_string_equal(s.v[0].trust, "tofu");
	assert_string_equal(s.v[0].refs, "main");
	assert_int_equal(s.v[0].size, 4 + 2 + 7);
	assert_int_equal(s.v[0].nfiles, 3);
	assert_int_equal(s.v[0].created, 50);
	assert_int_equal(s.v[0].updated, 100);
	assert_int_equal(s.v[0].last_used, 100);
	assert_int_equal(s.v[0].pinned, 0);
	one_s = s.v[0];

	fixture_files(fx, one_s.id, &f);
	assert_int_equal(f.n, 3);
	assert_string_equal(f.v[0].path, "a/x.json");
	assert_int_equal(f.v[0].size, 2);
	assert_string_equal(f.v[0].sha256, a.sha256);
	assert_string_equal(f.v[0].etag, a.gitsha1);
	assert_string_equal(f.v[1].path, "b.bin");
	assert_int_equal(f.v[1].size, 4);
	assert_string_equal(f.v[1].sha256, b.sha256);
	assert_string_equal(f.v[1].etag, b.gitsha1);
	assert_string_equal(f.v[2].path, "c.txt");
	assert_int_equal(f.v[2].size, 7);
	assert_string_equal(f.v[2].sha256, c.sha256);
	fixture_files(fx, one_s.id + 100, &f);
	assert_int_equal(f.n, 0);

	/* The filters. */
	fixture_snaps(fx, REPO_MODEL, "org/name", NULL, &s);
	assert_int_equal(s.n, 1);
	fixture_snaps(fx, REPO_DATASET, "org/name", NULL, &s);
	assert_int_equal(s.n, 0);
	fixture_snaps(fx, REPO_MODEL, "org/other", NULL, &s);
	assert_int_equal(s.n, 0);
	fixture_snaps(fx, REPO_MODEL, "org/name", CA, &s);
	assert_int_equal(s.n, 1);
	fixture_snaps(fx, REPO_MODEL, "org/name", CB, &s);
	assert_int_equal(s.n, 0);

	/* A second revision name, and adding again: one row, same id. */
	rev(&m, "v1");
	assert_int_equal(index_add(&fx->index, &m), 0);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.v[0].id, one_s.id);
	assert_string_equal(s.v[0].refs, "main,v1");
	fixture_files(fx, one_s.id, &f);
	assert_int_equal(f.n, 3);

	manifest_release(&m);
}

static int
stop_five(void *arg, const struct index_snapshot *s)
{
	(*(int *)arg)++;
	return 5;
}

static void
test_each_stops(void **state)
{
	struct fixture *fx = *state;
	struct manifest m;
	int calls = 0;

	start(&m, REPO_MODEL, "org/a", CA, 1);
	add_file(fx, &m, "a", "a", NULL);
	assert_int_equal(index_add(&fx->index, &m), 0);
	manifest_release(&m);
	start(&m, REPO_MODEL, "org/b", CB, 2);
	add_file(fx, &m, "b", "b", NULL);
	assert_int_equal(index_add(&fx->index, &m), 0);
	manifest_release(&m);
	assert_int_equal(index_each_snapshot(&fx->index, REPO_MODEL, NULL, NULL,
			     stop_five, &calls),
	    5);
	assert_int_equal(calls, 1);
}

/* One job of test_queue: what it saw, and where each callback ran. */
struct qjob {
	struct index_job job;
	int n;	    /* its place in the queue */
	int *order; /* the done() calls, in turn */
	size_t *ndone;
	pthread_t loop; /* the loop's thread */
	int off_loop;	/* run() ran on another thread */
	int on_loop;	/* done() ran on the loop's */
	int rc;
	char commit[DIGEST_SHA1_HEX + 1];
	struct qjob *then; /* queued by done(): goes after the rest */
};

static int
qjob_run(struct index_job *job, struct index *index)
{
	struct qjob *q = job->data;

	q->off_loop = !pthread_equal(pthread_self(), q->loop);
	return index_resolve(index, REPO_MODEL, "org/name", "main", q->commit);
}

static void
qjob_done(struct index_job *job, int rc)
{
	struct qjob *q = job->data;

	q->on_loop = pthread_equal(pthread_self(), q->loop);
	q->rc = rc;
	q->order[(*q->ndone)++] = q->n;
	if (q->then != NULL)
		index_queue(job->index, job->loop, &q->then->job, qjob_run,
		    qjob_done);
}

/*
 * index_queue(): each run() off the loop's thread, one at a time, in the
 * order queued (what a done() queues comes after what was queued before
 * it), each done() on the loop's thread; index_queue_cancel() ends the
 * jobs not started with -ECANCELED, and the running one as it ends.
 */
static void
test_queue(void **state)
{
	struct fixture *fx = *state;
	struct qjob q[6];
	struct manifest a;
	uv_loop_t loop;
	int order[6];
	size_t ndone = 0, i;

	start(&a, REPO_MODEL, "org/name", CA, 100);
	add_file(fx, &a, "a", "a", NULL);
	rev(&a, "main");
	assert_int_equal(index_add(&fx->index, &a), 0);
	manifest_release(&a);
	assert_int_equal(uv_loop_init(&loop), 0);
	memset(q, 0, sizeof(q));
	for (i = 0; i < 6; i++) {
		q[i].n = (int)i;
		q[i].order = order;
		q[i].ndone = &ndone;
		q[i].loop = pthread_self();
		q[i].job.data = &q[i];
	}
	/* 0 starts at once; 1 and 2 wait, and are cancelled. */
	for (i = 0; i < 3; i++)
		index_queue(&fx->index, &loop, &q[i].job, qjob_run, qjob_done);
	assert_true(index_queue_busy(&fx->index));
	index_queue_cancel(&fx->index);
	assert_int_equal(ndone, 2);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 2);
	assert_int_equal(q[1].rc, -ECANCELED);
	assert_int_equal(q[2].rc, -ECANCELED);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(ndone, 3);
	assert_int_equal(order[2], 0);
	assert_int_equal(q[0].rc, 0);
	assert_string_equal(q[0].commit, CA);
	assert_false(index_queue_busy(&fx->index));
	/* 3, 4, then 5, which 3's done() queues. */
	q[3].then = &q[5];
	index_queue(&fx->index, &loop, &q[3].job, qjob_run, qjob_done);
	index_queue(&fx->index, &loop, &q[4].job, qjob_run, qjob_done);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(ndone, 6);
	for (i = 3; i < 6; i++) {
		assert_int_equal(order[i], (int)i);
		assert_int_equal(q[i].rc, 0);
		assert_true(q[i].off_loop);
		assert_string_equal(q[i].commit, CA);
	}
	for (i = 0; i < 6; i++)
		assert_true(q[i].on_loop);
	assert_true(q[0].off_loop);
	assert_false(index_queue_busy(&fx->index));
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_resolve(void **state)
{
	struct fixture *fx = *state;
	struct manifest a, b;
	char commit[DIGEST_SHA1_HEX + 1];

	start(&a, REPO_MODEL, "org/name", CA, 100);
	add_file(fx, &a, "a", "a", NULL);
	rev(&a, "main");
	rev(&a, "refs/pr/1");
	assert_int_equal(index_add(&fx->index, &a), 0);
	start(&b, REPO_MODEL, "org/name", CB, 200);
	add_file(fx, &b, "b", "b", NULL);
	rev(&b, "dev");
	assert_int_equal(index_add(&fx->index, &b), 0);

	/* Ref names. */
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "main", commit),
	    0);
	assert_string_equal(commit, CA);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "dev", commit),
	    0);
	assert_string_equal(commit, CB);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "refs/pr/1", commit),
	    0);
	assert_string_equal(commit, CA);
	/* Full commits. */
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name", CA,
			     commit),
	    0);
	assert_string_equal(commit, CA);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name", CB,
			     commit),
	    0);
	assert_string_equal(commit, CB);
	/* Unique prefixes of 7 digits and more. */
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "1234567a", commit),
	    0);
	assert_string_equal(commit, CA);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "1234567bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", commit),
	    0);
	assert_string_equal(commit, CB);
	/* A prefix both share is not a unique one. */
	assert_true(index_resolve(&fx->index, REPO_MODEL, "org/name", "1234567",
			commit) < 0);

	/* Nothing else resolves. */
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "123456", commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "1234567c", commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "1234567A", commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name", CC,
			     commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     CA "a", commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name", "v9",
			     commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/other",
			     "main", commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/other", CA,
			     commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_DATASET, "org/name",
			     "main", commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_DATASET, "org/name", CA,
			     commit),
	    -ENOENT);

	manifest_release(&a);
	manifest_release(&b);
}

static void
test_ref_moves(void **state)
{
	struct fixture *fx = *state;
	struct manifest a, b, c;
	char commit[DIGEST_SHA1_HEX + 1];

	start(&a, REPO_MODEL, "org/name", CA, 100);
	add_file(fx, &a, "a", "a", NULL);
	rev(&a, "main");
	assert_int_equal(index_add(&fx->index, &a), 0);
	assert_string_equal(fixture_one(fx, CA).refs, "main");

	/* A later manifest claiming main takes it. */
	start(&b, REPO_MODEL, "org/name", CB, 200);
	add_file(fx, &b, "b", "b", NULL);
	rev(&b, "main");
	assert_int_equal(index_add(&fx->index, &b), 0);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "main", commit),
	    0);
	assert_string_equal(commit, CB);
	assert_string_equal(fixture_one(fx, CA).refs, "");
	assert_string_equal(fixture_one(fx, CB).refs, "main");

	/* An older one does not, but keeps the names nobody else holds. */
	start(&c, REPO_MODEL, "org/name", CC, 150);
	add_file(fx, &c, "c", "c", NULL);
	rev(&c, "main");
	rev(&c, "v2");
	assert_int_equal(index_add(&fx->index, &c), 0);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "main", commit),
	    0);
	assert_string_equal(commit, CB);
	assert_string_equal(fixture_one(fx, CB).refs, "main");
	assert_string_equal(fixture_one(fx, CC).refs, "v2");

	/* Re-adding the oldest changes nothing either. */
	assert_int_equal(index_add(&fx->index, &a), 0);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "main", commit),
	    0);
	assert_string_equal(commit, CB);

	manifest_release(&a);
	manifest_release(&b);
	manifest_release(&c);
}

static void
test_blob_refs(void **state)
{
	struct fixture *fx = *state;
	struct manifest a, b;
	struct blob x, y, z;
	int64_t n;

	start(&a, REPO_MODEL, "org/name", CA, 100);
	add_file(fx, &a, "x.json", "xxx", &x);
	add_file(fx, &a, "y.bin", "yyy", &y);
	assert_int_equal(index_add(&fx->index, &a), 0);
	start(&b, REPO_MODEL, "org/other", CB, 200);
	add_file(fx, &b, "x.json", "xxx", NULL);
	add_file(fx, &b, "copy/x.json", "xxx", NULL);
	add_file(fx, &b, "z.bin", "zzz", &z);
	assert_int_equal(index_add(&fx->index, &b), 0);

	/* File rows: one in a, two in b. */
	assert_int_equal(index_blob_refs(&fx->index, x.sha256, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(index_blob_refs(&fx->index, y.sha256, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(index_blob_refs(&fx->index, z.sha256, &n), 0);
	assert_int_equal(n, 1);
	n = 42;
	assert_int_equal(index_blob_refs(&fx->index,
			     "00000000000000000000000000000000"
			     "00000000000000000000000000000000",
			     &n),
	    0);
	assert_int_equal(n, 0);

	manifest_release(&a);
	manifest_release(&b);
}

static void
test_remove_and_orphans(void **state)
{
	struct fixture *fx = *state;
	struct manifest a, b, o;
	struct blob x, y, z, w;
	struct fixture_snap sa, sb, so;
	struct fixture_snaps s;
	struct fixture_files f;
	char buf[1024], want[1024], commit[DIGEST_SHA1_HEX + 1];
	uint64_t bytes, count, fbytes;
	int64_t n;

	start(&a, REPO_MODEL, "org/name", CA, 100);
	add_file(fx, &a, "x.json", "xxxx", &x);
	add_file(fx, &a, "y.bin", "yyyyyyy", &y);
	rev(&a, "main");
	rev(&a, "v1");
	a.pinned = 1;
	assert_int_equal(index_add(&fx->index, &a), 0);
	start(&b, REPO_MODEL, "org/name", CB, 200);
	add_file(fx, &b, "x.json", "xxxx", NULL);
	add_file(fx, &b, "z.bin", "zz", &z);
	rev(&b, "dev");
	assert_int_equal(index_add(&fx->index, &b), 0);
	start(&o, REPO_MODEL, "org/other", CO, 300);
	add_file(fx, &o, "w.bin", "w", &w);
	rev(&o, "main");
	assert_int_equal(index_add(&fx->index, &o), 0);
	sa = fixture_one(fx, CA);
	sb = fixture_one(fx, CB);
	so = fixture_one(fx, CO);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM models"), 2);
	orphans(fx, buf, sizeof(buf));
	assert_string_equal(buf, "");

	assert_int_equal(index_remove(&fx->index, sa.id), 0);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[0].commit, CB);
	assert_string_equal(s.v[1].commit, CO);
	fixture_files(fx, sa.id, &f);
	assert_int_equal(f.n, 0);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "main", commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name", "v1",
			     commit),
	    -ENOENT);
	assert_int_equal(index_resolve(&fx->index, REPO_MODEL, "org/name",
			     "dev", commit),
	    0);
	assert_string_equal(commit, CB);
	/* The rows that hung off it went too. */
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM pins"), 0);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM access"), 2);
	/* The model stays while it has a snapshot. */
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM models"), 2);

	/* x is still b's; y is an orphan until forgotten. */
	assert_int_equal(index_blob_refs(&fx->index, x.sha256, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(index_blob_refs(&fx->index, y.sha256, &n), 0);
	assert_int_equal(n, 0);
	orphans(fx, buf, sizeof(buf));
	assert_string_equal(buf, y.sha256);
	assert_int_equal(index_forget_blob(&fx->index, x.sha256), 0);
	assert_int_equal(index_totals(&fx->index, &bytes, &count, &fbytes), 0);
	assert_int_equal(bytes, 4 + 2 + 1);
	assert_int_equal(count, 3);
	orphans(fx, buf, sizeof(buf));
	assert_string_equal(buf, y.sha256);
	assert_int_equal(index_forget_blob(&fx->index, y.sha256), 0);
	orphans(fx, buf, sizeof(buf));
	assert_string_equal(buf, "");
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM blobs"), 3);

	/* The last snapshot of a model takes the model with it. */
	assert_int_equal(index_remove(&fx->index, sb.id), 0);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM models"), 1);
	fixture_snaps(fx, REPO_MODEL, "org/name", NULL, &s);
	assert_int_equal(s.n, 0);
	orphans(fx, buf, sizeof(buf));
	pair(x.sha256, z.sha256, want, sizeof(want));
	assert_string_equal(buf, want);
	assert_int_equal(index_remove(&fx->index, so.id), 0);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM models"), 0);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM snapshots"), 0);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM files"), 0);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM refs"), 0);
	assert_int_equal(index_blob_refs(&fx->index, w.sha256, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(index_totals(&fx->index, &bytes, &count, &fbytes), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(count, 0);
	assert_int_equal(fbytes, 0);

	manifest_release(&a);
	manifest_release(&b);
	manifest_release(&o);
}

static void
test_pin_touch_lru(void **state)
{
	struct fixture *fx = *state;
	struct manifest a, b, c;
	struct fixture_snaps s;
	int64_t ia, ib, ic;
	char sql[128];

	/* Added out of LRU order: c, a, b. */
	start(&c, REPO_MODEL, "org/c", CC, 300);
	add_file(fx, &c, "c", "c", NULL);
	assert_int_equal(index_add(&fx->index, &c), 0);
	start(&a, REPO_MODEL, "org/a", CA, 100);
	add_file(fx, &a, "a", "a", NULL);
	assert_int_equal(index_add(&fx->index, &a), 0);
	start(&b, REPO_MODEL, "org/b", CB, 200);
	add_file(fx, &b, "b", "b", NULL);
	assert_int_equal(index_add(&fx->index, &b), 0);
	ia = fixture_one(fx, CA).id;
	ib = fixture_one(fx, CB).id;
	ic = fixture_one(fx, CC).id;

	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.v[0].id, ia);
	assert_int_equal(s.v[0].last_used, 100);
	assert_int_equal(s.v[1].id, ib);
	assert_int_equal(s.v[1].last_used, 200);
	assert_int_equal(s.v[2].id, ic);
	assert_int_equal(s.v[2].last_used, 300);

	assert_int_equal(index_touch(&fx->index, ia, 1000), 0);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.v[0].id, ib);
	assert_int_equal(s.v[1].id, ic);
	assert_int_equal(s.v[2].id, ia);
	assert_int_equal(s.v[2].last_used, 1000);
	assert_int_equal(index_touch(&fx->index, ic, 50), 0);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.v[0].id, ic);
	assert_int_equal(s.v[0].last_used, 50);
	assert_int_equal(s.v[1].id, ib);
	assert_int_equal(s.v[2].id, ia);
	unit_fmt(sql, sizeof(sql),
	    "SELECT uses FROM access WHERE snapshot=%lld", (long long)ia);
	assert_int_equal(sql_int(fx, sql), 1);

	/* Re-adding a manifest keeps its last use. */
	assert_int_equal(index_add(&fx->index, &a), 0);
	assert_int_equal(fixture_one(fx, CA).last_used, 1000);

	/* Pins. */
	assert_int_equal(index_set_pinned(&fx->index, ib, 1), 0);
	assert_int_equal(fixture_one(fx, CB).pinned, 1);
	assert_int_equal(fixture_one(fx, CA).pinned, 0);
	assert_int_equal(fixture_one(fx, CC).pinned, 0);
	assert_int_equal(index_set_pinned(&fx->index, ib, 1), 0);
	assert_int_equal(fixture_one(fx, CB).pinned, 1);
	assert_int_equal(index_set_pinned(&fx->index, ib, 0), 0);
	assert_int_equal(fixture_one(fx, CB).pinned, 0);

	/* A manifest's own pinned flag, set and then cleared. */
	a.pinned = 1;
	assert_int_equal(index_add(&fx->index, &a), 0);
	assert_int_equal(fixture_one(fx, CA).pinned, 1);
	a.pinned = 0;
	assert_int_equal(index_add(&fx->index, &a), 0);
	assert_int_equal(fixture_one(fx, CA).pinned, 0);

	manifest_release(&a);
	manifest_release(&b);
	manifest_release(&c);
}

static void
test_totals(void **state)
{
	struct fixture *fx = *state;
	struct manifest a, b;
	uint64_t bytes = 1, count = 1, fbytes = 1;

	assert_int_equal(index_totals(&fx->index, &bytes, &count, &fbytes), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(count, 0);
	assert_int_equal(fbytes, 0);

	start(&a, REPO_MODEL, "org/name", CA, 100);
	add_sized(fx, &a, "x.bin", 'x', 10, NULL);
	add_sized(fx, &a, "y.bin", 'y', 20, NULL);
	assert_int_equal(index_add(&fx->index, &a), 0);
	start(&b, REPO_MODEL, "org/name", CB, 200);
	add_sized(fx, &b, "x.bin", 'x', 10, NULL);
	add_sized(fx, &b, "z.bin", 'z', 30, NULL);
	assert_int_equal(index_add(&fx->index, &b), 0);

	/* x is stored once, but is part of both snapshots' sizes. */
	assert_int_equal(index_totals(&fx->index, &bytes, &count, &fbytes), 0);
	assert_int_equal(bytes, 60);
	assert_int_equal(count, 3);
	assert_int_equal(fbytes, 70);

	/* y's row lingers as an orphan, but is not counted. */
	assert_int_equal(index_remove(&fx->index, fixture_one(fx, CA).id), 0);
	assert_int_equal(index_totals(&fx->index, &bytes, &count, &fbytes), 0);
	assert_int_equal(bytes, 40);
	assert_int_equal(count, 2);
	assert_int_equal(fbytes, 40);

	manifest_release(&a);
	manifest_release(&b);
}

/*
 * Everything the index says about every snapshot, ids left out, as one
 * string: what a rebuild must reproduce.
 */
static void
describe(struct fixture *fx, char *out, size_t len)
{
	struct fixture_snaps s;
	struct fixture_files f;
	size_t i, j, n = 0;

	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	out[0] = '\0';
	for (i = 0; i < s.n; i++) {
		struct fixture_snap *v = &s.v[i];

		unit_fmt(out + n, len - n,
		    "%d %s %s %s src=%s trust=%s refs=%s size=%llu n=%llu"
		    " %lld %lld %lld pin=%d\n",
		    (int)v->type, v->repo, v->folder, v->commit, v->source,
		    v->trust, v->refs, (unsigned long long)v->size,
		    (unsigned long long)v->nfiles, (long long)v->created,
		    (long long)v->updated, (long long)v->last_used, v->pinned);
		n += strlen(out + n);
		fixture_files(fx, v->id, &f);
		for (j = 0; j < f.n; j++) {
			unit_fmt(out + n, len - n, "  %s %llu %s %s\n",
			    f.v[j].path, (unsigned long long)f.v[j].size,
			    f.v[j].sha256, f.v[j].etag);
			n += strlen(out + n);
		}
	}
}

/*
 * Publishes four manifests into the index and as files: two revisions of
 * one model (both claim main; the later wins), a pinned dataset, and a
 * model whose files repeat one of the others'.
 */
static void
populate(struct fixture *fx)
{
	struct manifest m;

	start(&m, REPO_MODEL, "org/name", CA, 100);
	add_file(fx, &m, "config.json", "{\"v\":1}", NULL);
	add_sized(fx, &m, "w.bin", 'a', 300, NULL);
	rev(&m, "main");
	rev(&m, "v1");
	assert_int_equal(manifest_save(&fx->store, &m), 0);
	assert_int_equal(index_add(&fx->index, &m), 0);
	manifest_release(&m);

	start(&m, REPO_MODEL, "org/name", CB, 200);
	add_file(fx, &m, "config.json", "{\"v\":1}", NULL);
	add_sized(fx, &m, "w.bin", 'b', 300, NULL);
	rev(&m, "main");
	assert_int_equal(manifest_save(&fx->store, &m), 0);
	assert_int_equal(index_add(&fx->index, &m), 0);
	manifest_release(&m);

	start(&m, REPO_DATASET, "org/data", CC, 150);
	add_file(fx, &m, "data/train.csv", "a,b\n", NULL);
	rev(&m, "main");
	m.pinned = 1;
	snprintf(m.trust, sizeof(m.trust), "tofu");
	assert_int_equal(manifest_save(&fx->store, &m), 0);
	assert_int_equal(index_add(&fx->index, &m), 0);
	manifest_release(&m);

	start(&m, REPO_MODEL, "gpt2", CO, 50);
	add_file(fx, &m, "config.json", "{\"v\":1}", NULL);
	rev(&m, "refs/pr/3");
	assert_int_equal(manifest_save(&fx->store, &m), 0);
	assert_int_equal(index_add(&fx->index, &m), 0);
	manifest_release(&m);
}

static void
unlink_index(struct fixture *fx)
{
	static const char *const parts[] = { "", "-wal", "-shm", "-journal" };
	char path[PATH];
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		unit_fmt(path, sizeof(path), "%s/index.db%s", fx->root,
		    parts[i]);
		assert_true(unlink(path) == 0 || errno == ENOENT);
	}
}

static void
test_rebuild(void **state)
{
	struct fixture *fx = *state;
	char *before = malloc(65536), *after = malloc(65536);
	struct fixture_snaps s;

	assert_non_null(before);
	assert_non_null(after);
	populate(fx);
	describe(fx, before, 65536);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 4);
	/* A manifest that does not decode is left to fsck, not indexed. */
	unit_write(fx->root, "manifests/models--org--name/bad.json", "{", 1);
	index_close(&fx->index);

	unlink_index(fx);
	assert_int_equal(index_open(&fx->index, &fx->store, NULL), 0);
	assert_int_equal(fx->index.rebuilt, 1);
	describe(fx, after, 65536);
	assert_string_equal(after, before);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 4);
	index_close(&fx->index);

	/* Built once: the next open trusts it. */
	assert_int_equal(index_open(&fx->index, &fx->store, NULL), 0);
	assert_int_equal(fx->index.rebuilt, 0);
	describe(fx, after, 65536);
	assert_string_equal(after, before);

	/* index_rebuild() on an open index gives the same rows again. */
	assert_int_equal(index_rebuild(&fx->index, &fx->store), 0);
	describe(fx, after, 65536);
	assert_string_equal(after, before);

	free(before);
	free(after);
}

static void
test_corrupt(void **state)
{
	struct fixture *fx = *state;
	char *before = malloc(65536), *after = malloc(65536);
	char garbage[8192], path[PATH], tmp[PATH], found[PATH] = "";
	struct dirent *e;
	struct stat st;
	size_t i;
	DIR *d;
	int fd;

	assert_non_null(before);
	assert_non_null(after);
	populate(fx);
	describe(fx, before, 65536);
	index_close(&fx->index);

	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)("not a database "[i % 15] ^ (i >> 8));
	unit_fmt(path, sizeof(path), "%s/index.db", fx->root);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, garbage, sizeof(garbage)), sizeof(garbage));
	close(fd);

	assert_int_equal(index_open(&fx->index, &fx->store, NULL), 0);
	assert_int_equal(fx->index.rebuilt, 1);
	assert_int_equal(sql_int(fx, "PRAGMA user_version"), 2);
	describe(fx, after, 65536);
	assert_string_equal(after, before);

	/*
	 * The bad file was never renamed (others may have it open): it
	 * stays where it was, intact, for a post-mortem, and index.db.gen
	 * names the generation built beside it.
	 */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, sizeof(garbage));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, after, sizeof(garbage)), sizeof(garbage));
	close(fd);
	assert_memory_equal(after, garbage, sizeof(garbage));
	unit_fmt(tmp, sizeof(tmp), "%s/index.db.gen", fx->root);
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, found, sizeof(found)), 2);
	close(fd);
	assert_memory_equal(found, "1\n", 2);
	assert_int_equal(fx->index.gen, 1);
	/* No builder's file is left beside it. */
	d = opendir(fx->root);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		assert_null(strstr(e->d_name, ".new."));
	closedir(d);

	/* A process that had the old generation open follows the switch. */
	{
		struct index other;

		assert_int_equal(index_open(&other, &fx->store, NULL), 0);
		assert_int_equal(other.gen, 1);
		index_close(&fx->index);
		unit_fmt(path, sizeof(path), "%s/index.db.1", fx->root);
		fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, garbage, sizeof(garbage)),
		    sizeof(garbage));
		close(fd);
		assert_int_equal(index_open(&fx->index, &fx->store, NULL), 0);
		assert_int_equal(fx->index.gen, 2);
		assert_int_equal(index_refresh(&other, &fx->store), 0);
		assert_int_equal(other.gen, 2);
		index_close(&other);
		describe(fx, after, 65536);
		assert_string_equal(after, before);
	}

	free(before);
	free(after);
}

/* The hub snapshot folder of a published manifest (what a refresh needs). */
static void
hub_snap(struct fixture *fx, enum repo_type type, const char *repo,
    const char *commit)
{
	char folder[REF_FOLDER_MAX], rel[PATH];

	assert_int_equal(ref_folder_of(type, repo, folder, sizeof(folder)), 0);
	unit_fmt(rel, sizeof(rel), "hub/%s/snapshots/%s", folder, commit);
	assert_int_equal(store_mkdirs(&fx->store, rel), 0);
}

/*
 * A node's private index (another file, as MODELCACHE_INDEX names) learns
 * from the manifests what others published and removed, once their hub
 * view is there, and writes nothing when nothing changed.
 */
static void
test_private_refresh(void **state)
{
	struct fixture *fx = *state;
	struct index_conf ic = { 0 };
	struct fixture mine = { 0 };
	struct fixture_snaps s;
	struct manifest m;
	const char *why;
	char path[PATH], rel[PATH];
	int changes;

	unit_fmt(path, sizeof(path), "%s/node-a.db", fx->dir);
	ic.path = path;
	ic.stale_ms = 2000;
	mine.store = fx->store;
	assert_int_equal(index_open(&mine.index, &fx->store, &ic), 0);
	assert_int_equal(mine.index.private, 1);
	assert_int_equal(mine.index.busy_ms, 500); /* a quarter of stale */
	assert_int_equal(fx->index.private, 0);

	/* Published by "another node": manifests, but no hub view yet. */
	populate(fx);
	assert_int_equal(index_refresh(&mine.index, &fx->store), 0);
	fixture_snaps(&mine, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 0);
	hub_snap(fx, REPO_MODEL, "org/name", CA);
	hub_snap(fx, REPO_MODEL, "org/name", CB);
	hub_snap(fx, REPO_DATASET, "org/data", CC);
	hub_snap(fx, REPO_MODEL, "gpt2", CO);
	assert_int_equal(index_refresh(&mine.index, &fx->store), 0);
	fixture_snaps(&mine, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 4);
	assert_int_equal(fixture_one(&mine, CC).pinned, 1);

	/* Nothing changed: nothing written. */
	changes = sqlite3_total_changes(mine.index.db);
	assert_int_equal(index_refresh(&mine.index, &fx->store), 0);
	assert_int_equal(sqlite3_total_changes(mine.index.db), changes);

	/* A manifest rewritten elsewhere (unpinned) is read again. */
	manifest_init(&m);
	assert_int_equal(snapshot_manifest(&fx->store, "datasets--org--data",
			     CC, &m, &why),
	    0);
	m.pinned = 0;
	assert_int_equal(manifest_save(&fx->store, &m), 0);
	manifest_release(&m);
	assert_int_equal(index_refresh(&mine.index, &fx->store), 0);
	assert_int_equal(fixture_one(&mine, CC).pinned, 0);

	/* One removed elsewhere loses its rows, the others keep theirs. */
	unit_fmt(rel, sizeof(rel), "%s/manifests/models--org--name/%s.json",
	    fx->root, CB);
	assert_int_equal(unlink(rel), 0);
	assert_int_equal(index_refresh(&mine.index, &fx->store), 0);
	fixture_snaps(&mine, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 3);
	fixture_snaps(&mine, REPO_MODEL, NULL, CB, &s);
	assert_int_equal(s.n, 0);

	/* Added here, removed elsewhere: noticed too. */
	start(&m, REPO_MODEL, "org/local", CB, 300);
	add_file(fx, &m, "config.json", "{\"v\":2}", NULL);
	assert_int_equal(manifest_save(&fx->store, &m), 0);
	assert_int_equal(index_add(&mine.index, &m), 0);
	unit_fmt(rel, sizeof(rel), "%s/manifests/models--org--local/%s.json",
	    fx->root, CB);
	manifest_release(&m);
	fixture_snaps(&mine, REPO_MODEL, "org/local", NULL, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(unlink(rel), 0);
	assert_int_equal(index_refresh(&mine.index, &fx->store), 0);
	fixture_snaps(&mine, REPO_MODEL, "org/local", NULL, &s);
	assert_int_equal(s.n, 0);
	index_close(&mine.index);

	/* A node id that is not a plain name is refused. */
	ic.path = NULL;
	ic.node = "../x";
	assert_int_equal(index_open(&mine.index, &fx->store, &ic), -EINVAL);
}

/*
 * A publish records the stat of the manifest file it saved, so the next
 * refresh writes nothing; and a removed snapshot's record goes with it, so
 * that the next snapshot given its id (ids are reused) is not dropped when
 * a refresh finds the old manifest gone.
 */
static void
test_publish_stat(void **state)
{
	struct fixture *fx = *state;
	struct manifest m;
	struct fixture_snaps s;
	char rel[PATH];
	int64_t id;
	int changes;

	start(&m, REPO_MODEL, "org/y4", CA, 100);
	add_file(fx, &m, "config.json", "{\"y\":1}", NULL);
	assert_int_equal(manifest_save(&fx->store, &m), 0);
	assert_true(m.saved_ino != 0);
	hub_snap(fx, REPO_MODEL, "org/y4", CA);
	assert_int_equal(index_add(&fx->index, &m), 0);
	changes = sqlite3_total_changes(fx->index.db);
	assert_int_equal(index_refresh(&fx->index, &fx->store), 0);
	assert_int_equal(sqlite3_total_changes(fx->index.db), changes);

	/* Removed (manifest, then rows); the same files as org/y5. */
	id = fixture_one(fx, CA).id;
	unit_fmt(rel, sizeof(rel), "%s/manifests/models--org--y4/%s.json",
	    fx->root, CA);
	assert_int_equal(unlink(rel), 0);
	assert_int_equal(index_remove(&fx->index, id), 0);
	manifest_release(&m);
	start(&m, REPO_MODEL, "org/y5", CA, 200);
	add_file(fx, &m, "config.json", "{\"y\":1}", NULL);
	assert_int_equal(manifest_save(&fx->store, &m), 0);
	hub_snap(fx, REPO_MODEL, "org/y5", CA);
	assert_int_equal(index_add(&fx->index, &m), 0);
	manifest_release(&m);
	assert_int_equal(fixture_one(fx, CA).id, id); /* the id, reused */
	assert_int_equal(index_refresh(&fx->index, &fx->store), 0);
	fixture_snaps(fx, REPO_MODEL, "org/y5", NULL, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(
	    sql_int(fx, "SELECT count(*) FROM manifests WHERE snapshot > 0"),
	    1);
}

#define RACE_ROUNDS 32

/*
 * A child's part of the concurrency test: opens the store (before the start
 * signal when early is set, to narrow the race to index_open), says it is
 * ready, waits for the signal, opens the index and checks what it sees.
 * Exits 0, or 10 when it was the one that built the index; anything else
 * is a failure.
 */
static void
child_open(const char *root, int ready, int go, size_t want, int early)
{
	struct store store;
	struct index index;
	struct fixture_snaps s;
	char c = 'r';
	int rc, built;

	if (early && store_open(&store, root, 1) != 0)
		_exit(2);
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 0)
		_exit(1);
	if (!early && store_open(&store, root, 1) != 0)
		_exit(2);
	if ((rc = index_open(&index, &store, NULL)) != 0) {
		fprintf(stderr, "child %ld: index_open: %d\n", (long)getpid(),
		    rc);
		_exit(3);
	}
	built = index.rebuilt;
	memset(&s, 0, sizeof(s));
	if (index_each_snapshot(&index, REPO_MODEL, NULL, NULL,
		fixture_collect_snap, &s) != 0 ||
	    s.n != want)
		_exit(4);
	index_close(&index);
	store_release(&store);
	_exit(built ? 10 : 0);
}

/* Two processes open the store at root at once. */
static void
race_open(const char *root, size_t want, int early, unsigned *builds)
{
	pid_t pids[2];
	int go[2], ready[2], status, i;
	char c;

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	for (i = 0; i < 2; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(go[1]);
			close(ready[0]);
			child_open(root, ready[1], go[0], want, early);
		}
	}
	close(go[0]);
	close(ready[1]);
	for (i = 0; i < 2; i++)
		assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	close(go[1]); /* both start now */
	for (i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 10)
			fail_msg("child %d exited %d", i, WEXITSTATUS(status));
		*builds += WEXITSTATUS(status) == 10;
	}
}

static void
test_concurrent_open(void **state)
{
	struct fixture *fx = *state;
	char root[PATH], *before = malloc(65536), *after = malloc(65536);
	unsigned builds, round;
	struct fixture other;

	assert_non_null(before);
	assert_non_null(after);
	for (round = 0; round < RACE_ROUNDS; round++) {
		/* A store that does not exist yet. */
		unit_fmt(root, sizeof(root), "%s/new%u", fx->dir, round);
		builds = 0;
		race_open(root, 0, round % 2, &builds);
		assert_true(builds >= 1);
		memset(&other, 0, sizeof(other));
		assert_int_equal(store_open(&other.store, root, 0), 0);
		assert_int_equal(index_open(&other.index, &other.store, NULL),
		    0);
		assert_int_equal(other.index.rebuilt, 0);
		assert_int_equal(sql_int(&other, "PRAGMA user_version"), 2);
		assert_int_equal(sql_int(&other, "SELECT count(*) FROM meta"),
		    1);
		index_close(&other.index);
		store_release(&other.store);
	}

	/* A store with manifests and no index yet: built from them. */
	populate(fx);
	describe(fx, before, 65536);
	index_close(&fx->index);
	for (round = 0; round < RACE_ROUNDS; round++) {
		unlink_index(fx);
		builds = 0;
		race_open(fx->root, 4, 1, &builds);
		assert_true(builds >= 1);
		assert_int_equal(index_open(&fx->index, &fx->store, NULL), 0);
		assert_int_equal(fx->index.rebuilt, 0);
		describe(fx, after, 65536);
		assert_string_equal(after, before);
		index_close(&fx->index);
	}

	free(before);
	free(after);
}

/*
 * Holds a write lock on a new, empty root/index.db, as the first of two
 * processes opening a store does while it switches the journal to WAL:
 * says it is ready, then waits until release is closed.
 */
static void
child_hold(const char *root, int ready, int release)
{
	char path[PATH], c = 'r';
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/index.db", root);
	if (sqlite3_open_v2(path, &db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
		NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		_exit(1);
	if (write(ready, &c, 1) != 1 || read(release, &c, 1) != 0)
		_exit(2);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		_exit(3);
	sqlite3_close(db);
	_exit(0);
}

/*
 * The race of test_concurrent_open(), made certain: while another process
 * holds the new index's write lock, index_open() must wait for it, as the
 * busy timeout promises, not fail with -EBUSY at once.  The opener gets
 * half a second to fail on its own; then the lock is let go and it must
 * finish.
 */
static void
test_open_waits_for_lock(void **state)
{
	struct fixture *fx = *state;
	struct pollfd pfd;
	pid_t holder, opener;
	int ready[2], release[2], done[2], status;
	char c;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(release), 0);
	assert_int_equal(pipe(done), 0);
	holder = fork();
	assert_true(holder >= 0);
	if (holder == 0) {
		close(ready[0]);
		close(release[1]);
		close(done[0]);
		close(done[1]);
		child_hold(fx->root, ready[1], release[0]);
	}
	close(ready[1]);
	close(release[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);

	opener = fork();
	assert_true(opener >= 0);
	if (opener == 0) {
		struct index index;
		int rc;

		close(release[1]);
		close(done[0]);
		rc = index_open(&index, &fx->store, NULL);
		if (rc != 0)
			fprintf(stderr, "index_open: %d\n", rc);
		_exit(rc == 0 ? 0 : 3);
	}
	close(done[1]);
	/* done[0] reads EOF as soon as the opener exits. */
	pfd.fd = done[0];
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 500) == 1) {
		assert_int_equal(waitpid(opener, &status, 0), opener);
		close(release[1]);
		waitpid(holder, NULL, 0);
		fail_msg("index_open did not wait for the lock: exit %d",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	close(release[1]);
	assert_int_equal(waitpid(holder, &status, 0), holder);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(waitpid(opener, &status, 0), opener);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(done[0]);

	assert_int_equal(index_open(&fx->index, &fx->store, NULL), 0);
	assert_int_equal(fx->index.rebuilt, 0);
	assert_int_equal(sql_int(fx, "PRAGMA user_version"), 2);
}

/* --- gc --- */

/*
 * The gc fixture: four snapshots, sizes in bytes, last use in brackets.
 *
 *	A org/a [10]		shared.bin S 1000, a.bin 100
 *	B org/a [20]		shared.bin S 1000, b.bin 200
 *	C org/c [30]		c.bin 400
 *	D org/d [5], pinned	d.bin 800
 *
 * The store holds 2500 bytes.  Evicting A frees 100; B after A frees 1200.
 */
struct gcfx {
	struct blob s, a, b, c, d;
	char ca[DIGEST_SHA1_HEX + 1], cb[DIGEST_SHA1_HEX + 1];
	char cc[DIGEST_SHA1_HEX + 1], cd[DIGEST_SHA1_HEX + 1];
	int64_t ia, ib, ic, id;
};

static void
publish(struct fixture *fx, struct manifest *m, const char *revname,
    int64_t now, char *commit)
{
	rev(m, revname);
	assert_int_equal(manifest_derive_commit(m), 0);
	unit_fmt(commit, DIGEST_SHA1_HEX + 1, "%s", m->commit);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, m, now), 0);
	manifest_release(m);
}

/*
 * The busy timeout: a 4th of the stale limit (100 ms at least) unless set;
 * at most INDEX_BUSY_MS either way.  Then a publish that finds the index
 * held past it: every file is published and it says -EBUSY; the row comes
 * with a later index_add.
 */
static void
test_publish_index_busy(void **state)
{
	struct fixture *fx = *state;
	struct index_conf ic = { 0 };
	struct manifest m;
	struct stat st;
	const char *why;
	char path[PATH], rel[PATH], commit[DIGEST_SHA1_HEX + 1];
	sqlite3 *db;

	index_set_busy(&fx->index, NULL);
	assert_int_equal(fx->index.busy_ms, INDEX_BUSY_MS / 4);
	ic.stale_ms = 200;
	index_set_busy(&fx->index, &ic);
	assert_int_equal(fx->index.busy_ms, 100);
	ic.busy_ms = 60000;
	index_set_busy(&fx->index, &ic);
	assert_int_equal(fx->index.busy_ms, INDEX_BUSY_MS);
	ic.busy_ms = 150;
	index_set_busy(&fx->index, &ic);
	assert_int_equal(fx->index.busy_ms, 150);

	snprintf(path, sizeof(path), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
			     NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, "org/busy", "x"),
	    0);
	add_sized(fx, &m, "w.bin", 'w', 300, NULL);
	rev(&m, "main");
	assert_int_equal(manifest_derive_commit(&m), 0);
	unit_fmt(commit, sizeof(commit), "%s", m.commit);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, 1000),
	    -EBUSY);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	/* The files are whole: manifest, hub view; no row yet. */
	unit_fmt(rel, sizeof(rel), "%s/hub/models--org--busy/snapshots/%s",
	    fx->root, commit);
	assert_int_equal(stat(rel, &st), 0);
	unit_fmt(rel, sizeof(rel), "%s/hub/models--org--busy/refs/main",
	    fx->root);
	assert_int_equal(stat(rel, &st), 0);
	assert_int_equal(sql_int(fx,
			     "SELECT count(*) FROM snapshots JOIN models"
			     " ON models.id = snapshots.model"
			     " WHERE repo = 'org/busy'"),
	    0);
	manifest_release(&m);
	manifest_init(&m);
	assert_int_equal(snapshot_manifest(&fx->store, "models--org--busy",
			     commit, &m, &why),
	    0);
	assert_int_equal(index_add(&fx->index, &m), 0);
	manifest_release(&m);
	assert_int_equal(sql_int(fx,
			     "SELECT count(*) FROM snapshots JOIN models"
			     " ON models.id = snapshots.model"
			     " WHERE repo = 'org/busy'"),
	    1);
}

static void
gc_populate(struct fixture *fx, struct gcfx *g)
{
	struct manifest m;

	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, "org/a", "x"), 0);
	add_sized(fx, &m, "shared.bin", 's', 1000, &g->s);
	add_sized(fx, &m, "a.bin", 'a', 100, &g->a);
	publish(fx, &m, "main", 1000, g->ca);

	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, "org/a", "x"), 0);
	add_sized(fx, &m, "shared.bin", 's', 1000, NULL);
	add_sized(fx, &m, "b.bin", 'b', 200, &g->b);
	publish(fx, &m, "dev", 1001, g->cb);

	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, "org/c", "x"), 0);
	add_sized(fx, &m, "c.bin", 'c', 400, &g->c);
	publish(fx, &m, "main", 1002, g->cc);

	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, "org/d", "x"), 0);
	add_sized(fx, &m, "d.bin", 'd', 800, &g->d);
	m.pinned = 1;
	publish(fx, &m, "main", 1003, g->cd);

	g->ia = fixture_one(fx, g->ca).id;
	g->ib = fixture_one(fx, g->cb).id;
	g->ic = fixture_one(fx, g->cc).id;
	g->id = fixture_one(fx, g->cd).id;
	assert_int_equal(index_touch(&fx->index, g->id, 5), 0);
	assert_int_equal(index_touch(&fx->index, g->ia, 10), 0);
	assert_int_equal(index_touch(&fx->index, g->ib, 20), 0);
	assert_int_equal(index_touch(&fx->index, g->ic, 30), 0);
	assert_int_equal(fixture_one(fx, g->cd).pinned, 1);
}

static void
assert_victim(const struct gc_victim *v, int64_t id, const char *repo,
    const char *commit, int64_t last_used, uint64_t frees)
{
	char folder[REF_FOLDER_MAX];

	assert_int_equal(v->id, id);
	assert_string_equal(v->repo, repo);
	assert_int_equal(ref_folder_of(REPO_MODEL, repo, folder,
			     sizeof(folder)),
	    0);
	assert_string_equal(v->folder, folder);
	assert_string_equal(v->commit, commit);
	assert_int_equal(v->last_used, last_used);
	assert_int_equal(v->frees, frees);
}

/* skip() for gc_plan: skips the commit given as arg. */
static int
skip_commit(void *arg, const char *folder, const char *commit)
{
	return strcmp(commit, arg) == 0;
}

static void
test_gc_plan(void **state)
{
	struct fixture *fx = *state;
	struct gc_plan plan;
	struct gcfx g;
	struct fixture_snaps s;
	size_t i;

	gc_populate(fx, &g);

	/* Already small enough: nothing to do. */
	assert_int_equal(gc_plan(&fx->index, 2500, NULL, NULL, &plan), 0);
	assert_int_equal(plan.n, 0);
	assert_int_equal(plan.before, 2500);
	assert_int_equal(plan.after, 2500);
	gc_plan_release(&plan);

	/* A goes first; its shared blob stays with B, so it frees 100. */
	assert_int_equal(gc_plan(&fx->index, 2400, NULL, NULL, &plan), 0);
	assert_int_equal(plan.n, 1);
	assert_victim(&plan.victims[0], g.ia, "org/a", g.ca, 10, 100);
	assert_int_equal(plan.before, 2500);
	assert_int_equal(plan.after, 2400);
	assert_int_equal(plan.kept_pinned, 800); /* D, older, passed over */
	gc_plan_release(&plan);
	assert_null(plan.victims);

	/* Then B, which now frees the shared blob too. */
	assert_int_equal(gc_plan(&fx->index, 1500, NULL, NULL, &plan), 0);
	assert_int_equal(plan.n, 2);
	assert_victim(&plan.victims[0], g.ia, "org/a", g.ca, 10, 100);
	assert_victim(&plan.victims[1], g.ib, "org/a", g.cb, 20, 1200);
	assert_int_equal(plan.after, 1200);
	gc_plan_release(&plan);

	/* Everything that may go: D is pinned and stays, above the limit. */
	assert_int_equal(gc_plan(&fx->index, 0, NULL, NULL, &plan), 0);
	assert_int_equal(plan.n, 3);
	assert_victim(&plan.victims[0], g.ia, "org/a", g.ca, 10, 100);
	assert_victim(&plan.victims[1], g.ib, "org/a", g.cb, 20, 1200);
	assert_victim(&plan.victims[2], g.ic, "org/c", g.cc, 30, 400);
	assert_int_equal(plan.before, 2500);
	assert_int_equal(plan.after, 800);
	assert_int_equal(plan.kept_pinned, 800);
	for (i = 0; i < plan.n; i++)
		assert_int_not_equal(plan.victims[i].id, g.id);
	gc_plan_release(&plan);

	/* B in use: A frees only its own blob, C follows. */
	assert_int_equal(gc_plan(&fx->index, 0, skip_commit, g.cb, &plan), 0);
	assert_int_equal(plan.n, 2);
	assert_victim(&plan.victims[0], g.ia, "org/a", g.ca, 10, 100);
	assert_victim(&plan.victims[1], g.ic, "org/c", g.cc, 30, 400);
	assert_int_equal(plan.after, 2000);
	assert_int_equal(plan.kept_pinned, 800);
	assert_int_equal(plan.kept_leased, 1200);
	gc_plan_release(&plan);

	/* Unpinned, D is the least recently used and goes first. */
	assert_int_equal(index_set_pinned(&fx->index, g.id, 0), 0);
	assert_int_equal(gc_plan(&fx->index, 1800, NULL, NULL, &plan), 0);
	assert_int_equal(plan.n, 1);
	assert_victim(&plan.victims[0], g.id, "org/d", g.cd, 5, 800);
	assert_int_equal(plan.after, 1700);
	assert_int_equal(plan.kept_pinned, 0);
	gc_plan_release(&plan);

	/* Planning changes nothing. */
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 4);
}

static void
assert_blobs(struct fixture *fx, int want)
{
	assert_int_equal(fixture_blob_count(fx), want);
}

static void
test_gc_run(void **state)
{
	struct fixture *fx = *state;
	struct hub_report r = { NULL, NULL, 0 };
	struct gc_plan plan;
	struct manifest m;
	struct fixture_snaps s;
	struct gcfx g;
	uint64_t freed = 1;
	char path[PATH], buf[1024];
	const char *why;

	gc_populate(fx, &g);
	assert_blobs(fx, 5);

	/* A goes: its own blob with it, the shared one stays for B. */
	assert_int_equal(gc_plan(&fx->index, 2400, NULL, NULL, &plan), 0);
	assert_int_equal(plan.n, 1);
	assert_int_equal(gc_run(&fx->store, &fx->index, &plan, 60000, &freed),
	    0);
	gc_plan_release(&plan);
	assert_int_equal(freed, 100);
	assert_int_equal(store_blob_stat(&fx->store, g.a.sha256, NULL),
	    -ENOENT);
	assert_int_equal(store_blob_stat(&fx->store, g.s.sha256, NULL), 0);
	assert_blobs(fx, 4);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.v[0].commit, g.cd);
	assert_string_equal(s.v[1].commit, g.cb);
	assert_string_equal(s.v[2].commit, g.cc);
	manifest_init(&m);
	assert_int_equal(snapshot_manifest(&fx->store, "models--org--a", g.ca,
			     &m, &why),
	    -ENOENT);
	assert_int_equal(snapshot_manifest(&fx->store, "models--org--a", g.cb,
			     &m, &why),
	    0);
	/* B's view is whole, A's snapshot is gone from it. */
	assert_int_equal(hub_check(&fx->store, &m, &r), 0);
	manifest_release(&m);
	unit_fmt(path, sizeof(path), "%s/hub/models--org--a/snapshots/%s",
	    fx->root, g.ca);
	assert_int_equal(access(path, F_OK), -1);
	orphans(fx, buf, sizeof(buf));
	assert_string_equal(buf, "");

	/* B goes, and the shared blob with it. */
	assert_int_equal(gc_plan(&fx->index, 1500, NULL, NULL, &plan), 0);
	assert_int_equal(plan.n, 1);
	assert_victim(&plan.victims[0], g.ib, "org/a", g.cb, 20, 1200);
	assert_int_equal(plan.before, 2400);
	assert_int_equal(plan.after, 1200);
	assert_int_equal(gc_run(&fx->store, &fx->index, &plan, 60000, &freed),
	    0);
	gc_plan_release(&plan);
	assert_int_equal(freed, 1200);
	assert_int_equal(store_blob_stat(&fx->store, g.s.sha256, NULL),
	    -ENOENT);
	assert_int_equal(store_blob_stat(&fx->store, g.b.sha256, NULL),
	    -ENOENT);
	assert_blobs(fx, 2);
	unit_fmt(path, sizeof(path), "%s/hub/models--org--a", fx->root);
	assert_int_equal(access(path, F_OK), -1);

	/* Down to the pinned one, which no plan removes. */
	assert_int_equal(gc_plan(&fx->index, 0, NULL, NULL, &plan), 0);
	assert_int_equal(plan.n, 1);
	assert_victim(&plan.victims[0], g.ic, "org/c", g.cc, 30, 400);
	assert_int_equal(plan.after, 800);
	assert_int_equal(gc_run(&fx->store, &fx->index, &plan, 60000, &freed),
	    0);
	gc_plan_release(&plan);
	assert_int_equal(freed, 400);
	assert_blobs(fx, 1);
	assert_int_equal(store_blob_stat(&fx->store, g.d.sha256, NULL), 0);
	fixture_snaps(fx, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].commit, g.cd);
	assert_int_equal(gc_plan(&fx->index, 0, NULL, NULL, &plan), 0);
	assert_int_equal(plan.n, 0);
	assert_int_equal(plan.after, 800);
	gc_plan_release(&plan);

	/* Every claim was given back, every tmp file cleaned. */
	fixture_assert_empty(fx, "claims");
	fixture_assert_empty(fx, "tmp");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_schema, fixture_setup,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(test_open_newer_version,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_add_and_list,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_each_stops,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_resolve,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_queue, fixture_setup_index,
		    fixture_teardown),
		cmocka_unit_test_setup_teardown(test_ref_moves,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_blob_refs,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_remove_and_orphans,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_pin_touch_lru,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_totals,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_rebuild,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_publish_stat,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_private_refresh,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_open,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_open_waits_for_lock,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_publish_index_busy,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_gc_plan,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_gc_run,
		    fixture_setup_index, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
