/*
 * store: the content-addressed store on the volume.
 *
 * A store is a directory (see modelcache-store(5)):
 *
 *	index.db			SQLite index (index.c), rebuildable
 *	blobs/sha256/ab/<64 hex>	immutable contents, mode 0444
 *	manifests/<folder>/<commit>.json  one per model revision (manifest.c)
 *	hub/				the Hugging Face cache view (hub.c)
 *	leases/ claims/			cross-process coordination (lease.c,
 *					claim.c)
 *	tmp/				partial files, named <owner>.<random>
 *
 * Every path below the root is handled relative to a directory descriptor
 * of the root (the *at() calls), so the functions here take store-relative
 * paths.  A blob is published in one order only: written under tmp/, its
 * digest checked, fsync'd, made 0444, a hard link of that very file renamed
 * into blobs/, and the blob's directory fsync'd.  Blobs are never opened
 * for writing once published.
 */
#ifndef MC_STORE_H
#define MC_STORE_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "digest.h"

#define STORE_PATH_MAX 4096
#define STORE_OWNER_MAX 128
/*
 * Retries of an operation answered ESTALE (or, for a read, EIO), 1 ms
 * apart and doubling: about 2 s in all, past the 1 s for which a FUSE
 * client caches an entry by default.
 */
#define STORE_STALE_TRIES 11
/* The stale limit until a program sets its own: stale_after's default. */
#define STORE_STALE_MS 30000

struct beat;

struct store {
	char *root; /* as given, owned */
	int dirfd;  /* O_DIRECTORY of root */
	/*
	 * "<host>.<boot>.<pidns>.<pid>.<start>", unique per process
	 * incarnation (store_owner_state()): names tmp files, claims, leases
	 */
	char owner[STORE_OWNER_MAX];
	/*
	 * The heartbeat thread (beat.h) that keeps this program's claims and
	 * leases alive, set by the program after store_open(); NULL: none,
	 * and holders touch their files themselves (claim_touch(),
	 * lease_touch()).  Not owned.
	 */
	struct beat *beat;
	/*
	 * The stale limit (stale_after, modelcache.conf(5)): a claim, lease
	 * or tmp file whose heartbeat is older belongs to a dead process.
	 * store_open() sets STORE_STALE_MS; a program sets its
	 * configuration's once, after store_open() and on a reload, and
	 * every judgement of staleness reads it here.
	 */
	int64_t stale_ms;
};

enum owner_state { OWNER_UNKNOWN, OWNER_ALIVE, OWNER_DEAD };

/*
 * Whether the process that owns name ("<host>.<boot>.<pidns>.<pid>.<start>"
 * followed by '.', ' ' or the end: the first 8 characters of the boot id,
 * the PID namespace's inode, the pid and the start time in clock ticks since
 * boot) is alive.  Only a process of the same host, boot and PID namespace
 * can tell: OWNER_ALIVE when that pid runs with that start time,
 * OWNER_DEAD when it does not run or runs with another start time (a
 * later process given the same pid, as a restarted container's daemon
 * often is).  For any other owner, an id of an older format or one whose
 * start time is 0 (no /proc of its namespace), the answer is
 * OWNER_UNKNOWN and callers judge by heartbeat age.  The one rule for
 * claims, leases and tmp/ files.
 */
int store_owner_state(const struct store *store, const char *name);

/*
 * The store's clock, in milliseconds since the epoch: the mtime the
 * filesystem gives tmp/ when this process touches it with utimensat(NULL),
 * the way every heartbeat is stamped.  Staleness is always judged as
 * store_now_ms() minus a heartbeat's mtime, so that the clocks of the
 * nodes sharing a store need not agree: on a filesystem whose server
 * stamps the times (local disks, NFS), both sides are the server's clock.
 * Falls back on the local clock (CLOCK_REALTIME) when tmp/ cannot be
 * touched (a read-only store).  Costs a touch and a stat: take it once per
 * judgement, not per file judged.
 */
int64_t store_now_ms(struct store *store);

/*
 * Opens the store at root, creating root and its directories when create is
 * set.  Returns 0 or a negative errno; -ENOENT when root or one of its
 * directories is missing and create is not set.
 */
int store_open(struct store *store, const char *root, int create);
void store_release(struct store *store);

/* "blobs/sha256/ab/<hex>" for a 64-hex digest; -EINVAL otherwise. */
int store_blob_path(const char *sha256, char *buf, size_t len);

/* 0 when the blob exists (size set when non-NULL), -ENOENT, or an error. */
int store_blob_stat(struct store *store, const char *sha256, uint64_t *size);

/*
 * Creates a new empty file "tmp/<owner>.<random><suffix>" opened O_RDWR,
 * mode 0600.  Writes its store-relative name into rel.  Returns the fd or a
 * negative errno.
 */
int store_tmp_create(struct store *store, const char *suffix, char *rel,
    size_t len);

/*
 * Publishes the tmp file rel (already written and fsync'd) as the blob
 * sha256: store_blob_publish_fd() of rel opened now, at its size.  The
 * caller must hold the blob's claim (claim.h).
 */
int store_blob_publish(struct store *store, const char *rel,
    const char *sha256);

/*
 * Publishes the file open as fd, whose bytes were hashed to sha256 and
 * fsync'd, and which the caller wrote as the tmp file rel: mode 0444, a
 * hard link of fd itself (never whatever sits at rel) renamed into place,
 * the blob's directory fsync'd, then rel removed.  When a blob of size
 * bytes has that name already, it is kept and rel removed instead (blobs
 * are named by content); a blob there of another size is quarantined and
 * replaced.  Returns 0; -ESTALE when rel no longer names fd's file
 * (another holder of the claim replaced or removed it: nothing is
 * published, the caller looks again); -EBADMSG when fd's file is not size
 * bytes; or another negative errno.  The caller must hold the blob's claim.
 */
int store_blob_publish_fd(struct store *store, int fd, const char *rel,
    const char *sha256, uint64_t size);

/*
 * Whether the blob sha256 can be trusted as the size bytes a manifest or an
 * origin says it is: 0 when it is there at that size, -ENOENT when absent,
 * -EBADMSG when something else is there (another size, not a regular
 * file).  Every reuse of a blob in the store asks this; a name says the
 * content, so the size is what a reuse checks (verify hashes).
 */
int store_blob_check(struct store *store, const char *sha256, uint64_t size);

/*
 * Moves the blob sha256 aside to tmp/quarantine.<ms>.<sha256>.corrupt, so
 * that a good copy can take its name (the caller holds its claim).
 */
int store_blob_quarantine(struct store *store, const char *sha256);

/*
 * Moves the store-relative rel to tmp/quarantine.<ms>.<name><suffix>
 * (name: rel's last component) rather than deleting what may be evidence;
 * fsck keeps files so named.  0 or a negative errno.
 */
int store_quarantine(struct store *store, const char *rel, const char *suffix);

/* Removes a blob (the caller holds its claim).  -ENOENT when absent. */
int store_blob_unlink(struct store *store, const char *sha256);

/*
 * Re-hashes a blob.  Returns 0 when its content matches its name (and size,
 * when size is not UINT64_MAX), -EBADMSG when not, -ENOENT when absent.
 */
int store_blob_verify(struct store *store, const char *sha256, uint64_t size);

/* What store_ingest() learnt about the bytes it copied. */
struct ingest {
	uint64_t size;
	char sha256[DIGEST_HEX_MAX];
	char gitsha1[DIGEST_HEX_MAX]; /* "" unless asked for */
	char tmp[STORE_PATH_MAX];     /* the fsync'd tmp file, to publish */
};

/*
 * Copies all of srcfd (from its current offset) into a new tmp file, hashing
 * every byte on the way (and the git SHA-1 too when want_sha1), then fsyncs
 * it.  The caller publishes it with store_blob_publish() or removes it with
 * store_tmp_remove().  Returns 0 or a negative errno (-ENOSPC for a full
 * volume); on error nothing is left in tmp/.
 */
int store_ingest(struct store *store, int srcfd, int want_sha1,
    struct ingest *out);

void store_tmp_remove(struct store *store, const char *rel);

/*
 * Writes len bytes to the store-relative path rel through a tmp file in
 * tmp/ (same filesystem): write, fsync, chmod mode, rename, fsync the
 * directory.
 * Parent directories are created.  Readers see the old file or the new one.
 */
int store_write_atomic(struct store *store, const char *rel, const void *buf,
    size_t len, int mode);

/*
 * As store_write_atomic(), but never replaces: the file is linked to rel,
 * and -EEXIST says that rel exists already (it is left as it is).
 */
int store_write_new(struct store *store, const char *rel, const void *buf,
    size_t len, int mode);

/*
 * store_write_atomic() when replace is set, else store_write_new(); and
 * *st, when not NULL and the write succeeded, gets the written file's
 * fstat() (taken once it was synced), which is what rel shows until
 * someone replaces it.
 */
int store_write_file(struct store *store, const char *rel, const void *buf,
    size_t len, int mode, int replace, struct stat *st);

/*
 * Reads a whole store-relative file of at most max bytes (NUL-terminated).
 * ESTALE and EIO, what a network filesystem answers for a file another node
 * just replaced, are retried a few times with the path resolved afresh.
 */
int store_read_file(struct store *store, const char *rel, size_t max,
    char **buf, size_t *len);

/*
 * Opens dirfd/rel as a directory stream, never through a symlink in its
 * last component.  NULL with errno set on failure; closedir() it.
 */
DIR *store_opendirat(int dirfd, const char *rel);

/* mkdir -p of a store-relative directory, mode 0755. */
int store_mkdirs(struct store *store, const char *rel);
/* fsync of a store-relative directory ("" is the root). */
int store_fsync_dir(struct store *store, const char *rel);

/*
 * Removes a store-relative tree (rm -rf; symlinks are removed, never
 * followed).  A missing tree is not an error.
 */
int store_remove_tree(struct store *store, const char *rel);
/* fsyncs every directory of a store-relative tree, deepest first. */
int store_sync_tree(struct store *store, const char *rel);

/*
 * Calls fn for each file under blobs/sha256/ with its name (a digest, if all
 * is well) and its store-relative path.  Stops on a non-zero return.
 */
int store_blob_each(struct store *store,
    int (*fn)(const char *name, const char *rel, void *arg), void *arg);

#endif
