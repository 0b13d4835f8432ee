/*
 * claim: cross-process, cross-node ownership of one blob.
 *
 * Whoever holds claims/<sha256> may create or delete blobs/…/<sha256>:
 * (a pull also claims a git file by its 40-hex git SHA-1 while it fetches
 * it, since its SHA-256 is not known before the bytes are)
 * a fetcher or importer from the moment it knows the digest until the index
 * row that references the blob is committed, and garbage collection for the
 * moment it deletes.  A claim is a file made with O_CREAT|O_EXCL holding
 * "<owner> <milliseconds>\n"; its mtime is the heartbeat.  A claim whose
 * heartbeat is older than the stale limit belongs to a dead process and is
 * taken over: renamed to a unique name (only one contender can win that
 * rename), then removed.  flock and fcntl locks are never used: they are
 * silently no-ops on some network filesystems.  A held claim is beaten by
 * the store's beat thread when it has one (beat.h), so that nothing the
 * holder waits on can stop its heartbeat.
 */
#ifndef MC_CLAIM_H
#define MC_CLAIM_H

#include <stdint.h>

#include "digest.h"
#include "store.h"

struct claim {
	char sha256[DIGEST_HEX_MAX];
	char line[STORE_OWNER_MAX + 128]; /* what we wrote into the file */
	int held;
};

/*
 * Tries once to take the claim on sha256.  An existing claim is stale when
 * its owner is known to be dead (same host, boot and PID namespace, and
 * that pid no longer runs with that start time), or when its
 * owner cannot be asked and its heartbeat is older than stale_ms (now_ms
 * from store_now_ms(), the store's clock, which stamps the heartbeats).
 * Returns 0 when taken, -EBUSY when a live claim is held by someone else,
 * -EAGAIN when a stale one was just removed (try again), -EALREADY when
 * *claim already holds it, or another negative errno.
 */
int claim_try(struct store *store, struct claim *claim, const char *sha256,
    int64_t now_ms, int64_t stale_ms);

/*
 * Takes the claim, waiting while a live one is held by someone else, for at
 * most timeout_ms.  Returns 0, -ETIMEDOUT, or another negative errno.
 */
int claim_acquire(struct store *store, struct claim *claim, const char *sha256,
    int64_t stale_ms, int64_t timeout_ms);

/* Whether the claim file at the store-relative rel is stale (see above). */
int claim_stale(struct store *store, const char *rel, int64_t now_ms,
    int64_t stale_ms);

/*
 * claim_acquire() for a caller that holds other claims while it waits: beat
 * is called about every stale_ms / 4 so that it can touch them.
 */
int claim_acquire_beat(struct store *store, struct claim *claim,
    const char *sha256, int64_t stale_ms, int64_t timeout_ms,
    void (*beat)(void *arg), void *arg);

/* Whether someone holds a live claim on sha256 (looks, takes nothing). */
int claim_live(struct store *store, const char *sha256, int64_t now_ms,
    int64_t stale_ms);

/*
 * Adds a note to a held claim's line ("<owner> <ms> <note>"), replacing the
 * file by rename; claim_note_read() reads another holder's note.  A pull
 * notes the SHA-256 of a git file it claimed by oid once it is published.
 */
int claim_note(struct store *store, struct claim *claim, const char *note);
int claim_note_read(struct store *store, const char *name, char *buf,
    size_t len);

/*
 * Refreshes the heartbeat of a held claim, or, when the store has a beat
 * thread (store->beat, which touches it), reports what the thread found:
 * 0, or -ENOENT when the name is gone or is another file (taken over).
 */
int claim_touch(struct store *store, struct claim *claim);

/*
 * Whether the claim file still holds the line this claim wrote: 0, or
 * -ESTALE when someone took the claim over (this process stalled past the
 * stale limit).  A holder checks before it publishes or deletes what the
 * claim guards, and stands down on -ESTALE.  -EINVAL when not held.
 */
int claim_check(struct store *store, struct claim *claim);

/*
 * Gives a held claim up (no-op when not held).  The file is removed only if
 * it is still the one this claim wrote: after a stall past the stale limit
 * someone else may own the name.
 */
void claim_release(struct store *store, struct claim *claim);

/*
 * Milliseconds since the epoch by the local clock: for the times written
 * into claim files (for people) and for timing one's own waits.  Never
 * for judging another's heartbeat: that is store_now_ms()'s.
 */
int64_t claim_now_ms(void);

#endif
