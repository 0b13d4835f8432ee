/*
 * snapshot: see snapshot.h.  The fault points mark each durable step, so
 * the crash tests can stop a publish or a removal between any two of them.
 *
 * The manifest is the commit point of both.  Publishing saves it after the
 * blobs and before the view and the index row; removal unlinks it first,
 * once no lease holds the snapshot, then the refs, the snapshot, the index
 * row and the blobs nothing references any more; before each step of the
 * view (hub_unpublish) and once more before the blobs it looks for the
 * manifest, and a publish of the commit since the unlink (which found the
 * old view and completed it, or rebuilt it) gets its view and row back from
 * the new manifest.  So a crash leaves either the old
 * state, or the new one with residue that fsck counts as such and
 * completes: a view without a manifest (removed by fsck --repair), an index
 * row without one (dropped by index_refresh, which index_open runs: on a
 * network filesystem each node's index follows the manifests, so they are
 * the commit point for every node), blobs no manifest names (collected by
 * gc and fsck --repair).
 *
 * A blob goes only under its claim, and only when no manifest names it:
 * the index is refreshed from the manifests first, which reads only those
 * that changed, so a publisher killed between its view and its index row
 * keeps its blobs.  The refresh comes after the claims, and one serves
 * every blob whose claim was taken before it: the blobs of a removal, or
 * of a whole gc pass, are claimed in batches, each followed by one refresh
 * (a readdir and a stat per manifest), not one refresh per blob.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "claim.h"
#include "fault.h"
#include "hub.h"
#include "lease.h"
#include "snapshot.h"

#define REMOVE_CLAIM_TRIES 4   /* stale claims removed before giving up */
#define DROP_BATCH 1024	       /* claims held at once, one index refresh */
#define PUBLISH_ENOENT_TRIES 3 /* publishes again after a pruned directory */

int
snapshot_manifest(struct store *store, const char *folder, const char *commit,
    struct manifest *m, const char **why)
{
	char rel[STORE_PATH_MAX];
	int n;

	*why = NULL;
	n = snprintf(rel, sizeof(rel), "manifests/%s/%s.json", folder, commit);
	if (n < 0 || (size_t)n >= sizeof(rel))
		return -ENAMETOOLONG;
	return manifest_load(store, rel, m, why);
}

static int
path_cmp(const void *key, const void *f)
{
	return strcmp(key, ((const struct manifest_file *)f)->path);
}

/*
 * One commit has one set of files: a filtered pull publishes a part of it,
 * and a later pull of another part adds to what is there, never drops it
 * (its blobs and hub links stay referenced).
 */
static int
merge_files(struct manifest *m, const struct manifest *old)
{
	size_t i, n;
	int rc;

	if ((rc = manifest_sort(m)) < 0)
		return rc;
	n = m->nfiles;
	for (i = 0; i < old->nfiles; i++) {
		const struct manifest_file *f = &old->files[i];

		if (bsearch(f->path, m->files, n, sizeof(*m->files),
			path_cmp) != NULL)
			continue;
		if ((rc = manifest_add_file(m, f->path, f->size, f->sha256,
			 f->etag)) < 0)
			return rc;
	}
	return manifest_sort(m);
}

/* Carries what an existing manifest of the same commit already says. */
static int
merge_existing(struct store *store, struct manifest *m)
{
	char rel[STORE_PATH_MAX];
	struct manifest old;
	const char *why;
	size_t i;
	int rc;

	if ((rc = manifest_rel(m, rel, sizeof(rel))) < 0)
		return rc;
	manifest_init(&old);
	rc = manifest_load(store, rel, &old, &why);
	if (rc == -ENOENT || rc == -EINVAL) {
		/* None, or a bad one that this publish replaces. */
		manifest_release(&old);
		return 0;
	}
	if (rc == 0) {
		m->created = old.created;
		m->pinned = m->pinned || old.pinned;
		for (i = 0; rc == 0 && i < old.nrevisions; i++)
			rc = manifest_add_revision(m, old.revisions[i]);
		if (rc == 0)
			rc = merge_files(m, &old);
	}
	manifest_release(&old);
	return rc;
}

/*
 * Takes m's revision names off the repo's other manifests, so that each name
 * is on one manifest only and a rebuild from the files cannot hesitate.
 */
static int
strip_revisions(struct store *store, const struct manifest *m)
{
	char dir[STORE_PATH_MAX], rel[STORE_PATH_MAX];
	struct manifest other;
	struct dirent *e;
	const char *why;
	size_t i, j;
	DIR *d;
	int rc = 0, changed;

	if (m->nrevisions == 0 ||
	    (rc = manifest_folder(m, dir, sizeof(dir))) < 0)
		return rc;
	if ((d = store_opendirat(store->dirfd, dir)) == NULL) {
		rc = -errno;
		return rc;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' ||
		    strncmp(e->d_name, m->commit, DIGEST_SHA1_HEX) == 0)
			continue;
		if (snprintf(rel, sizeof(rel), "%s/%s", dir, e->d_name) >=
		    (int)sizeof(rel))
			continue;
		manifest_init(&other);
		if (manifest_load(store, rel, &other, &why) < 0) {
			manifest_release(&other);
			continue;
		}
		changed = 0;
		for (i = 0; i < other.nrevisions;) {
			if (!manifest_has_revision(m, other.revisions[i])) {
				i++;
				continue;
			}
			free(other.revisions[i]);
			for (j = i + 1; j < other.nrevisions; j++)
				other.revisions[j - 1] = other.revisions[j];
			other.nrevisions--;
			changed = 1;
		}
		if (changed)
			rc = manifest_save(store, &other);
		manifest_release(&other);
	}
	closedir(d);
	return rc;
}

static int
publish_once(struct store *store, struct index *index, struct manifest *m,
    int64_t now)
{
	int rc, indexed;

	m->created = now;
	m->updated = now;
	if ((rc = merge_existing(store, m)) < 0)
		return rc;
	fault_point("manifest-before-save");
	if ((rc = manifest_save(store, m)) < 0)
		return rc;
	fault_point("manifest-saved");
	if ((rc = hub_publish(store, m)) < 0)
		return rc;
	fault_point("hub-published");
	/*
	 * The files are the truth and are published: an index that another
	 * process held past the busy timeout does not undo them.  The files'
	 * last step still runs; the row waits for a later use or fsck.
	 */
	if ((indexed = index_add(index, m)) < 0 && indexed != -EBUSY)
		return indexed;
	fault_point("index-added");
	if ((rc = strip_revisions(store, m)) < 0)
		return rc;
	return indexed;
}

/*
 * Every step of a publish completes what is there or replaces it by
 * rename, so it may run again.  It does when a network filesystem answers
 * ESTALE: a manifest, ref or folder that another node replaced or removed
 * while this node held its cached handle; the paths are resolved afresh.
 * And, a few times, on ENOENT: a removal of the same commit or of the
 * folder's last snapshot (another process, another node) pruned a
 * directory between our mkdir and our rename into it.
 */
int
snapshot_publish(struct store *store, struct index *index, struct manifest *m,
    int64_t now)
{
	struct timespec ts = { 0, 1000000 };
	int rc, tries;

	for (tries = 0;; tries++) {
		rc = publish_once(store, index, m, now);
		if ((rc != -ESTALE || tries >= STORE_STALE_TRIES) &&
		    (rc != -ENOENT || tries >= PUBLISH_ENOENT_TRIES))
			return rc;
		nanosleep(&ts, NULL);
		ts.tv_nsec *= 2;
	}
}

void
snapshot_blobs_release(struct snapshot_blobs *b)
{
	free(b->sha256);
	memset(b, 0, sizeof(*b));
}

static int
blobs_add(struct snapshot_blobs *b, const char *sha256)
{
	char(*p)[DIGEST_HEX_MAX];
	size_t cap;

	if (b->n == b->cap) {
		cap = b->cap == 0 ? 64 : b->cap * 2;
		if ((p = reallocarray(b->sha256, cap, sizeof(*p))) == NULL)
			return -ENOMEM;
		b->sha256 = p;
		b->cap = cap;
	}
	snprintf(b->sha256[b->n++], DIGEST_HEX_MAX, "%s", sha256);
	return 0;
}

static int
hex_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * Takes the claim on sha256 into *claim, never waiting: a live claim is
 * someone fetching or importing these bytes, who will reference them, so
 * they are not ours to delete (and a daemon must not sleep on its loop).
 * A blob left behind because its holder then gave up is an orphan that
 * fsck collects.  1 when taken, 0 when someone holds it, or an error.
 */
static int
claim_blob(struct store *store, struct claim *claim, const char *sha256,
    int64_t now_ms, int64_t stale_ms)
{
	int rc, tries = 0;

	do
		rc = claim_try(store, claim, sha256, now_ms, stale_ms);
	while (rc == -EAGAIN && ++tries < REMOVE_CLAIM_TRIES);
	if (rc == -EBUSY || rc == -EAGAIN)
		return 0;
	return rc < 0 ? rc : 1;
}

/*
 * Deletes, of the blobs sha256[0..n), those that no manifest names, each
 * under its claim.  The index may not know yet of a model published with
 * one of them: by another node, or by a publisher killed before its index
 * row (it held the claim we now hold until its manifest was saved).  The
 * manifests are the truth, so the index follows them once every claim of
 * the batch is held, and is then asked about each blob: one refresh, a
 * readdir and a stat per manifest, for the whole batch.
 */
static int
drop_batch(struct store *store, struct index *index,
    const char (*sha256)[DIGEST_HEX_MAX], size_t n, int64_t stale_ms,
    uint64_t *freed)
{
	struct claim *claims;
	int64_t now = store_now_ms(store), refs;
	uint64_t size;
	size_t i;
	int rc = 0, any = 0;

	if ((claims = calloc(n, sizeof(*claims))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n && rc >= 0; i++)
		if ((rc = claim_blob(store, &claims[i], sha256[i], now,
			 stale_ms)) > 0)
			any = 1;
	if (any)
		fault_point("remove-blobs-claimed");
	if (rc >= 0)
		rc = any ? index_refresh(index, store) : 0;
	for (i = 0; i < n && rc == 0; i++) {
		if (!claims[i].held)
			continue;
		if ((rc = index_blob_refs(index, sha256[i], &refs)) < 0 ||
		    refs > 0)
			continue;
		/*
		 * Taken over in a stall past the stale limit (or not to be
		 * read now): not ours to delete, so left for a later pass.
		 */
		if (claim_check(store, &claims[i]) != 0)
			continue;
		size = 0;
		store_blob_stat(store, sha256[i], &size);
		rc = store_blob_unlink(store, sha256[i]);
		if (rc == 0 && freed != NULL)
			*freed += size;
		if (rc == 0 || rc == -ENOENT)
			rc = index_forget_blob(index, sha256[i]);
		fault_point("blob-removed");
		claim_release(store, &claims[i]);
	}
	for (i = 0; i < n; i++)
		claim_release(store, &claims[i]);
	free(claims);
	return rc;
}

int
snapshot_drop_blobs(struct store *store, struct index *index,
    struct snapshot_blobs *b, int64_t stale_ms, uint64_t *freed)
{
	size_t i, j, n = 0;
	int rc = 0;

	/* A blob that several of the removed snapshots used, once. */
	if (b->n > 1)
		qsort(b->sha256, b->n, sizeof(*b->sha256), hex_cmp);
	for (i = 0; i < b->n; i++)
		if (n == 0 || strcmp(b->sha256[i], b->sha256[n - 1]) != 0)
			memmove(b->sha256[n++], b->sha256[i], DIGEST_HEX_MAX);
	for (i = 0; i < n && rc == 0; i = j) {
		j = n - i > DROP_BATCH ? i + DROP_BATCH : n;
		rc = drop_batch(store, index,
		    (const char(*)[DIGEST_HEX_MAX])b->sha256 + i, j - i,
		    stale_ms, freed);
	}
	b->n = 0;
	return rc;
}

/*
 * Removal and leasing race, and neither may miss the other: a holder must
 * never be answered with a snapshot whose removal goes on.  Each side
 * writes its own file, then reads the other's, as in Dekker's algorithm:
 *
 *	holder (lease.h)		remover (below)
 *	H1 link leases/<id>		R1 rename the manifest aside
 *	H2 look for the manifest	R2 read leases/
 *
 * Say the holder found the manifest (H2 before R1) and the remover found
 * no lease (R2 before H1).  With H1 before H2 and R1 before R2 (each
 * process waits for its calls to return), that makes H1 < H2 < R1 < R2 <
 * H1, a cycle: so one of them sees the other.  If the remover sees the
 * lease, it puts the manifest back and stops before the hub view, the
 * index row or a blob went, so whatever the holder checked is still
 * there; if the holder misses the manifest, it answers nothing from this
 * snapshot (it pulls it again, or says it is absent) and the removal goes
 * on.  The look at the leases before R1 only spares a leased snapshot
 * the rename and the write-back; the one after R1 is the one that counts.
 *
 * R1 is a rename aside (manifest_aside()), not an unlink, so that a remover
 * killed between R1 and the write-back (SIGKILL, OOM, a lost node) leaves
 * what the next one needs to undo it: the aside file.  While aside the
 * snapshot is not published (no reader takes that name for a manifest);
 * it is removed once the view and the row went, before any blob, and a
 * later gc or fsck --repair that finds one of a dead remover decides as
 * the remover would have (snapshot_aside_recover()).
 *
 * This takes each call to be atomic and seen by every process once it
 * has returned, in the order they returned: so on a local filesystem,
 * and on a network filesystem whose clients do not cache names and
 * attributes (on GlusterFS the strict setup of modelcache-store(5); with
 * the default caches a client may read leases/ up to about a second
 * late, which the order above cannot make up for).
 *
 * The write-back never replaces a manifest: a publish of the same commit
 * in the window (it found none, so saved its own) keeps its file.  Were it
 * to fail, the aside file stays for a later gc or fsck to put back, and
 * the error is reported as the error it is rather than as -EBUSY.
 *
 * aside: where the manifest went, emptied when it is not aside any more
 * (put back, or there was none to rename).
 */
static int
remove_manifest(struct store *store, struct manifest *m, const char *folder,
    const char *commit, int64_t stale_ms, char *aside, size_t len)
{
	int rc, back;

	if ((rc = manifest_aside(store, m, aside, len)) < 0) {
		/* Renamed but not made durable: it goes back, and we stop. */
		if (aside[0] != '\0')
			manifest_put_back(store, aside);
		aside[0] = '\0';
		return rc == -ENOENT ? 0 : rc;
	}
	fault_point("remove-manifest-done");
	if ((rc = lease_live(store, folder, commit, stale_ms)) == 0)
		return 0;
	back = manifest_put_back(store, aside);
	aside[0] = '\0';
	if (back < 0 && back != -EEXIST)
		return back;
	return rc < 0 ? rc : -EBUSY;
}

/*
 * After the view and the row went, or once hub_unpublish() stopped half
 * way: a publish of the same commit since our commit point (a holder that
 * found the manifest gone and pulled it again, a publisher that was
 * stopped and resumed, another node) saved a manifest and completed the
 * view that we then took apart.  The manifest is the truth: its view and
 * row come back whole, and the blobs it names stay.  1 when it did, 0 when
 * no manifest is there, or a negative errno.
 */
static int
restore_published(struct store *store, struct index *index, const char *folder,
    const char *commit)
{
	struct manifest m;
	const char *why;
	int rc;

	manifest_init(&m);
	rc = snapshot_manifest(store, folder, commit, &m, &why);
	if (rc == -ENOENT || rc == -EINVAL) {
		/* None, or a bad one: fsck sets that aside, not us. */
		rc = 0;
		goto out;
	}
	if (rc < 0 || (rc = hub_publish(store, &m)) < 0)
		goto out;
	fault_point("remove-restored");
	rc = index_add(index, &m);
	rc = rc < 0 && rc != -EBUSY ? rc : 1;
out:
	manifest_release(&m);
	return rc;
}

int
snapshot_unpublish(struct store *store, struct index *index, const char *folder,
    const char *commit, int64_t id, int64_t stale_ms,
    struct snapshot_blobs *left)
{
	char aside[STORE_PATH_MAX] = "";
	struct manifest m;
	const char *why;
	size_t i;
	int rc, loaded, overtaken;

	manifest_init(&m);
	loaded = snapshot_manifest(store, folder, commit, &m, &why) == 0;
	/* A leased snapshot stays whole: nothing goes before this look. */
	if ((rc = lease_live(store, folder, commit, stale_ms)) != 0) {
		rc = rc < 0 ? rc : -EBUSY;
		goto out;
	}
	fault_point("remove-leases-checked");
	if (loaded &&
	    (rc = remove_manifest(store, &m, folder, commit, stale_ms, aside,
		 sizeof(aside))) < 0)
		goto out;
	/* -EBUSY: it saw the manifest back, and stopped (hub.h). */
	overtaken = (rc = hub_unpublish(store, folder, commit)) == -EBUSY;
	if (rc < 0 && !overtaken)
		goto out;
	if (!overtaken) {
		fault_point("remove-hub-done");
		if ((rc = index_remove(index, id)) < 0)
			goto out;
		fault_point("remove-index-done");
	}
	if ((rc = restore_published(store, index, folder, commit)) != 0 ||
	    overtaken) {
		/* Gone again: the other remover, or fsck, takes the rest. */
		rc = rc < 0 ? rc : -EBUSY;
		goto out;
	}
	/* Done with the view and the row: no blob goes while it is aside. */
	if (aside[0] != '\0') {
		rc = manifest_drop_aside(store, aside);
		aside[0] = '\0';
		if (rc < 0)
			goto out;
		fault_point("remove-aside-dropped");
	}
	for (i = 0; loaded && i < m.nfiles && rc == 0; i++)
		rc = blobs_add(left, m.files[i].sha256);
out:
	/*
	 * Stopped on the way (an error, or a publish or holder overtook
	 * it): what is published now does not need the aside copy.
	 */
	if (aside[0] != '\0')
		manifest_drop_aside(store, aside);
	manifest_release(&m);
	return rc;
}

int
snapshot_aside_owned(struct store *store, const char *rel, const char *owner,
    int64_t stale_ms)
{
	struct stat st;
	int64_t mtime;

	switch (store_owner_state(store, owner)) {
	case OWNER_ALIVE:
		return 1;
	case OWNER_DEAD:
		return 0;
	default:
		/* Another node's remover: alive while younger than the limit. */
		if (fstatat(store->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == -1)
			return 0;
		mtime = (int64_t)st.st_mtim.tv_sec * 1000 +
		    st.st_mtim.tv_nsec / 1000000;
		return store_now_ms(store) - mtime <= stale_ms;
	}
}

int
snapshot_aside_recover(struct store *store, struct index *index,
    const char *rel, const char *folder, const char *commit, int64_t stale_ms)
{
	int rc;

	if ((rc = lease_live(store, folder, commit, stale_ms)) < 0)
		return rc;
	if (rc == 0) {
		rc = manifest_drop_aside(store, rel);
		return rc < 0 ? rc : SNAPSHOT_ASIDE_DROPPED;
	}
	/* Never over a manifest a publish saved since: that one is whole. */
	if ((rc = manifest_put_back(store, rel)) == -EEXIST)
		return SNAPSHOT_ASIDE_DROPPED;
	if (rc < 0)
		return rc;
	/* The view and row, as far as the remover took them apart. */
	rc = restore_published(store, index, folder, commit);
	return rc < 0 ? rc : SNAPSHOT_ASIDE_RESTORED;
}

struct recover_all {
	struct store *store;
	struct index *index;
	int64_t stale_ms;
};

static int
recover_one(const char *rel, const char *folder, const char *commit,
    const char *owner, void *arg)
{
	struct recover_all *r = arg;
	int rc;

	if (snapshot_aside_owned(r->store, rel, owner, r->stale_ms))
		return 0;
	/* One that fails stays, for fsck to report: the others go on. */
	rc = snapshot_aside_recover(r->store, r->index, rel, folder, commit,
	    r->stale_ms);
	(void)rc;
	return 0;
}

int
snapshot_recover_asides(struct store *store, struct index *index,
    int64_t stale_ms)
{
	struct recover_all r = { store, index, stale_ms };

	return manifest_each_aside(store, recover_one, &r);
}

int
snapshot_remove(struct store *store, struct index *index, const char *folder,
    const char *commit, int64_t id, int64_t stale_ms, uint64_t *freed)
{
	struct snapshot_blobs left = { NULL, 0, 0 };
	int rc;

	rc = snapshot_unpublish(store, index, folder, commit, id, stale_ms,
	    &left);
	if (rc == 0)
		rc = snapshot_drop_blobs(store, index, &left, stale_ms, freed);
	snapshot_blobs_release(&left);
	return rc;
}

int
snapshot_pin(struct store *store, struct index *index, const char *folder,
    const char *commit, int64_t id, int pinned)
{
	struct manifest m;
	const char *why;
	int rc;

	manifest_init(&m);
	if ((rc = snapshot_manifest(store, folder, commit, &m, &why)) < 0)
		goto out;
	if (m.pinned != pinned) {
		m.pinned = pinned;
		if ((rc = manifest_save(store, &m)) < 0)
			goto out;
	}
	rc = index_set_pinned(index, id, pinned);
out:
	manifest_release(&m);
	return rc;
}
