/*
 * hub: the Hugging Face cache view of the store, under hub/.
 *
 * For each model revision (a manifest) the view holds, exactly as
 * huggingface_hub writes its own cache (shared/reference/hf-hub.md, 3.11):
 *
 *	hub/<folder>/blobs/<etag>		hard link to the store blob
 *	hub/<folder>/snapshots/<commit>/<path>	relative symlink to the blob,
 *						"../" depth+2 times
 *	hub/<folder>/refs/<revision>		40 hex, no newline
 *
 * so that HF_HUB_CACHE=<store>/hub with HF_HUB_OFFLINE=1 loads the model.
 * Blob links are hard links, never symlinks: HF tools delete the resolved
 * blob path, and must not delete store blobs through the view.  A snapshot
 * is built in tmp/ and renamed in whole; refs are written last, each by
 * rename.  Nothing of modelcache's own ever lands in hub/.  The view holds
 * nothing that the blobs and manifests do not: it can always be rebuilt.
 */
#ifndef MC_HUB_H
#define MC_HUB_H

#include <stdint.h>

#include "manifest.h"
#include "store.h"

struct index;

/* The view's directory under the store's root: HF_HUB_CACHE=<root>/hub. */
#define HUB_DIR "hub"

/* What a check can find wrong in the view. */
enum hub_problem {
	HUB_SNAPSHOT_MISSING, /* no snapshots/<commit> for a manifest */
	HUB_ENTRY_MISSING,    /* a snapshot lacks a file: half-built */
	HUB_LINK_WRONG,	      /* a snapshot link names the wrong blob */
	HUB_LINK_DANGLING,    /* a snapshot link leads nowhere */
	HUB_BLOB_UNLINKED,    /* a hub blob is not the store blob's inode */
	HUB_REF_BAD,	      /* a ref is not exactly 40 hex digits */
	HUB_REF_DANGLING,     /* a ref names a missing snapshot */
	HUB_SNAPSHOT_STRAY,   /* a snapshot no manifest describes */
};

/* "hub_snapshot_missing" and so on, for reports and JSON. */
const char *hub_problem_name(enum hub_problem problem);
const char *hub_problem_text(enum hub_problem problem);

/* Reports one problem found by a check: the store-relative path and what. */
struct hub_report {
	void (*bad)(void *arg, const char *path, enum hub_problem problem);
	void *arg;
	unsigned count;
};

/*
 * Publishes (or completes, or repairs) the view of one manifest: blob links,
 * the snapshot, then a ref for each of m->revisions.  Idempotent; entries
 * that exist but are wrong are replaced by rename.  The store blobs must be
 * published already.
 */
int hub_publish(struct store *store, const struct manifest *m);

/*
 * Removes one snapshot from the view: the refs naming the commit first,
 * then the snapshot (renamed out, so it vanishes at once, then removed),
 * the hub blobs no remaining snapshot links to, and the folder when empty.
 * A crash in between leaves a snapshot without refs, or refs naming a
 * snapshot that is still whole.  The caller decides first whether it may
 * go (snapshot_remove: no live lease, its manifest gone).
 */
int hub_unpublish(struct store *store, const char *folder, const char *commit);

/* Checks the view of one manifest, reporting each problem. */
int hub_check(struct store *store, const struct manifest *m,
    struct hub_report *report);

/*
 * Checks one folder's refs (40 hex, no newline, naming a snapshot) and
 * reports snapshots for which has_manifest(commit) is false.
 */
int hub_check_folder(struct store *store, const char *folder,
    int (*has_manifest)(void *arg, const char *folder, const char *commit),
    void *arg, struct hub_report *report);

/*
 * Reads a folder name back into a repo type and id: "models--org--name"
 * gives REPO_MODEL and "org/name".  -EINVAL for a name hub_publish() would
 * not have made.
 */
int hub_folder_parse(const char *folder, enum repo_type *type, char *repo,
    size_t len);

/*
 * Whether m's snapshot directory exists in the hub view: the step of the
 * publish order that comes before the index row.  1 or 0.
 */
int hub_snapshot_exists(struct store *store, const struct manifest *m);

/* Calls fn for each folder under hub/ (stops on a non-zero return). */
int hub_each_folder(struct store *store,
    int (*fn)(void *arg, const char *folder), void *arg);

/* Writes the relative link target for a repo path (exposed for tests). */
int hub_link_target(const char *path, const char *etag, char *buf, size_t len);

/*
 * Writes the store-relative directory of folder/commit's snapshot,
 * "hub/<folder>/snapshots/<commit>", into buf.  0 or -ENAMETOOLONG.
 */
int hub_snapshot_dir(const char *folder, const char *commit, char *buf,
    size_t len);

/*
 * Reads the ref of folder/rev (hub/<folder>/refs/<rev>: the truth of what a
 * revision names) into commit (DIGEST_SHA1_HEX + 1 bytes), and into *age,
 * when not NULL, how many seconds ago on the store's clock it was written
 * or last confirmed (hub_ref_touch).  0; -ENOENT when there is none;
 * -EINVAL when rev is no revision name or the ref is not a regular file of
 * exactly 40 lowercase hex digits (a symlink, a FIFO, a newline); another
 * negative errno when it cannot be read.  Never blocks on a FIFO.
 */
int hub_ref_read(struct store *store, const char *folder, const char *rev,
    char *commit, int64_t *age);

/*
 * Records that the origin confirmed folder/rev just now: the ref's mtime
 * (publishing leaves a ref that already reads right untouched).  0,
 * -ENOENT when there is no such ref, -EINVAL for a bad rev, or -errno.
 */
int hub_ref_touch(struct store *store, const char *folder, const char *rev);

/* Where a reference's model is stored: the one answer (store_locate). */
struct store_place {
	enum repo_type type;
	char repo[2 * REF_REPO_MAX + 2];
	char folder[REF_FOLDER_MAX];	     /* hub/ and manifests/ folder */
	char revision[REF_REVISION_MAX + 1]; /* as stored in the manifest */
	int is_commit;			     /* revision is a full commit id */
};

/*
 * Where ref is stored, for every program that stores or looks (pull_ref,
 * the daemon, the CLI, import).  An hf:// reference names its repo and
 * revision itself (name must be NULL); an https:// model is named name, or
 * "<host>/<file name>" (https_default_name); a file:// directory is named
 * name, which it needs.  revision, when not NULL, replaces the reference's
 * own; without either it is "main".  0, or -EINVAL for another kind or a
 * missing or bad name or revision, or -ENAMETOOLONG (*p then unusable).
 */
int store_locate(const struct ref *ref, const char *name, const char *revision,
    struct store_place *p);

/*
 * The commit p's revision names in the store: a named revision is its ref
 * in the view (*age, when age is not NULL, its age as hub_ref_read gives
 * it, which clock skew between nodes can make negative); a commit id or
 * prefix, or a name the view has no ref for, goes to the index, refreshed
 * first.  1 when the view's ref answered, 0 when the index did, -ENOENT
 * when nothing matches, -EEXIST for an ambiguous commit prefix, or another
 * negative errno.
 */
int hub_resolve(struct store *store, struct index *index,
    const struct store_place *p, char *commit, int64_t *age);

#endif
