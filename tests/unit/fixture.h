/*
 * fixture: what the unit tests of the store modules share (test_fsck,
 * test_gc, test_hub, test_index, test_origin_dir, test_snapshot; test_lease,
 * test_manifest and test_store for the small helpers): a temporary folder
 * holding a store and its index, blobs and manifest files made from bytes,
 * the index rows copied out, lists of strings compared as sets, and a few
 * looks at the store's tree.  Compiled into each of those programs
 * (Makefile.am); include after unit.h and unit_store.h.
 */
#ifndef MC_FIXTURE_H
#define MC_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "index.h"
#include "manifest.h"
#include "store.h"

#define FIXTURE_SNAPS 16
#define FIXTURE_FILES 16

/* A temporary folder holding a store and source files to ingest. */
struct fixture {
	char *dir;
	char root[512]; /* dir/store */
	char src[512];	/* dir/src: files to ingest */
	unsigned nsrc;
	struct store store;
	struct index index; /* closed by fixture_close(), if open */
};

/* Makes one (dir/src created), with the index open when index is set. */
void fixture_open(struct fixture *fx, int index);
/* Closes it (the index too, whoever opened it) and removes its folder. */
void fixture_close(struct fixture *fx);
/* cmocka setup (a store; a store and its index) and teardown. */
int fixture_setup(void **state);
int fixture_setup_index(void **state);
int fixture_teardown(void **state);

/* Ingests and publishes len bytes of content as a store blob. */
void fixture_blob(struct fixture *fx, const void *content, size_t len,
    struct blob *b);
/*
 * Adds path to m with content (a string, published as a blob); lfs picks
 * the etag: the SHA-256 as for an LFS file, else the git blob SHA-1.  The
 * blob goes to *out when out is not NULL.
 */
void fixture_add_file(struct fixture *fx, struct manifest *m, const char *path,
    const char *content, int lfs, struct blob *out);

/* A copy of what index_each_snapshot() gives, valid after the call. */
struct fixture_snap {
	int64_t id;
	enum repo_type type;
	char repo[128], folder[REF_FOLDER_MAX], commit[DIGEST_SHA1_HEX + 1];
	char source[1024], trust[16], refs[256];
	uint64_t size, nfiles;
	int64_t created, updated, last_used;
	int pinned;
};

struct fixture_snaps {
	struct fixture_snap v[FIXTURE_SNAPS];
	size_t n;
};

/* index_each_snapshot()'s callback that adds to a struct fixture_snaps. */
int fixture_collect_snap(void *arg, const struct index_snapshot *s);
/* The rows index_each_snapshot(type, repo, commit) gives, in its order. */
void fixture_snaps(struct fixture *fx, enum repo_type type, const char *repo,
    const char *commit, struct fixture_snaps *out);

/* The one row of commit (any repo), which must be the only one. */
struct fixture_snap fixture_one(struct fixture *fx, const char *commit);

/* A copy of what index_each_file() gives. */
struct fixture_file {
	char path[64];
	uint64_t size;
	char sha256[DIGEST_HEX_MAX], etag[DIGEST_HEX_MAX];
};

struct fixture_files {
	struct fixture_file v[FIXTURE_FILES];
	size_t n;
};

/* The files of the snapshot row id, in path order. */
void fixture_files(struct fixture *fx, int64_t id, struct fixture_files *out);

/* A growable list of strings, to compare trees and reports as sets. */
struct list {
	char **v;
	size_t n, cap;
};

void list_add(struct list *l, const char *f, ...)
    __attribute__((format(printf, 2, 3)));
void list_free(struct list *l);
/* Sorts; uniq drops duplicates. */
void list_sort(struct list *l, int uniq);
/*
 * Fails, printing both, unless got and want hold the same strings (each
 * sorted first; uniq: as sets, duplicates dropped).  what names them.
 */
void list_assert_same(const char *what, struct list *got, struct list *want,
    int uniq);

/* Whether rel (store-relative) exists, as lstat() sees it. */
int fixture_exists(struct fixture *fx, const char *rel);
/* How many blobs store_blob_each() finds. */
int fixture_blob_count(struct fixture *fx);
/* Fails, naming an entry, unless the store-relative directory is empty. */
void fixture_assert_empty(struct fixture *fx, const char *rel);
/* Checks that rel (store-relative) is a file of exactly commit. */
void fixture_assert_ref(struct fixture *fx, const char *rel,
    const char *commit);
/* The entries of dir/rel, . and .. aside. */
int fixture_count(const char *dir, const char *rel);
/* How many files in dir/tmp are named quarantine.*<suffix>. */
int fixture_quarantined(const char *dir, const char *suffix);
/* The pid of a process that has just exited (and been reaped). */
pid_t fixture_dead_pid(void);

#endif
