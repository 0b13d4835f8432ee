/*
 * index: the SQLite index of the store.
 *
 * The index answers queries fast (listing, sizes, LRU order, which blobs
 * are still referenced) and is never the only record of anything: every row
 * can be rebuilt from the manifests (index_rebuild).  A corrupt or missing
 * index.db is moved aside and rebuilt at open, never trusted.  Writers use
 * short BEGIN IMMEDIATE transactions under a busy timeout, so any number of
 * processes on any number of nodes may share it.  The schema is in index.c.
 */
#ifndef MC_INDEX_H
#define MC_INDEX_H

#include <stdint.h>

#include "manifest.h"
#include "store.h"

#define INDEX_BUSY_MS 30000

struct index {
	void *db;	 /* sqlite3 *, owned */
	int rebuilt;	 /* set when open had to rebuild */
	char journal[8]; /* "wal" or "delete", chosen by filesystem */
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
 * Opens <store>/index.db, creating, migrating or rebuilding it as needed.
 * Returns 0 or a negative errno.
 */
int index_open(struct index *index, struct store *store);
void index_close(struct index *index);

/* Replaces the index's rows with what the manifests say. */
int index_rebuild(struct index *index, struct store *store);

/* Records a published manifest (and moves its revisions to it). */
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
