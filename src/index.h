/*
 * index: the SQLite index of the store.
 *
 * The index answers queries fast (listing, sizes, LRU order, which blobs
 * are still referenced) and is never the only record of anything: every row
 * can be rebuilt from the manifests (index_rebuild).  Writers use short
 * BEGIN IMMEDIATE transactions under a busy timeout well below the stale
 * limit of claims and leases, so that a writer never waits on the index
 * long enough to look dead.
 *
 * SQLite is never written from two nodes: on a network filesystem two
 * clients' caches lose committed rows silently (measured on GlusterFS, in
 * WAL and in DELETE mode).  So an index is either
 *
 *  - shared: <store>/index.db, one for every process, when the store is on
 *    a local filesystem (WAL), or
 *  - private to a node: the file the configuration names (MODELCACHE_INDEX,
 *    best on node-local disk), or by default on a network filesystem
 *    <store>/nodes/<node>/index.db, where <node> is the configured node id
 *    or the host name (in Kubernetes, the pod's name: the daemon and the
 *    CLI of one pod share it, and share a kernel).  A private index learns
 *    what other nodes published and removed from the manifests, the truth,
 *    through index_refresh().
 *
 * A corrupt index (PRAGMA quick_check at open) is never renamed: other
 * processes may have it open.  Under a claim, a new one is built beside it
 * ("<path>.new.<owner>"), renamed to the next generation's name, which no
 * one has open, and "<path>.gen" is replaced to name that generation.
 * Openers follow "<path>.gen"; index_refresh() reopens when it changed.
 * The schema is in index.c.
 *
 * A program on a libuv loop never calls the index from the loop's thread
 * while it serves: a lock another process holds makes any call wait up to
 * the busy timeout, and a refresh walks manifests/.  It queues the work
 * instead (index_queue()): each job runs on libuv's thread pool, one at a
 * time, in the order queued, on this one handle.  One queue rather than a
 * connection per job, because the handle is more than a connection (the
 * generation open, which index_refresh() may switch), SQLite lets one
 * writer in at a time anyway, and a held lock then ties up one pool
 * thread, never all of them (hashing and fsyncs share the pool).
 */
#ifndef MC_INDEX_H
#define MC_INDEX_H

#include <stdint.h>

#include <uv.h>

#include "manifest.h"
#include "store.h"

#define INDEX_BUSY_MS 30000 /* the most any busy timeout may be */
#define INDEX_NODE_MAX 64

struct index_job;

struct index {
	void *db;	 /* sqlite3 *, owned */
	int rebuilt;	 /* set when open had to rebuild */
	int private;	 /* this node's own: refreshed from the manifests */
	char journal[8]; /* "wal" or "delete", chosen by filesystem */
	int busy_ms;
	unsigned gen;		   /* the generation open (see above) */
	char path[STORE_PATH_MAX]; /* the index's name, before generations */
	/* index_queue(): the first is the running one, when running is set */
	struct index_job *jobs, *last;
	int running;
};

/* Where the index lives and how long it waits; NULL fields are defaults. */
struct index_conf {
	const char *path; /* a private index file; NULL or "": chosen */
	const char *node; /* the node id; NULL or "": the host name */
	int64_t stale_ms; /* the stale limit */
	int64_t busy_ms;  /* the busy timeout; 0: a 4th of stale_ms, at
			     least 100 ms; at most INDEX_BUSY_MS either way */
};

/* One snapshot (a model revision) as the index knows it. */
struct index_snapshot {
	int64_t id;
	enum repo_type type;
	const char *repo, *folder, *commit, *source, *trust;
	const char *refs; /* revision names, comma-separated, or "" */
	uint64_t size, nfiles;
	int64_t created, updated, last_used;
	int pinned;
};

/*
 * Opens the index of the store (where: see above; ic may be NULL),
 * creating, migrating or rebuilding it as needed, and refreshes a private
 * one.  Returns 0 or a negative errno: -EINVAL for a bad node id.
 */
int index_open(struct index *index, struct store *store,
    const struct index_conf *ic);
void index_close(struct index *index);

/*
 * Sets the busy timeout from ic's stale_ms and busy_ms (NULL: defaults),
 * on the open index too: a reload's new stale limit takes effect.
 */
void index_set_busy(struct index *index, const struct index_conf *ic);

/*
 * Work on the index off the loop (see above).  The owner embeds it, sets
 * data, and gets it back in done().
 */
struct index_job {
	uv_work_t work; /* the queue's, as next */
	struct index_job *next;
	struct index *index;
	uv_loop_t *loop;
	/* on a pool thread, alone on the index: 0 or a negative errno */
	int (*run)(struct index_job *job, struct index *index);
	/* then on the loop's thread, with run's result (or -ECANCELED) */
	void (*done)(struct index_job *job, int rc);
	void *data; /* the owner's */
	int rc;
};

/*
 * Queues job, whose data the caller has set: run() once every job queued
 * before it is done, then done().  job must live until done() is called;
 * the queue does not touch it after.  While a job is queued, the loop's
 * thread calls no other index function (run() and done() may queue more).
 */
void index_queue(struct index *index, uv_loop_t *loop, struct index_job *job,
    int (*run)(struct index_job *job, struct index *index),
    void (*done)(struct index_job *job, int rc));

/*
 * The jobs queued but not started end at once, done() with -ECANCELED (a
 * program stopping need not wait a busy timeout for each); the running
 * one ends as it ends.  From the loop's thread.
 */
void index_queue_cancel(struct index *index);

/* Whether a job is queued or running. */
int index_queue_busy(const struct index *index);

/*
 * Brings an index up to date with the manifests: a readdir of manifests/
 * and a stat of each, compared with what the index recorded; a new or
 * changed manifest whose snapshot is in the hub view is added (as
 * index_rebuild adds it), a vanished one's rows are dropped.  Writes
 * nothing when nothing changed.  A private index learns so what other
 * nodes did; the shared one, which every publisher writes, what a
 * publisher or remover killed between its manifest and its index row left
 * (index_open runs it; drop_blob in snapshot.c before a blob goes).  Also
 * reopens the index when its generation changed.
 */
int index_refresh(struct index *index, struct store *store);

/* Replaces the index's rows with what the manifests say. */
int index_rebuild(struct index *index, struct store *store);

/*
 * Records a published manifest (and moves its revisions to it), with the
 * file manifest_save() wrote it as (m->saved_ino etc.), so that the next
 * refresh finds that file known and reads nothing.
 */
int index_add(struct index *index, const struct manifest *m);

/*
 * Removes a snapshot's rows.  Blobs that no file row references any more are
 * left in the blobs table for index_each_orphan() and index_forget_blob().
 */
int index_remove(struct index *index, int64_t snapshot_id);

/* Sets the pinned flag of a snapshot. */
int index_set_pinned(struct index *index, int64_t snapshot_id, int pinned);

/* Records a use of a snapshot at now (seconds), for LRU eviction. */
int index_touch(struct index *index, int64_t snapshot_id, int64_t now);

/*
 * Calls fn for each snapshot matching the filter, least recently used first:
 * repo NULL matches all; commit NULL matches every commit of repo.  The
 * strings in the struct are valid during the call only.  Stops at a non-zero
 * return of fn, which is returned.
 */
int index_each_snapshot(struct index *index, enum repo_type type,
    const char *repo, const char *commit,
    int (*fn)(void *arg, const struct index_snapshot *s), void *arg);

/* Calls fn for each file of a snapshot, in path order. */
int index_each_file(struct index *index, int64_t snapshot_id,
    int (*fn)(void *arg, const char *path, uint64_t size, const char *sha256,
	const char *etag),
    void *arg);

/*
 * Resolves a revision of a repo to a commit: a full commit id names itself
 * when such a snapshot exists; a ref name maps through the refs; 7 to 39
 * hex digits match a unique commit prefix.  -ENOENT when nothing matches.
 */
int index_resolve(struct index *index, enum repo_type type, const char *repo,
    const char *rev, char *commit);

/*
 * The blob of some indexed file whose Hub etag is etag (a git SHA-1 or a
 * SHA-256): its SHA-256 and size.  -ENOENT when none.
 */
int index_find_etag(struct index *index, const char *etag, char *sha256,
    uint64_t *size);

/* Number of file rows, across all snapshots, that reference a blob. */
int index_blob_refs(struct index *index, const char *sha256, int64_t *n);

/* Calls fn for each blob that no file row references. */
int index_each_orphan(struct index *index,
    int (*fn)(void *arg, const char *sha256), void *arg);
/* Drops a blob row if no file row references it. */
int index_forget_blob(struct index *index, const char *sha256);

/* Unique blob bytes and count; and the sum of file sizes over snapshots. */
int index_totals(struct index *index, uint64_t *blob_bytes,
    uint64_t *blob_count, uint64_t *file_bytes);

/*
 * Calls fn with (snapshot id, sha256, size) for every file row, ordered by
 * sha256: what eviction planning needs in one pass.
 */
int index_each_use(struct index *index,
    int (
	*fn)(void *arg, int64_t snapshot_id, const char *sha256, uint64_t size),
    void *arg);

#endif
