/*
 * gc: choosing which snapshots to evict to bring the store under a size.
 *
 * The size of a store is the bytes of its distinct blobs: two revisions
 * sharing a file pay for it once, and evicting one of them frees nothing of
 * that file.  Planning walks snapshots least recently used first, skipping
 * pinned ones and those the caller's skip() says are in use (leased), and
 * counts what each eviction really frees, until the total fits.
 * gc_quota() is both steps for the daemon's quota after a pull.
 */
#ifndef MC_GC_H
#define MC_GC_H

#include <stdint.h>

#include "index.h"
#include "store.h"

#define GC_REPO_MAX 256

struct gc_victim {
	int64_t id;
	char folder[REF_FOLDER_MAX];
	char repo[GC_REPO_MAX];
	char commit[DIGEST_SHA1_HEX + 1];
	int64_t last_used;
	uint64_t frees; /* bytes this eviction frees, in plan order */
	int kept;	/* gc_run found it leased after all: not removed */
};

struct gc_plan {
	struct gc_victim *victims;
	size_t n;
	uint64_t before;      /* store size now */
	uint64_t after;	      /* store size once the plan has run */
	uint64_t kept_pinned; /* pinned snapshots passed over, in bytes */
	uint64_t kept_leased; /* those skip() kept (in use), in bytes */
};

/*
 * Plans the evictions that bring the store to at most max_size bytes.
 * skip, when not NULL, is asked about each unpinned candidate: non-zero
 * keeps it (counted in kept_leased).  Returns 0 (check plan->after against
 * max_size: pinned and leased models may keep the store above it) or a
 * negative errno.  Release the plan with gc_plan_release().
 */
int gc_plan(struct index *index, uint64_t max_size,
    int (*skip)(void *arg, const char *folder, const char *commit), void *arg,
    struct gc_plan *plan);
void gc_plan_release(struct gc_plan *plan);

/*
 * Runs a plan: unpublishes each victim (snapshot_unpublish), then deletes
 * the blobs that none of the remaining manifests names, all in one
 * snapshot_drop_blobs(), which brings the index up to date with the
 * manifests once for the pass, not once per blob.  A victim leased since
 * the plan stays and is marked kept.  *freed gets the bytes actually
 * deleted.  Stops unpublishing at the first other error, and still drops
 * the blobs of what it removed.
 */
int gc_run(struct store *store, struct index *index, struct gc_plan *plan,
    int64_t stale_ms, uint64_t *freed);

/*
 * A quota kept after a pull (modelcached's max_size): what it keeps is
 * filled in by the caller, what it did by gc_quota().
 */
struct gc_quota {
	uint64_t max_size;
	int64_t stale_ms;
	/* the snapshot just pulled, kept ("" commit: none) */
	enum repo_type type;
	char repo[2 * REF_REPO_MAX + 2];
	char folder[REF_FOLDER_MAX];
	char commit[DIGEST_SHA1_HEX + 1];
	uint64_t after, freed; /* the store's size planned, bytes freed */
	size_t evicted, kept;  /* snapshots removed, leased meanwhile */
	int dropped;	       /* the one just pulled, removed again */
};

/*
 * Brings the store to q->max_size: refreshes the index, then plans and
 * runs the eviction of least recently used snapshots, neither pinned nor
 * leased, nor the one just pulled.  When the store cannot fit with that
 * one in, nothing is evicted and it is removed again (unless a lease holds
 * it): -ENOSPC.  0 or a negative errno.
 */
int gc_quota(struct store *store, struct index *index, struct gc_quota *q);

#endif
