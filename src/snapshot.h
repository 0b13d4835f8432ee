/*
 * snapshot: publishing and removing a model revision as a whole.
 *
 * A snapshot is what one manifest describes.  Publishing runs the steps of
 * the store's publish order after the blobs: the manifest (merged with an
 * existing one for the same commit), the hub view, then the index rows.
 * Removal runs them in reverse, from the same commit point, the manifest:
 * once no live lease names the snapshot, the manifest, then the hub view
 * (its refs, then the snapshot), the index rows, then each blob that no
 * manifest names any more, each under its claim so that a concurrent
 * import that reuses a blob keeps it.  A leased snapshot is never removed:
 * the leases are looked at before the first step, and again once the
 * manifest has gone (a holder leases, then looks for it), which closes the
 * window between a remover's look and its first step.  A publish of the
 * commit after the manifest went may complete the view that the removal is
 * taking apart: once the view and the row are gone, the removal looks for a
 * manifest again and, when one is back, restores what it removed from it.
 * A crash between any two steps leaves the old state, or the new one with
 * residue that fsck recognises and completes (snapshot.c).
 */
#ifndef MC_SNAPSHOT_H
#define MC_SNAPSHOT_H

#include <stdint.h>

#include "digest.h"
#include "index.h"
#include "manifest.h"
#include "store.h"

/*
 * Publishes m, whose blobs are published and whose claims the caller holds
 * until this returns.  m->created, m->updated and m->pinned are merged with
 * an existing manifest of the same commit; now is the time in seconds.
 * Returns 0 or a negative errno; -EBUSY says that every file is published
 * but another process held the index's lock past its busy timeout, so
 * m's index row is missing: a private index finds it at its next refresh,
 * a shared one when the daemon next uses the snapshot, or fsck.
 */
int snapshot_publish(struct store *store, struct index *index,
    struct manifest *m, int64_t now);

/*
 * Removes the snapshot folder/commit (index row id), unless a live lease
 * names it (lease.h; stale_ms as there): then it stays, whole, and this
 * returns -EBUSY, or the error that kept its manifest from being put back
 * when the lease appeared only after the manifest was unlinked (see
 * snapshot.c).  So it does (-EBUSY) when a publish of the same commit
 * saved a manifest after this removal unlinked it (a holder that found it
 * gone and pulled it again, a stalled publisher resuming, another node):
 * the view and the row that the removal took apart meanwhile are restored
 * from that manifest, and its blobs stay.  Never waits: blobs whose claim
 * another holds (live, as stale_ms judges) are left to that holder, or for
 * fsck --repair.  *freed, when not NULL, gets the bytes of the blobs
 * deleted.
 */
int snapshot_remove(struct store *store, struct index *index,
    const char *folder, const char *commit, int64_t id, int64_t stale_ms,
    uint64_t *freed);

/*
 * Removal in two halves, so that many snapshots cost one look at the
 * manifests for all their blobs rather than one per blob: what
 * snapshot_remove() does is snapshot_unpublish(), every step but the
 * blobs, which it adds to *left, then snapshot_drop_blobs(), which deletes
 * those of *left that no manifest names (any more), each under its claim,
 * and empties *left.  A caller may unpublish several snapshots before it
 * drops their blobs; until it does, those blobs are orphans (fsck's
 * blob_orphan, residue).  *left is the caller's, zeroed to start, and
 * freed with snapshot_blobs_release(); its strings are owned by it.
 */
struct snapshot_blobs {
	char (*sha256)[DIGEST_HEX_MAX];
	size_t n, cap;
};

int snapshot_unpublish(struct store *store, struct index *index,
    const char *folder, const char *commit, int64_t id, int64_t stale_ms,
    struct snapshot_blobs *left);
int snapshot_drop_blobs(struct store *store, struct index *index,
    struct snapshot_blobs *left, int64_t stale_ms, uint64_t *freed);
void snapshot_blobs_release(struct snapshot_blobs *left);

/*
 * A manifest a removal set aside (manifest_aside()) at rel, of
 * folder/commit, whose removal owner set it aside.
 * snapshot_aside_owned(): 1 while that removal may still be running (its
 * owner is alive, or, for another node's, the file is younger than
 * stale_ms), else 0.  snapshot_aside_recover() decides for a dead remover
 * as it would have: a live lease names folder/commit and no manifest is
 * there, so a server may use it: the manifest is put back and the view and
 * the row made whole (SNAPSHOT_ASIDE_RESTORED); otherwise the aside file
 * is dropped (SNAPSHOT_ASIDE_DROPPED), which leaves the rest as a removal
 * killed after its commit point always did: a stray view, a row without a
 * manifest and orphan blobs, residue that fsck --repair and gc clear.  Or
 * a negative errno.  snapshot_recover_asides() does it for every aside
 * file of a dead remover (gc_run() calls it first).
 */
enum { SNAPSHOT_ASIDE_DROPPED = 1, SNAPSHOT_ASIDE_RESTORED = 2 };

int snapshot_aside_owned(struct store *store, const char *rel,
    const char *owner, int64_t stale_ms);
int snapshot_aside_recover(struct store *store, struct index *index,
    const char *rel, const char *folder, const char *commit, int64_t stale_ms);
int snapshot_recover_asides(struct store *store, struct index *index,
    int64_t stale_ms);

/* Sets or clears the pin of a snapshot, in its manifest and the index. */
int snapshot_pin(struct store *store, struct index *index, const char *folder,
    const char *commit, int64_t id, int pinned);

/* Loads the manifest of folder/commit. */
int snapshot_manifest(struct store *store, const char *folder,
    const char *commit, struct manifest *m, const char **why);

#endif
