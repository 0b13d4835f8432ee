/*
 * lease: a running inference server's hold on one snapshot.
 *
 * While a live lease names a snapshot (folder and commit), no process on
 * the store, on any node, evicts or removes it: gc skips it, rm refuses it.
 * A lease is the file leases/<id>, id "<owner>.<16 hex>" (owner as in
 * store.h, the hex random), mode 0644, holding one line
 *
 *	<folder> <commit> <ms>\n
 *
 * (the hub folder name, the 40-hex commit, the time it was taken in
 * milliseconds since the epoch).  Its mtime is its heartbeat.  A lease is
 * live while its owner is alive, as store_owner_state() tells for a process
 * on this host, boot and PID namespace (pid and start time both checked,
 * so a reused pid is no proof of life); for any other owner, while its
 * heartbeat is no older than the stale limit by the store's clock
 * (store_now_ms()), never by the local one.  A lease of a dead owner is
 * residue that fsck removes.  flock and fcntl locks are never used.
 *
 * A holder must take its lease before it checks that the snapshot is
 * complete, its manifest included: a remover looks at the leases, makes
 * the manifest vanish (removal's commit point, snapshot.c) and only then
 * looks at them again (putting it back when one is live), so a snapshot
 * found complete after the lease was taken stays, but one checked first
 * may be going away already.
 */
#ifndef MC_LEASE_H
#define MC_LEASE_H

#include <stdint.h>

#include "digest.h"
#include "ref.h"
#include "store.h"

/*
 * Bytes in a lease id, NUL included: the owner (at most STORE_OWNER_MAX - 1
 * bytes), '.', 16 hex digits, with room to spare.
 */
#define LEASE_ID_MAX (STORE_OWNER_MAX + 32)

struct lease {
	char id[LEASE_ID_MAX];	     /* the file name under leases/ */
	char folder[REF_FOLDER_MAX]; /* "models--org--name" */
	char commit[DIGEST_SHA1_HEX + 1];
	int held;
};

/*
 * Takes a lease on the snapshot folder/commit into *l (zeroed, or dropped:
 * -EALREADY while it holds one).  The line is written whole to a file under
 * tmp/ and linked to leases/<id>, so a reader never sees it partial and an
 * existing name is never replaced.  Returns 0, -EINVAL for a bad folder or
 * commit, or another negative errno.
 */
int lease_take(struct store *store, const char *folder, const char *commit,
    struct lease *l);

/*
 * Heartbeat: sets the lease file's mtime to now, or, when the store has a
 * beat thread (store->beat, which lease_take() gave the file to), reports
 * what the thread's last touch found.  -ENOENT when the file is gone
 * (fsck removed it after a stall past the stale limit): the holder takes
 * a new lease.  -EINVAL when l holds none.
 */
int lease_touch(struct store *store, struct lease *l);

/* Removes the lease file if l holds one; idempotent. */
void lease_drop(struct store *store, struct lease *l);

/*
 * Whether a live lease names folder/commit (the test gc and rm make before
 * removing a snapshot).  Returns 1, 0, or a negative errno when leases/
 * cannot be read, in which case a caller keeps the snapshot.
 */
int lease_live(struct store *store, const char *folder, const char *commit,
    int64_t stale_ms);

/*
 * Calls fn for each file under leases/, live or not, with its id, folder,
 * commit, the time it was taken and whether it is live.  A malformed file
 * (bad name, not a regular file, too large, or not one line as above) is
 * reported with live 0, folder and commit "" and taken_ms 0.  The strings
 * are valid during the call only.  Stops when fn returns non-zero and
 * returns that; otherwise 0, or a negative errno.
 */
int lease_each(struct store *store, int64_t stale_ms,
    int (*fn)(void *arg, const char *id, const char *folder, const char *commit,
	int64_t taken_ms, int live),
    void *arg);

#endif
