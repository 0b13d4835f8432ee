/*
 * origin_dir: a local directory as an origin (file:///dir, and
 * "modelcache import DIR NAME").
 *
 * This is how a model baked into an image layer reaches the shared store.
 * The directory is listed and every name checked before the store is
 * touched: regular files only, symlinks only when they lead to a regular
 * file inside the directory, every path valid for a repo (ref_check_path).
 * Then the files are copied into the store by parallel workers, each byte
 * hashed once on the way, each blob claimed and published, and the whole
 * published as one snapshot.  A failure leaves the store as it was, save
 * for blobs that were already complete (content-addressed, harmless, and
 * reused by the next attempt).
 */
#ifndef MC_ORIGIN_DIR_H
#define MC_ORIGIN_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "manifest.h"
#include "store.h"

#define ORIGIN_DIR_DEPTH_MAX 64

struct dir_file {
	char *path; /* repo-relative */
	char *src;  /* absolute path to read */
	uint64_t size;
};

struct dir_listing {
	char *root; /* realpath of the directory */
	struct dir_file *files;
	size_t n, cap;
	uint64_t total;
};

/*
 * Lists and checks dir.  Returns 0, or a negative errno with a message
 * naming the offending entry in err (-EINVAL for a name or type that cannot
 * be imported, -ENOENT/-ENOTDIR for a bad dir).
 */
int dir_list(const char *dir, struct dir_listing *list, char *err,
    size_t errlen);
void dir_listing_release(struct dir_listing *list);

/* Called from the importing thread about every interval; may be NULL. */
struct import_progress {
	void (*fn)(void *arg, uint64_t done, uint64_t total, size_t files_done,
	    size_t files);
	void *arg;
};

struct import_opts {
	enum repo_type type;
	const char *repo;
	const char *revision; /* "main" when NULL */
	unsigned workers;     /* 0: two per CPU, at most 8 */
	int64_t stale_ms;
	struct import_progress progress;
};

/*
 * Imports a listing as a snapshot.  On success *m holds the published
 * manifest (release it).  Returns 0 or a negative errno; on error err names
 * the file that failed.
 */
int dir_import(struct store *store, struct index *index,
    const struct dir_listing *list, const struct import_opts *opts,
    struct manifest *m, char *err, size_t errlen);

/* Whether the Hub would keep this file in LFS (named by SHA-256). */
int dir_is_lfs(const char *path, uint64_t size);

#endif
