/*
 * index: the SQLite index (see index.h).
 *
 * Schema, version 1 (PRAGMA user_version; later versions append to the
 * migrations table below, never edit a shipped step):
 *
 *	meta(key PRIMARY KEY, value)		"built" once rebuilt from files
 *	models(id, type, repo, folder)		one per Hub repo (type, repo)
 *	snapshots(id, model, commit_id, source, trust, size, nfiles,
 *		  created, updated)		one per manifest
 *	refs(model, name, commit_id, updated)	revision names; the manifest
 *						with the latest "updated" wins
 *	files(snapshot, path, size, sha256, etag)  a snapshot's files
 *	blobs(sha256, size)			store blobs known to the index
 *	pins(snapshot, since)			pinned snapshots (mirrors the
 *						manifest's "pinned")
 *	access(snapshot, last_used, uses)	LRU order for eviction
 *
 * Version 2 adds what index_refresh() compares with the files:
 *
 *	manifests(rel, ino, mtime, size, snapshot)  each manifest as last
 *						indexed (snapshot 0: not
 *						indexable), by its stat
 *
 * An index (index.h) is brought up to date by a scan of manifests/:
 * a name, inode, mtime or size that differs from its row is loaded and
 * indexed again, a row whose file is gone drops its snapshot.  The same
 * scan over an emptied index is the full rebuild, so there is one way of
 * turning manifests into rows.
 *
 * Rows of one manifest are written in one transaction, so a reader sees a
 * snapshot with all its files or not at all.  SQLite result codes are turned
 * into negative errno values here and nowhere else.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "claim.h"
#include "hub.h"
#include "index.h"

static const char *const migrations[] = {
	/* 1 */
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE models(id INTEGER PRIMARY KEY, type TEXT NOT NULL,"
	" repo TEXT NOT NULL, folder TEXT NOT NULL, UNIQUE(type, repo));"
	"CREATE TABLE snapshots(id INTEGER PRIMARY KEY,"
	" model INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
	" commit_id TEXT NOT NULL, source TEXT NOT NULL, trust TEXT NOT NULL,"
	" size INTEGER NOT NULL, nfiles INTEGER NOT NULL,"
	" created INTEGER NOT NULL, updated INTEGER NOT NULL,"
	" UNIQUE(model, commit_id));"
	"CREATE TABLE refs(model INTEGER NOT NULL REFERENCES models(id)"
	" ON DELETE CASCADE, name TEXT NOT NULL, commit_id TEXT NOT NULL,"
	" updated INTEGER NOT NULL, PRIMARY KEY(model, name));"
	"CREATE TABLE files(snapshot INTEGER NOT NULL REFERENCES snapshots(id)"
	" ON DELETE CASCADE, path TEXT NOT NULL, size INTEGER NOT NULL,"
	" sha256 TEXT NOT NULL, etag TEXT NOT NULL,"
	" PRIMARY KEY(snapshot, path));"
	"CREATE INDEX files_sha256 ON files(sha256);"
	"CREATE TABLE blobs(sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL);"
	"CREATE TABLE pins(snapshot INTEGER PRIMARY KEY REFERENCES"
	" snapshots(id) ON DELETE CASCADE, since INTEGER NOT NULL);"
	"CREATE TABLE access(snapshot INTEGER PRIMARY KEY REFERENCES"
	" snapshots(id) ON DELETE CASCADE, last_used INTEGER NOT NULL,"
	" uses INTEGER NOT NULL DEFAULT 0);",
	/* 2 */
	"CREATE TABLE manifests(rel TEXT PRIMARY KEY, ino INTEGER NOT NULL,"
	" mtime INTEGER NOT NULL, size INTEGER NOT NULL,"
	" snapshot INTEGER NOT NULL);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Filesystems where WAL's shared memory cannot work across nodes. */
static const long network_fs[] = {
	0x6969,	    /* NFS */
	0x517b,	    /* SMB */
	0xff534d42, /* CIFS */
	0xfe534d42, /* SMB2 */
	0x65735546, /* FUSE */
	0x00c36400, /* Ceph */
	0x0bd00bd0, /* Lustre */
	0x47504653, /* GPFS */
};

static int
errno_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return -EROFS;
	case SQLITE_CANTOPEN:
		/* The store exists by then: it is not writable to us. */
		return -EACCES;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static int
exec(struct index *index, const char *sql)
{
	return errno_of(sqlite3_exec(index->db, sql, NULL, NULL, NULL));
}

static int
prepare(struct index *index, const char *sql, sqlite3_stmt **st)
{
	return errno_of(sqlite3_prepare_v2(index->db, sql, -1, st, NULL));
}

/* Runs a statement to completion: 0, or the error. */
static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : errno_of(rc);
}

static const char *
text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t == NULL ? "" : (const char *)t;
}

static int
begin(struct index *index)
{
	return exec(index, "BEGIN IMMEDIATE");
}

static int
end(struct index *index, int rc)
{
	if (rc == 0)
		rc = exec(index, "COMMIT");
	if (rc < 0)
		exec(index, "ROLLBACK");
	return rc;
}

/*
 * Whether the store is on a network filesystem (NFS, CIFS/SMB, FUSE, Ceph,
 * Lustre, GPFS), by statfs.  1 or 0.
 */
static int
index_network_fs(int fd)
{
	struct statfs sf;
	size_t i;

	if (fstatfs(fd, &sf) == -1)
		return 1; /* unknown: assume the worst */
	for (i = 0; i < sizeof(network_fs) / sizeof(network_fs[0]); i++)
		if ((long)(unsigned)sf.f_type == network_fs[i])
			return 1;
	return 0;
}

static int
user_version(struct index *index, int *version)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prepare(index, "PRAGMA user_version", &st)) < 0)
		return rc;
	rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	rc = rc == SQLITE_ROW ? 0 : errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

static int
migrate(struct index *index)
{
	char sql[64];
	int version, rc;

	if ((rc = begin(index)) < 0)
		return rc;
	if ((rc = user_version(index, &version)) < 0)
		return end(index, rc);
	if (version > SCHEMA_VERSION)
		return end(index, -EPROTO); /* made by a newer modelcache */
	for (; rc == 0 && version < SCHEMA_VERSION; version++) {
		rc = exec(index, migrations[version]);
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
		    version + 1);
		if (rc == 0)
			rc = exec(index, sql);
	}
	return end(index, rc);
}

static int
quick_check(struct index *index)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prepare(index, "PRAGMA quick_check", &st)) < 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0
		    ? 0
		    : -EBADMSG;
	else
		rc = errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

/*
 * Sets the journal mode.  Switching to WAL upgrades the statement's read
 * lock to a write lock, and SQLite answers SQLITE_BUSY at once, without the
 * busy handler, when another connection does the same (two processes
 * opening a new store together): retry as long as the busy timeout would.
 */
static int
set_journal(struct index *index)
{
	char sql[64];
	int rc, waited;

	snprintf(sql, sizeof(sql), "PRAGMA journal_mode=%s", index->journal);
	for (waited = 0;; waited += 10) {
		rc = exec(index, sql);
		if (rc != -EBUSY || waited >= index->busy_ms)
			return rc;
		sqlite3_sleep(10);
	}
}

/* The file of generation gen: the index's own name for 0. */
static int
gen_file(const struct index *index, unsigned gen, char *buf, size_t len)
{
	int n = gen == 0 ? snprintf(buf, len, "%s", index->path)
			 : snprintf(buf, len, "%s.%u", index->path, gen);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The generation "<path>.gen" names; 0 when there is none. */
static unsigned
gen_read(const struct index *index)
{
	char path[STORE_PATH_MAX + 8], buf[16];
	unsigned long v;
	char *end;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s.gen", index->path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	v = strtoul(buf, &end, 10);
	return end != buf && v < UINT_MAX ? (unsigned)v : 0;
}

/* The directory of a path, as an O_DIRECTORY descriptor. */
static int
dir_of(const char *path)
{
	char dir[STORE_PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s",
		    slash == path ? 1 : (int)(slash - path), path);
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Replaces "<path>.gen" (temp file, fsync, rename, fsync the folder). */
static int
gen_write(const struct index *index, struct store *store, unsigned gen)
{
	char tmp[STORE_PATH_MAX + STORE_OWNER_MAX + 8];
	char path[STORE_PATH_MAX + 8], buf[16];
	int fd, n, rc = 0;

	snprintf(path, sizeof(path), "%s.gen", index->path);
	snprintf(tmp, sizeof(tmp), "%s.gen.%s", index->path, store->owner);
	n = snprintf(buf, sizeof(buf), "%u\n", gen);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return -errno;
	if (write(fd, buf, (size_t)n) != n || fsync(fd) == -1)
		rc = -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) == -1)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	if ((fd = dir_of(path)) >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

static int
db_open(struct index *index, const char *path)
{
	int rc;

	rc = sqlite3_open_v2(path, (sqlite3 **)&index->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
	    NULL);
	if (rc != SQLITE_OK)
		return errno_of(rc);
	sqlite3_busy_timeout(index->db, index->busy_ms);
	if ((rc = set_journal(index)) < 0 ||
	    (rc = exec(index, "PRAGMA foreign_keys=ON")) < 0 ||
	    (rc = exec(index, "PRAGMA synchronous=FULL")) < 0 ||
	    (rc = quick_check(index)) < 0)
		return rc;
	return migrate(index);
}

static int
is_built(struct index *index, int *built)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare(index, "SELECT 1 FROM meta WHERE key='built'", &st);
	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	*built = rc == SQLITE_ROW;
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

static int build_once(struct index *index, struct store *store);
static int rebuild_rows(struct index *index, struct store *store);

/*
 * Replaces the corrupt generation gen by a new one (see index.h), unless
 * someone else already has.  The claim is named by the SHA-256 of the
 * index's path, so that two processes that open one index build it once.
 */
static int
replace_corrupt(struct index *index, struct store *store, unsigned gen)
{
	char name[DIGEST_HEX_MAX], to[STORE_PATH_MAX];
	char fresh[STORE_PATH_MAX + STORE_OWNER_MAX + 8];
	struct claim claim = { 0 };
	struct index tmp;
	int rc;

	rc = digest_buf(DIGEST_SHA256, index->path, strlen(index->path), name);
	if (rc < 0)
		return rc;
	rc = claim_acquire(store, &claim, name, 4 * (int64_t)index->busy_ms,
	    8 * (int64_t)index->busy_ms);
	if (rc < 0)
		return rc;
	if (gen_read(index) != gen)
		goto out; /* switched while we waited */
	snprintf(fresh, sizeof(fresh), "%s.new.%s", index->path, store->owner);
	if ((rc = gen_file(index, gen + 1, to, sizeof(to))) < 0)
		goto out;
	tmp = *index;
	tmp.db = NULL;
	unlink(fresh);
	rc = db_open(&tmp, fresh);
	if (rc == 0 && (rc = begin(&tmp)) == 0)
		rc = end(&tmp, rebuild_rows(&tmp, store));
	index_close(&tmp);
	/* A new name: no process can have it open. */
	if (rc == 0 && rename(fresh, to) == -1)
		rc = -errno;
	if (rc == 0)
		rc = gen_write(index, store, gen + 1);
	if (rc < 0)
		unlink(fresh);
	else
		index->rebuilt = 1;
out:
	claim_release(store, &claim);
	return rc;
}

/* Opens the current generation, replacing a corrupt one. */
static int
open_current(struct index *index, struct store *store)
{
	char path[STORE_PATH_MAX];
	int rc = -EBADMSG, tries, built = 0;

	for (tries = 0; rc == -EBADMSG && tries < 3; tries++) {
		index->gen = gen_read(index);
		if ((rc = gen_file(index, index->gen, path, sizeof(path))) < 0)
			return rc;
		rc = db_open(index, path);
		if (rc == -EBADMSG) {
			/* Never trusted, never renamed: replaced. */
			index_close(index);
			if ((rc = replace_corrupt(index, store, index->gen)) <
			    0)
				return rc;
			rc = -EBADMSG;
		}
	}
	if (rc == 0)
		rc = is_built(index, &built);
	if (rc == 0 && !built)
		rc = build_once(index, store);
	if (rc < 0)
		index_close(index);
	return rc;
}

static int
node_ok(const char *node)
{
	size_t i, n = strlen(node);

	if (n == 0 || n > INDEX_NODE_MAX || node[0] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!((node[i] >= 'a' && node[i] <= 'z') ||
			(node[i] >= 'A' && node[i] <= 'Z') ||
			(node[i] >= '0' && node[i] <= '9') || node[i] == '.' ||
			node[i] == '_' || node[i] == '-'))
			return 0;
	return 1;
}

/* Where the index is, and whether it is this node's own. */
static int
choose_path(struct index *index, struct store *store,
    const struct index_conf *ic)
{
	char host[INDEX_NODE_MAX + 2] = "", rel[STORE_PATH_MAX];
	const char *node = ic != NULL ? ic->node : NULL;
	int n, rc;

	if (node != NULL && node[0] != '\0' && !node_ok(node))
		return -EINVAL;
	if (ic != NULL && ic->path != NULL && ic->path[0] != '\0') {
		index->private = 1;
		n = snprintf(index->path, sizeof(index->path), "%s", ic->path);
	} else if (!index_network_fs(store->dirfd)) {
		n = snprintf(index->path, sizeof(index->path), "%s/index.db",
		    store->root);
	} else {
		if (node == NULL || node[0] == '\0') {
			gethostname(host, sizeof(host) - 1);
			node = host;
		}
		if (!node_ok(node))
			return -EINVAL;
		index->private = 1;
		snprintf(rel, sizeof(rel), "nodes/%s", node);
		if ((rc = store_mkdirs(store, rel)) < 0)
			return rc;
		n = snprintf(index->path, sizeof(index->path),
		    "%s/nodes/%s/index.db", store->root, node);
	}
	return n < 0 || (size_t)n >= sizeof(index->path) ? -ENAMETOOLONG : 0;
}

void
index_set_busy(struct index *index, const struct index_conf *ic)
{
	int64_t busy =
	    ic != NULL && ic->stale_ms > 0 ? ic->stale_ms : INDEX_BUSY_MS;

	/* Well below the stale limit: a waiter must never look dead. */
	busy = ic != NULL && ic->busy_ms > 0
	    ? ic->busy_ms
	    : (busy / 4 < 100 ? 100 : busy / 4);
	index->busy_ms = (int)(busy > INDEX_BUSY_MS ? INDEX_BUSY_MS : busy);
	if (index->db != NULL)
		sqlite3_busy_timeout(index->db, index->busy_ms);
}

int
index_open(struct index *index, struct store *store,
    const struct index_conf *ic)
{
	int rc, fd;

	memset(index, 0, sizeof(*index));
	index_set_busy(index, ic);
	if ((rc = choose_path(index, store, ic)) < 0)
		return rc;
	fd = dir_of(index->path);
	snprintf(index->journal, sizeof(index->journal), "%s",
	    fd < 0 || index_network_fs(fd) ? "delete" : "wal");
	if (fd >= 0)
		close(fd);
	if ((rc = open_current(index, store)) == 0)
		rc = index_refresh(index, store);
	if (rc < 0)
		index_close(index);
	return rc;
}

static void queue_next(struct index *index);

static void
queue_work(uv_work_t *w)
{
	struct index_job *job = w->data;

	job->rc = job->run(job, job->index);
}

static void
queue_after(uv_work_t *w, int status)
{
	struct index_job *job = w->data;
	struct index *index = job->index;

	index->jobs = job->next;
	if (index->jobs == NULL)
		index->last = NULL;
	index->running = 0;
	/* Done first: what done() queues comes after what was queued. */
	job->done(job, status < 0 ? status : job->rc);
	queue_next(index);
}

static void
queue_next(struct index *index)
{
	struct index_job *job = index->jobs;
	int rc;

	if (job == NULL || index->running)
		return;
	index->running = 1;
	job->work.data = job;
	if ((rc = uv_queue_work(job->loop, &job->work, queue_work,
		 queue_after)) < 0) {
		/* Only for a bad call: end it as failed, keep the order. */
		job->rc = rc;
		queue_after(&job->work, rc);
	}
}

void
index_queue(struct index *index, uv_loop_t *loop, struct index_job *job,
    int (*run)(struct index_job *job, struct index *index),
    void (*done)(struct index_job *job, int rc))
{
	job->next = NULL;
	job->index = index;
	job->loop = loop;
	job->run = run;
	job->done = done;
	job->rc = 0;
	if (index->last != NULL)
		index->last->next = job;
	else
		index->jobs = job;
	index->last = job;
	queue_next(index);
}

void
index_queue_cancel(struct index *index)
{
	struct index_job *job, *rest;

	/* The running one (the first) stays; the rest end now. */
	if (index->jobs == NULL)
		return;
	rest = index->running ? index->jobs->next : index->jobs;
	if (index->running) {
		index->jobs->next = NULL;
		index->last = index->jobs;
	} else
		index->jobs = index->last = NULL;
	while ((job = rest) != NULL) {
		rest = job->next;
		job->done(job, -ECANCELED);
	}
}

int
index_queue_busy(const struct index *index)
{
	return index->jobs != NULL;
}

void
index_close(struct index *index)
{
	if (index->db != NULL)
		sqlite3_close_v2(index->db);
	index->db = NULL;
}

/* Steps an INSERT … RETURNING id, sets *id, finalizes. */
static int
finish_id(sqlite3_stmt *st, int64_t *id)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		rc = 0;
	} else
		rc = errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

/* Inserts or finds the model row; *id is set. */
static int
model_id(struct index *index, const struct manifest *m, int64_t *id)
{
	char folder[REF_FOLDER_MAX];
	sqlite3_stmt *st;
	int rc;

	if ((rc = ref_folder_of(m->type, m->repo, folder, sizeof(folder))) < 0)
		return rc;
	rc = prepare(index,
	    "INSERT INTO models(type, repo, folder) VALUES(?1, ?2, ?3)"
	    " ON CONFLICT(type, repo) DO UPDATE SET folder=?3 RETURNING id",
	    &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, ref_type_name(m->type), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, m->repo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, folder, -1, SQLITE_TRANSIENT);
	return finish_id(st, id);
}

static int
snapshot_row(struct index *index, const struct manifest *m, int64_t model,
    int64_t *id)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare(index,
	    "INSERT INTO snapshots(model, commit_id, source, trust, size,"
	    " nfiles, created, updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
	    " ON CONFLICT(model, commit_id) DO UPDATE SET source=?3, trust=?4,"
	    " size=?5, nfiles=?6, updated=?8 RETURNING id",
	    &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, model);
	sqlite3_bind_text(st, 2, m->commit, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->trust, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)manifest_size(m));
	sqlite3_bind_int64(st, 6, (sqlite3_int64)m->nfiles);
	sqlite3_bind_int64(st, 7, m->created);
	sqlite3_bind_int64(st, 8, m->updated);
	return finish_id(st, id);
}

static int
file_rows(struct index *index, const struct manifest *m, int64_t snap)
{
	sqlite3_stmt *del = NULL, *file = NULL, *blob = NULL;
	size_t i;
	int rc;

	if ((rc = prepare(index, "DELETE FROM files WHERE snapshot=?1", &del)) <
		0 ||
	    (rc = prepare(index,
		 "INSERT INTO files(snapshot, path, size, sha256, etag)"
		 " VALUES(?1, ?2, ?3, ?4, ?5)",
		 &file)) < 0 ||
	    (rc = prepare(index,
		 "INSERT OR IGNORE INTO blobs(sha256, size) VALUES(?1, ?2)",
		 &blob)) < 0)
		goto out;
	sqlite3_bind_int64(del, 1, snap);
	if ((rc = step_done(del)) < 0)
		goto out;
	for (i = 0; i < m->nfiles; i++) {
		const struct manifest_file *f = &m->files[i];

		sqlite3_reset(file);
		sqlite3_reset(blob);
		sqlite3_bind_int64(file, 1, snap);
		sqlite3_bind_text(file, 2, f->path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(file, 3, (sqlite3_int64)f->size);
		sqlite3_bind_text(file, 4, f->sha256, -1, SQLITE_STATIC);
		sqlite3_bind_text(file, 5, f->etag, -1, SQLITE_STATIC);
		sqlite3_bind_text(blob, 1, f->sha256, -1, SQLITE_STATIC);
		sqlite3_bind_int64(blob, 2, (sqlite3_int64)f->size);
		if ((rc = step_done(file)) < 0 || (rc = step_done(blob)) < 0)
			goto out;
	}
out:
	sqlite3_finalize(del);
	sqlite3_finalize(file);
	sqlite3_finalize(blob);
	return rc;
}

/*
 * Refs move to this manifest unless a newer manifest already holds them.
 * Those that its commit held and the manifest no longer lists go: a copy
 * published again (by another node, after it removed the older one) with
 * other revisions, so that the index says what a rebuild would.
 */
static int
ref_rows(struct index *index, const struct manifest *m, int64_t model)
{
	sqlite3_stmt *st;
	size_t i;
	int rc;

	rc = prepare(index, "DELETE FROM refs WHERE model=?1 AND commit_id=?2",
	    &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, model);
	sqlite3_bind_text(st, 2, m->commit, -1, SQLITE_STATIC);
	rc = step_done(st);
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	rc = prepare(index,
	    "INSERT INTO refs(model, name, commit_id, updated)"
	    " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(model, name) DO UPDATE"
	    " SET commit_id=?3, updated=?4 WHERE updated<=?4",
	    &st);
	if (rc < 0)
		return rc;
	for (i = 0; rc == 0 && i < m->nrevisions; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, model);
		sqlite3_bind_text(st, 2, m->revisions[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, m->commit, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, m->updated);
		rc = step_done(st);
	}
	sqlite3_finalize(st);
	return rc;
}

static int
run1(struct index *index, const char *sql, int64_t a, int64_t b)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prepare(index, sql, &st)) < 0)
		return rc;
	/* Statements take one or two parameters; bind what they have. */
	sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, b);
	rc = step_done(st);
	sqlite3_finalize(st);
	return rc;
}

static int
seen_row(struct index *index, const struct manifest *m, int64_t snap)
{
	char rel[STORE_PATH_MAX];
	sqlite3_stmt *st;
	int rc;

	if ((rc = manifest_rel(m, rel, sizeof(rel))) < 0 ||
	    (rc = prepare(index,
		 "INSERT OR REPLACE INTO manifests(rel, ino, mtime, size,"
		 " snapshot) VALUES(?1, ?2, ?3, ?4, ?5)",
		 &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, rel, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, m->saved_ino);
	sqlite3_bind_int64(st, 3, m->saved_ino != 0 ? m->saved_mtime : 0);
	sqlite3_bind_int64(st, 4, m->saved_ino != 0 ? m->saved_size : -1);
	sqlite3_bind_int64(st, 5, snap);
	rc = step_done(st);
	sqlite3_finalize(st);
	return rc;
}

static int
add_rows(struct index *index, const struct manifest *m, int64_t *snapshot)
{
	int64_t model = 0, snap = 0;
	int rc;

	if ((rc = model_id(index, m, &model)) < 0 ||
	    (rc = snapshot_row(index, m, model, &snap)) < 0 ||
	    (rc = file_rows(index, m, snap)) < 0 ||
	    (rc = ref_rows(index, m, model)) < 0)
		return rc;
	rc = run1(index,
	    "INSERT INTO access(snapshot, last_used) VALUES(?1, ?2)"
	    " ON CONFLICT(snapshot) DO NOTHING",
	    snap, m->updated);
	if (rc == 0 && m->pinned)
		rc = run1(index,
		    "INSERT OR IGNORE INTO pins(snapshot, since) VALUES(?1, "
		    "?2)",
		    snap, m->updated);
	else if (rc == 0)
		rc = run1(index, "DELETE FROM pins WHERE snapshot=?1", snap, 0);
	/*
	 * Recorded, so that a refresh notices its removal by another node,
	 * with the stat of the file this process saved it as: the very
	 * inode, so a manifest that another process saved over it since
	 * differs and is read again.  One that was not saved here (read
	 * from the file) is recorded with no stat, and a refresh reads it
	 * once to learn it (apply_one records it then).
	 */
	if (rc == 0)
		rc = seen_row(index, m, snap);
	*snapshot = snap;
	return rc;
}

int
index_add(struct index *index, const struct manifest *m)
{
	int64_t snap;
	int rc;

	if ((rc = begin(index)) < 0)
		return rc;
	return end(index, add_rows(index, m, &snap));
}

/*
 * A snapshot's rows, and its model's once it has no snapshot left.  Its
 * manifests row goes too: snapshot ids are reused, and a row left naming
 * this id would, once its file is found gone, drop the rows of the next
 * snapshot given the id, one whose manifest a refresh takes as known.
 */
static int
remove_rows(struct index *index, int64_t snapshot_id)
{
	int rc;

	rc = run1(index, "DELETE FROM manifests WHERE snapshot=?1", snapshot_id,
	    0);
	if (rc == 0)
		rc = run1(index,
		    "DELETE FROM refs WHERE (model, commit_id) IN (SELECT"
		    " model, commit_id FROM snapshots WHERE id=?1)",
		    snapshot_id, 0);
	if (rc == 0)
		rc = run1(index, "DELETE FROM snapshots WHERE id=?1",
		    snapshot_id, 0);
	if (rc == 0)
		rc = exec(index,
		    "DELETE FROM models WHERE id NOT IN"
		    " (SELECT model FROM snapshots)");
	return rc;
}

/* A manifest file as the index last saw it, or as a scan sees it now. */
struct seen {
	char *rel;
	int64_t ino, mtime, size, snap;
	int found;
};

struct scan {
	struct index *index;
	struct store *store;
	struct seen *old; /* the manifests table, sorted by rel */
	size_t nold;
	struct seen *todo; /* new or changed files */
	size_t ntodo, cap;
	int wait_view; /* a manifest waits for its snapshot's hub view */
};

static void
scan_release(struct scan *sc)
{
	size_t i;

	for (i = 0; i < sc->nold; i++)
		free(sc->old[i].rel);
	for (i = 0; i < sc->ntodo; i++)
		free(sc->todo[i].rel);
	free(sc->old);
	free(sc->todo);
}

static int
seen_cmp(const void *key, const void *s)
{
	return strcmp(key, ((const struct seen *)s)->rel);
}

static int
scan_load(struct scan *sc)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	struct seen *n;
	int rc;

	rc = prepare(sc->index,
	    "SELECT rel, ino, mtime, size, snapshot FROM manifests"
	    " ORDER BY rel",
	    &st);
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sc->nold == cap) {
			cap = cap == 0 ? 64 : 2 * cap;
			if ((n = realloc(sc->old, cap * sizeof(*n))) == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			sc->old = n;
		}
		n = &sc->old[sc->nold];
		memset(n, 0, sizeof(*n));
		if ((n->rel = strdup(text(st, 0))) == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		n->ino = sqlite3_column_int64(st, 1);
		n->mtime = sqlite3_column_int64(st, 2);
		n->size = sqlite3_column_int64(st, 3);
		n->snap = sqlite3_column_int64(st, 4);
		sc->nold++;
	}
	rc = rc == SQLITE_DONE ? 0 : errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

/* manifest_each(): compares one file with its row. */
static int
scan_one(const char *rel, void *arg)
{
	struct scan *sc = arg;
	struct seen *old, *n;
	struct stat st;

	if (fstatat(sc->store->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return 0; /* gone meanwhile, or not ours to read */
	old = sc->nold == 0
	    ? NULL
	    : bsearch(rel, sc->old, sc->nold, sizeof(*sc->old), seen_cmp);
	if (old != NULL) {
		old->found = 1;
		if (old->ino == (int64_t)st.st_ino &&
		    old->size == (int64_t)st.st_size &&
		    old->mtime ==
			(int64_t)st.st_mtim.tv_sec * 1000000000 +
			    st.st_mtim.tv_nsec)
			return 0;
	}
	if (sc->ntodo == sc->cap) {
		sc->cap = sc->cap == 0 ? 16 : 2 * sc->cap;
		if ((n = realloc(sc->todo, sc->cap * sizeof(*n))) == NULL)
			return -ENOMEM;
		sc->todo = n;
	}
	n = &sc->todo[sc->ntodo];
	memset(n, 0, sizeof(*n));
	if ((n->rel = strdup(rel)) == NULL)
		return -ENOMEM;
	n->snap = old != NULL ? old->snap : 0; /* an older copy's rows */
	n->ino = (int64_t)st.st_ino;
	n->size = (int64_t)st.st_size;
	n->mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	sc->ntodo++;
	return 0;
}

/* Drops the rows of a manifest that is gone, and its record. */
static int
drop_one(struct index *index, const struct seen *o)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (o->snap > 0)
		rc = remove_rows(index, o->snap);
	if (rc < 0 ||
	    (rc = prepare(index, "DELETE FROM manifests WHERE rel=?1", &st)) <
		0)
		return rc;
	sqlite3_bind_text(st, 1, o->rel, -1, SQLITE_STATIC);
	rc = step_done(st);
	sqlite3_finalize(st);
	return rc;
}

/*
 * Indexes one new or changed manifest and records it.  A refresh (and the
 * rebuild of a private index) waits for the snapshot's hub view, the step
 * before the index row in the publish order: until then the manifest is
 * not recorded, so the next scan looks again.  A changed manifest whose
 * view is missing is a new copy (another node removed the snapshot and
 * published it again, and that publish has not reached its view, or was
 * killed before): the rows of the older copy go with their record, so
 * that this index never lists a snapshot without its view.  A bad
 * manifest is left to fsck, recorded as not indexable.
 */
static int
apply_one(struct index *index, struct store *store, const struct seen *n,
    int wait_view)
{
	sqlite3_stmt *st;
	struct manifest m;
	const char *why;
	int64_t snap = 0;
	int rc;

	manifest_init(&m);
	rc = manifest_load(store, n->rel, &m, &why);
	if (rc == -ENOENT || rc == -ESTALE ||
	    (rc == 0 && wait_view && !hub_snapshot_exists(store, &m))) {
		manifest_release(&m);
		return rc == 0 && n->snap > 0 ? drop_one(index, n) : 0;
	}
	if (rc == 0)
		rc = add_rows(index, &m, &snap);
	else if (rc == -EINVAL || rc == -EFBIG)
		rc = 0;
	manifest_release(&m);
	if (rc < 0)
		return rc;
	rc = prepare(index,
	    "INSERT OR REPLACE INTO manifests(rel, ino, mtime, size, snapshot)"
	    " VALUES(?1, ?2, ?3, ?4, ?5)",
	    &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, n->rel, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, n->ino);
	sqlite3_bind_int64(st, 3, n->mtime);
	sqlite3_bind_int64(st, 4, n->size);
	sqlite3_bind_int64(st, 5, snap);
	rc = step_done(st);
	sqlite3_finalize(st);
	return rc;
}

/* Applies a scan's differences (inside a transaction). */
static int
scan_apply(struct scan *sc)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < sc->nold; i++)
		if (!sc->old[i].found)
			rc = drop_one(sc->index, &sc->old[i]);
	for (i = 0; rc == 0 && i < sc->ntodo; i++)
		rc = apply_one(sc->index, sc->store, &sc->todo[i],
		    sc->wait_view);
	return rc;
}

/* Scans manifests/ against the manifests table (outside a transaction). */
static int
scan_run(struct scan *sc, struct index *index, struct store *store,
    int wait_view)
{
	int rc;

	memset(sc, 0, sizeof(*sc));
	sc->index = index;
	sc->store = store;
	sc->wait_view = wait_view;
	if ((rc = scan_load(sc)) < 0)
		return rc;
	rc = manifest_each(store, scan_one, sc);
	return rc == -ENOENT ? 0 : rc;
}

/* Replaces every row with what the manifests say (inside a transaction). */
static int
rebuild_rows(struct index *index, struct store *store)
{
	struct scan sc;
	int rc;

	rc = exec(index,
	    "DELETE FROM access; DELETE FROM pins;"
	    " DELETE FROM files; DELETE FROM refs;"
	    " DELETE FROM snapshots; DELETE FROM models;"
	    " DELETE FROM blobs; DELETE FROM manifests;");
	if (rc == 0 && (rc = scan_run(&sc, index, store, index->private)) == 0)
		rc = scan_apply(&sc);
	scan_release(&sc);
	if (rc == 0)
		rc = exec(index,
		    "INSERT OR REPLACE INTO meta(key, value)"
		    " VALUES('built', strftime('%s','now'))");
	return rc;
}

int
index_rebuild(struct index *index, struct store *store)
{
	int rc;

	if ((rc = begin(index)) < 0)
		return rc;
	return end(index, rebuild_rows(index, store));
}

int
index_refresh(struct index *index, struct store *store)
{
	struct scan sc;
	size_t i;
	int rc, changed;

	if (gen_read(index) != index->gen) {
		/* Switched to a rebuilt generation: follow it. */
		index_close(index);
		if ((rc = open_current(index, store)) < 0)
			return rc;
	}
	rc = scan_run(&sc, index, store, 1);
	changed = sc.ntodo > 0;
	for (i = 0; !changed && i < sc.nold; i++)
		changed = !sc.old[i].found;
	if (rc == 0 && changed && (rc = begin(index)) == 0)
		rc = end(index, scan_apply(&sc));
	scan_release(&sc);
	return rc;
}

/*
 * Builds a new index once: several processes may open a new store at the
 * same moment, and the one that gets the write lock second finds it built.
 */
static int
build_once(struct index *index, struct store *store)
{
	int rc, built = 0;

	if ((rc = begin(index)) < 0)
		return rc;
	if ((rc = is_built(index, &built)) == 0 && !built) {
		rc = rebuild_rows(index, store);
		index->rebuilt = rc == 0;
	}
	return end(index, rc);
}

int
index_remove(struct index *index, int64_t snapshot_id)
{
	int rc;

	if ((rc = begin(index)) < 0)
		return rc;
	return end(index, remove_rows(index, snapshot_id));
}

int
index_set_pinned(struct index *index, int64_t snapshot_id, int pinned)
{
	return run1(index,
	    pinned ? "INSERT OR IGNORE INTO pins(snapshot, since)"
		     " VALUES(?1, ?2)"
		   : "DELETE FROM pins WHERE snapshot=?1",
	    snapshot_id, (int64_t)time(NULL));
}

int
index_touch(struct index *index, int64_t snapshot_id, int64_t now)
{
	return run1(index,
	    "INSERT INTO access(snapshot, last_used, uses) VALUES(?1, ?2, 1)"
	    " ON CONFLICT(snapshot) DO UPDATE SET last_used=?2, uses=uses+1",
	    snapshot_id, now);
}

#define SNAPSHOT_SELECT \
	"SELECT s.id, m.type, m.repo, m.folder, s.commit_id, s.source," \
	" s.trust, COALESCE((SELECT group_concat(name, ',') FROM (SELECT" \
	" name FROM refs r WHERE r.model=s.model AND" \
	" r.commit_id=s.commit_id ORDER BY name)), ''), s.size, s.nfiles," \
	" s.created, s.updated, COALESCE(a.last_used, s.updated)," \
	" p.snapshot IS NOT NULL" \
	" FROM snapshots s JOIN models m ON m.id=s.model" \
	" LEFT JOIN access a ON a.snapshot=s.id" \
	" LEFT JOIN pins p ON p.snapshot=s.id"

int
index_each_snapshot(struct index *index, enum repo_type type, const char *repo,
    const char *commit, int (*fn)(void *, const struct index_snapshot *),
    void *arg)
{
	struct index_snapshot s;
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = prepare(index,
	    SNAPSHOT_SELECT " WHERE (?1 IS NULL OR (m.type=?2 AND m.repo=?1))"
			    " AND (?3 IS NULL OR s.commit_id=?3)"
			    " ORDER BY 13, m.repo, s.commit_id",
	    &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ref_type_name(type), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, commit, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&s, 0, sizeof(s));
		s.id = sqlite3_column_int64(st, 0);
		ref_type_parse(text(st, 1), &s.type);
		s.repo = text(st, 2);
		s.folder = text(st, 3);
		s.commit = text(st, 4);
		s.source = text(st, 5);
		s.trust = text(st, 6);
		s.refs = text(st, 7);
		s.size = (uint64_t)sqlite3_column_int64(st, 8);
		s.nfiles = (uint64_t)sqlite3_column_int64(st, 9);
		s.created = sqlite3_column_int64(st, 10);
		s.updated = sqlite3_column_int64(st, 11);
		s.last_used = sqlite3_column_int64(st, 12);
		s.pinned = sqlite3_column_int(st, 13);
		if ((stop = fn(arg, &s)) != 0)
			break;
	}
	rc = stop != 0 ? stop : rc == SQLITE_DONE ? 0 : errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

int
index_each_file(struct index *index, int64_t snapshot_id,
    int (*fn)(void *, const char *, uint64_t, const char *, const char *),
    void *arg)
{
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = prepare(index,
	    "SELECT path, size, sha256, etag FROM files WHERE snapshot=?1"
	    " ORDER BY path",
	    &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, snapshot_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((stop = fn(arg, text(st, 0),
			 (uint64_t)sqlite3_column_int64(st, 1), text(st, 2),
			 text(st, 3))) != 0)
			break;
	rc = stop != 0 ? stop : rc == SQLITE_DONE ? 0 : errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

/* Runs a query with text parameters; copies column 0 of a unique row. */
static int
lookup(struct index *index, const char *sql, const char *a, const char *b,
    const char *c, char *out, size_t len)
{
	sqlite3_stmt *st;
	int rc, rows = 0;

	if ((rc = prepare(index, sql, &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (rows++ == 0)
			snprintf(out, len, "%s", text(st, 0));
	rc = rc == SQLITE_DONE ? 0 : errno_of(rc);
	sqlite3_finalize(st);
	if (rc == 0 && rows != 1)
		rc = rows == 0 ? -ENOENT : -EEXIST;
	return rc;
}

int
index_resolve(struct index *index, enum repo_type type, const char *repo,
    const char *rev, char *commit)
{
	const char *t = ref_type_name(type);
	size_t n = strlen(rev);
	char like[DIGEST_SHA1_HEX + 2];
	int rc;

	rc = lookup(index,
	    "SELECT r.commit_id FROM refs r JOIN models m ON m.id=r.model"
	    " WHERE m.type=?1 AND m.repo=?2 AND r.name=?3",
	    t, repo, rev, commit, DIGEST_SHA1_HEX + 1);
	if (rc != -ENOENT || n < 7 || n > DIGEST_SHA1_HEX ||
	    !ref_is_hex(rev, n))
		return rc;
	snprintf(like, sizeof(like), "%s%%", rev);
	return lookup(index,
	    "SELECT s.commit_id FROM snapshots s JOIN models m ON m.id=s.model"
	    " WHERE m.type=?1 AND m.repo=?2 AND s.commit_id LIKE ?3",
	    t, repo, like, commit, DIGEST_SHA1_HEX + 1);
}

int
index_blob_refs(struct index *index, const char *sha256, int64_t *n)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare(index, "SELECT count(*) FROM files WHERE sha256=?1", &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	rc = rc == SQLITE_ROW ? 0 : errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

int
index_each_orphan(struct index *index, int (*fn)(void *, const char *),
    void *arg)
{
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = prepare(index,
	    "SELECT sha256 FROM blobs b WHERE NOT EXISTS"
	    " (SELECT 1 FROM files f WHERE f.sha256=b.sha256)",
	    &st);
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((stop = fn(arg, text(st, 0))) != 0)
			break;
	rc = stop != 0 ? stop : rc == SQLITE_DONE ? 0 : errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

int
index_forget_blob(struct index *index, const char *sha256)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare(index,
	    "DELETE FROM blobs WHERE sha256=?1 AND NOT EXISTS"
	    " (SELECT 1 FROM files WHERE sha256=?1)",
	    &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, sha256, -1, SQLITE_STATIC);
	rc = step_done(st);
	sqlite3_finalize(st);
	return rc;
}

int
index_totals(struct index *index, uint64_t *blob_bytes, uint64_t *blob_count,
    uint64_t *file_bytes)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare(index,
	    "SELECT (SELECT COALESCE(sum(size), 0) FROM blobs b WHERE EXISTS"
	    " (SELECT 1 FROM files f WHERE f.sha256=b.sha256)),"
	    " (SELECT count(*) FROM blobs b WHERE EXISTS"
	    " (SELECT 1 FROM files f WHERE f.sha256=b.sha256)),"
	    " (SELECT COALESCE(sum(size), 0) FROM snapshots)",
	    &st);
	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*blob_bytes = (uint64_t)sqlite3_column_int64(st, 0);
		*blob_count = (uint64_t)sqlite3_column_int64(st, 1);
		*file_bytes = (uint64_t)sqlite3_column_int64(st, 2);
		rc = 0;
	} else
		rc = errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

int
index_each_use(struct index *index,
    int (*fn)(void *, int64_t, const char *, uint64_t), void *arg)
{
	sqlite3_stmt *st;
	int rc, stop = 0;

	rc = prepare(index,
	    "SELECT snapshot, sha256, size FROM files ORDER BY sha256", &st);
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((stop = fn(arg, sqlite3_column_int64(st, 0), text(st, 1),
			 (uint64_t)sqlite3_column_int64(st, 2))) != 0)
			break;
	rc = stop != 0 ? stop : rc == SQLITE_DONE ? 0 : errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}

int
index_find_etag(struct index *index, const char *etag, char *sha256,
    uint64_t *size)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare(index,
	    "SELECT sha256, size FROM files WHERE etag=?1 LIMIT 1", &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, etag, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(sha256, DIGEST_HEX_MAX, "%s", text(st, 0));
		*size = (uint64_t)sqlite3_column_int64(st, 1);
		rc = 0;
	} else
		rc = rc == SQLITE_DONE ? -ENOENT : errno_of(rc);
	sqlite3_finalize(st);
	return rc;
}
