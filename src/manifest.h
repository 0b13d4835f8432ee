/*
 * manifest: the durable record of one model revision.
 *
 * manifests/<folder>/<commit>.json, written atomically once the blobs it
 * names are published, is the record the index and the hub view are rebuilt
 * from.  It says where the model came from and, for every file, its path,
 * size, SHA-256 and Hugging Face etag:
 *
 *	{"format":1,"type":"model","repo":"org/name",
 *	 "source":"file:///models/x","commit":"<40 hex>",
 *	 "revisions":["main"],"created":1764180000,"updated":1764180000,
 *	 "pinned":false,"trust":"verified",
 *	 "files":[{"path":"config.json","size":665,"sha256":"<64 hex>",
 *		   "etag":"<40 or 64 hex>"},...]}
 *
 * "revisions" are the names that resolved to this commit; when a name is
 * later found on several manifests, the one with the latest "updated" holds
 * it.  A manifest read from disk is input like any other: every field is
 * checked, paths with ref_check_path().
 */
#ifndef MC_MANIFEST_H
#define MC_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "ref.h"
#include "store.h"

#define MANIFEST_FILES_MAX 100000
#define MANIFEST_REVISIONS_MAX 64
#define MANIFEST_SIZE_MAX (64 * 1024 * 1024)

struct manifest_file {
	char *path;
	uint64_t size;
	char sha256[DIGEST_HEX_MAX];
	char etag[DIGEST_HEX_MAX]; /* 40 hex (git) or 64 hex (LFS) */
};

struct manifest {
	enum repo_type type;
	char *repo;
	char *source;
	char commit[DIGEST_SHA1_HEX + 1];
	char **revisions;
	size_t nrevisions;
	int64_t created, updated;
	int pinned;
	char trust[16]; /* "verified" or "tofu" */
	struct manifest_file *files;
	size_t nfiles, cap;
	/*
	 * The file manifest_save() last wrote it as: inode, mtime in
	 * nanoseconds and size (ino 0: not saved since manifest_init), for
	 * the index to record (index_add), so that its next refresh knows
	 * the file without reading it again.
	 */
	int64_t saved_ino, saved_mtime, saved_size;
};

void manifest_init(struct manifest *m);
void manifest_release(struct manifest *m);

/* Sets repo, type and source (copied).  0, -EINVAL or -ENOMEM. */
int manifest_set_origin(struct manifest *m, enum repo_type type,
    const char *repo, const char *source);
/* Appends a file (strings copied); -EINVAL for a bad path or digest. */
int manifest_add_file(struct manifest *m, const char *path, uint64_t size,
    const char *sha256, const char *etag);
/* Adds a revision name if not there yet (40-hex commits are not names). */
int manifest_add_revision(struct manifest *m, const char *rev);
int manifest_has_revision(const struct manifest *m, const char *rev);
/* Sorts files by path; -EEXIST when two share a path. */
int manifest_sort(struct manifest *m);
/* Total of the file sizes. */
uint64_t manifest_size(const struct manifest *m);

/*
 * Derives a commit id for a model whose origin has none: the first 40 hex
 * digits of the SHA-256 of "modelcache-commit 1\n" then
 * "<path>\0<size>\0<sha256>\n" for each file in path order.  The same
 * files always give the same commit.
 */
int manifest_derive_commit(struct manifest *m);

/* The store-relative manifest path, and its directory. */
int manifest_rel(const struct manifest *m, char *buf, size_t len);
int manifest_folder(const struct manifest *m, char *buf, size_t len);
/* The manifest path of folder/commit.  0 or -ENAMETOOLONG. */
int manifest_rel_of(const char *folder, const char *commit, char *buf,
    size_t len);

/* Encodes as JSON; the caller frees.  NULL when out of memory. */
char *manifest_encode(const struct manifest *m);
/* Decodes and checks; on -EINVAL *why names the problem. */
int manifest_decode(struct manifest *m, const char *buf, size_t len,
    const char **why);

/* Writes atomically to manifest_rel(), and records the file in m. */
int manifest_save(struct store *store, struct manifest *m);
/*
 * Writes to manifest_rel() unless a manifest is there: 0, or -EEXIST when
 * one is (kept as it is), or another negative errno.
 */
int manifest_save_new(struct store *store, struct manifest *m);
/*
 * Reads a store-relative manifest file.  -EINVAL with *why set for anything
 * that is not a valid manifest at its own place (manifest_rel): not a
 * regular file, too large, malformed, or filed under another name.
 */
int manifest_load(struct store *store, const char *rel, struct manifest *m,
    const char **why);
/* Removes the manifest file (and its folder when empty). */
int manifest_unlink(struct store *store, const struct manifest *m);
/*
 * Whether manifests/<folder>/<commit>.json is there now (folder as
 * ref_folder_of() names it): 1 or 0.  A look by name, for a removal that
 * must stop when a publish saved the manifest again.
 */
int manifest_exists(struct store *store, const char *folder,
    const char *commit);

/*
 * Removal's commit point, made undoable (snapshot.c): the manifest is
 * renamed aside to manifests/<folder>/<commit>.json.removing.<owner>, the
 * remover's store owner, a name that no reader takes for a manifest (the
 * index refresh, manifest_each() and manifest_exists() see only
 * <commit>.json), so that while aside the snapshot is not published.
 * manifest_aside() renames it (and stamps the aside file's mtime with the
 * store's clock, for a remover of another node to be judged by age), and
 * writes the aside path into aside: 0, -ENOENT when no manifest is there,
 * or another negative errno (aside emptied unless the rename was done).  manifest_put_back() links the aside file back
 * to its manifest path, never over a manifest a publish saved meanwhile,
 * then removes the aside file: 0, -EEXIST when a manifest was there (kept
 * as it is), or another negative errno (the aside file stays).
 * manifest_drop_aside() removes the aside file (gone already is 0), and
 * the folder when empty.
 */
int manifest_aside(struct store *store, const struct manifest *m, char *aside,
    size_t len);
int manifest_put_back(struct store *store, const char *aside);
int manifest_drop_aside(struct store *store, const char *aside);
/*
 * Calls fn for each aside file under manifests/ with its store-relative
 * path, folder, commit and the owner of the removal that set it aside.
 * Stops at the first non-zero return, which it returns.
 */
int manifest_each_aside(struct store *store,
    int (*fn)(const char *rel, const char *folder, const char *commit,
	const char *owner, void *arg),
    void *arg);

/*
 * Calls fn for each manifest file under manifests/, with its store-relative
 * path.  Stops at the first non-zero return, which it returns.
 */
int manifest_each(struct store *store, int (*fn)(const char *rel, void *arg),
    void *arg);

#endif
