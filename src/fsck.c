/*
 * fsck: see fsck.h.  The passes, in order:
 *
 *  0. manifests a removal set aside and did not finish with (its
 *     remover gone): put back when leased, else dropped.
 *  1. manifests: each must decode; each file's blob must exist with its
 *     size (and, with hash set, its digest); its hub view must match; it
 *     must be indexed.
 *  2. index: each snapshot row must have its manifest.
 *  3. hub: every folder must be a valid name, every ref 40 hex naming a
 *     snapshot, every snapshot described by a manifest.
 *  4. repair only: the view of every manifest is published again, oldest
 *     first, so refs end on the newest manifest that names them.
 *  5. blobs: each must be named by a manifest, be a regular 0444 file.
 *  6. tmp/, claims/ and leases/: files of dead owners are residue; a
 *     lease file that is not one well-formed line is a problem, as it
 *     protects nothing: it is quarantined.
 *
 * Sets of names (manifests seen, blobs referenced, blobs checked) are kept
 * in a small open-addressing hash set of strings.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "claim.h"
#include "fsck.h"
#include "hub.h"
#include "lease.h"
#include "snapshot.h"

#define PARTIAL_KEEP_MS (24LL * 3600 * 1000)

struct strset {
	char **slot;
	size_t cap, n;
};

static uint64_t
fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static char **
strset_find(const struct strset *set, const char *key)
{
	size_t i;

	if (set->cap == 0)
		return NULL;
	for (i = fnv(key) & (set->cap - 1); set->slot[i] != NULL;
	     i = (i + 1) & (set->cap - 1))
		if (strcmp(set->slot[i], key) == 0)
			return &set->slot[i];
	return &set->slot[i];
}

static int
strset_has(const struct strset *set, const char *key)
{
	char **p = strset_find(set, key);

	return p != NULL && *p != NULL;
}

/* Returns 1 when added, 0 when present, or -ENOMEM. */
static int
strset_add(struct strset *set, const char *key)
{
	struct strset big;
	char **p;
	size_t i;

	if ((set->n + 1) * 2 > set->cap) {
		big.cap = set->cap == 0 ? 64 : set->cap * 2;
		big.n = 0;
		big.slot = calloc(big.cap, sizeof(*big.slot));
		if (big.slot == NULL)
			return -ENOMEM;
		for (i = 0; i < set->cap; i++)
			if (set->slot[i] != NULL) {
				*strset_find(&big, set->slot[i]) = set->slot[i];
				big.n++;
			}
		free(set->slot);
		*set = big;
	}
	p = strset_find(set, key);
	if (*p != NULL)
		return 0;
	if ((*p = strdup(key)) == NULL)
		return -ENOMEM;
	set->n++;
	return 1;
}

static void
strset_release(struct strset *set)
{
	size_t i;

	for (i = 0; i < set->cap; i++)
		free(set->slot[i]);
	free(set->slot);
	memset(set, 0, sizeof(*set));
}

/* A manifest kept for the republish pass. */
struct kept {
	char rel[STORE_PATH_MAX];
	int64_t updated;
};

struct fsck {
	struct store *store;
	struct index *index;
	const struct fsck_opts *o;
	struct fsck_result *r;
	struct strset manifests; /* "folder/commit" */
	struct strset folders;	 /* folders that have a manifest */
	struct strset blobs;	 /* referenced by a good manifest */
	struct strset checked;	 /* hashed and good */
	struct strset corrupt;	 /* hashed and bad */
	struct kept *kept;
	size_t nkept;
	int republish;
};

static void
issue(struct fsck *f, const char *kind, const char *path, const char *what,
    int residue, int repaired)
{
	struct fsck_issue i = { kind, path, what, residue, repaired };

	if (residue)
		f->r->residue++;
	else
		f->r->problems++;
	if (repaired)
		f->r->repaired++;
	else if (!residue)
		f->r->unrepaired++;
	if (f->o->report != NULL)
		f->o->report(f->o->arg, &i);
}

static int
count_one(void *arg, const struct index_snapshot *s)
{
	(*(int64_t *)arg) = s->id;
	return 0;
}

/* The index row id of a manifest's snapshot, or 0 when not indexed. */
static int64_t
indexed_id(struct fsck *f, const struct manifest *m)
{
	int64_t id = 0;

	if (index_each_snapshot(f->index, m->type, m->repo, m->commit,
		count_one, &id) < 0)
		return 0;
	return id;
}

/* Moves a file into tmp/ rather than deleting what may be evidence. */
static int
quarantine(struct fsck *f, const char *rel, const char *suffix)
{
	return store_quarantine(f->store, rel, suffix);
}

/* Takes a blob's claim now; a stale one (a dead process's) goes first. */
static int
take_claim(struct fsck *f, struct claim *claim, const char *sha256)
{
	int rc, tries = 0;

	do
		rc = claim_try(f->store, claim, sha256, store_now_ms(f->store),
		    f->o->stale_ms);
	while (rc == -EAGAIN && ++tries < 4);
	return rc;
}

/* Moves a corrupt blob aside under its claim, so no import races it. */
static int
quarantine_blob(struct fsck *f, const char *sha256)
{
	struct claim claim = { 0 };
	int rc;

	if ((rc = take_claim(f, &claim, sha256)) < 0)
		return rc;
	rc = store_blob_quarantine(f->store, sha256);
	claim_release(f->store, &claim);
	return rc;
}

/* Hashes a blob once per run; returns 1 when good, 0 when corrupt. */
static int
blob_good(struct fsck *f, const struct manifest_file *file)
{
	int rc;

	if (strset_has(&f->checked, file->sha256))
		return 1;
	if (strset_has(&f->corrupt, file->sha256))
		return 0;
	rc = store_blob_verify(f->store, file->sha256, file->size);
	if (rc == -EBADMSG) {
		char rel[STORE_PATH_MAX];

		store_blob_path(file->sha256, rel, sizeof(rel));
		strset_add(&f->corrupt, file->sha256);
		issue(f, "blob_corrupt", rel,
		    "blob content does not match its name", 0,
		    f->o->repair && quarantine_blob(f, file->sha256) == 0);
		return 0;
	}
	strset_add(&f->checked, file->sha256);
	return 1;
}

/*
 * Checks a manifest's blobs; returns 0 when one is missing or bad (reported
 * as repaired when repair is set: the snapshot is then dropped).
 */
static int
blobs_present(struct fsck *f, const struct manifest *m, int indexed, int repair)
{
	char rel[STORE_PATH_MAX];
	uint64_t size;
	size_t i;
	int ok = 1;

	for (i = 0; i < m->nfiles; i++) {
		const struct manifest_file *file = &m->files[i];

		store_blob_path(file->sha256, rel, sizeof(rel));
		if (store_blob_stat(f->store, file->sha256, &size) < 0 ||
		    size != file->size) {
			/* Residue when a publish never reached the index. */
			issue(f, "blob_missing", rel,
			    "a manifest names a missing or wrong-sized blob",
			    !indexed, repair);
			ok = 0;
		} else if (f->o->hash && !blob_good(f, file))
			ok = 0;
	}
	return ok;
}

struct hub_ctx {
	struct fsck *f;
	int indexed;
};

static void
hub_bad(void *arg, const char *path, enum hub_problem p)
{
	struct hub_ctx *c = arg;
	int residue = !c->indexed && p == HUB_SNAPSHOT_MISSING;

	/* Repaired by the republish pass. */
	c->f->republish = 1;
	issue(c->f, hub_problem_name(p), path, hub_problem_text(p), residue,
	    c->f->o->repair);
}

static int
keep(struct fsck *f, const char *rel, const struct manifest *m)
{
	struct kept *k;

	k = reallocarray(f->kept, f->nkept + 1, sizeof(*k));
	if (k == NULL)
		return -ENOMEM;
	f->kept = k;
	k = &k[f->nkept++];
	snprintf(k->rel, sizeof(k->rel), "%s", rel);
	k->updated = m->updated;
	return 0;
}

/* Undoes a snapshot whose bytes are gone: the view, manifest and row. */
static int
drop_snapshot(struct fsck *f, const struct manifest *m, int64_t id)
{
	char folder[REF_FOLDER_MAX];
	int rc;

	if ((rc = ref_folder_of(m->type, m->repo, folder, sizeof(folder))) < 0)
		return rc;
	if (id != 0)
		return snapshot_remove(f->store, f->index, folder, m->commit,
		    id, f->o->stale_ms, NULL);
	/* The manifest first, the commit point, as snapshot_remove. */
	if ((rc = manifest_unlink(f->store, m)) < 0)
		return rc;
	return hub_unpublish(f->store, folder, m->commit);
}

static int
check_manifest(struct fsck *f, const char *rel, struct manifest *m)
{
	char folder[REF_FOLDER_MAX], key[REF_FOLDER_MAX + 48];
	struct hub_ctx hc = { f, 0 };
	struct hub_report hr = { hub_bad, &hc, 0 };
	int64_t id = indexed_id(f, m);
	size_t i;
	int rc, drop;

	hc.indexed = id != 0;
	if ((rc = ref_folder_of(m->type, m->repo, folder, sizeof(folder))) < 0)
		return rc;
	/*
	 * A snapshot without its bytes is undone, unless a server holds it:
	 * then it stays, reported unrepaired, and fsck goes on.
	 */
	drop = f->o->repair &&
	    lease_live(f->store, folder, m->commit, f->o->stale_ms) == 0;
	if (!blobs_present(f, m, hc.indexed, drop) && drop) {
		/* -EBUSY: leased, or published again, since that look. */
		rc = drop_snapshot(f, m, id);
		return rc == -EBUSY ? 0 : rc;
	}
	/*
	 * Seen, even when broken: its row, view and blobs are accounted for
	 * by the problem already reported, not reported again as strays.
	 */
	snprintf(key, sizeof(key), "%s/%s", folder, m->commit);
	if ((rc = strset_add(&f->manifests, key)) < 0 ||
	    (rc = strset_add(&f->folders, folder)) < 0)
		return rc;
	for (i = 0; i < m->nfiles; i++)
		if ((rc = strset_add(&f->blobs, m->files[i].sha256)) < 0)
			return rc;
	if ((rc = keep(f, rel, m)) < 0)
		return rc;
	hub_check(f->store, m, &hr);
	if (!hc.indexed) {
		issue(f, "manifest_unindexed", rel,
		    "a published manifest is not in the index", 1,
		    f->o->repair && index_add(f->index, m) == 0);
	}
	return 0;
}

static int
pass_manifest(const char *rel, void *arg)
{
	struct fsck *f = arg;
	struct manifest m;
	const char *why;
	int rc;

	manifest_init(&m);
	rc = manifest_load(f->store, rel, &m, &why);
	if (rc == -EINVAL) {
		issue(f, "manifest_bad", rel, why, 0,
		    f->o->repair && quarantine(f, rel, ".manifest") == 0);
		rc = 0;
	} else if (rc == 0)
		rc = check_manifest(f, rel, &m);
	manifest_release(&m);
	return rc;
}

/*
 * A manifest a removal renamed aside (its commit point) and did not finish
 * with: residue once its remover is gone.  Repaired as that remover would
 * have: put back when a lease holds the snapshot, else dropped.  Before
 * the manifests pass, so that one put back is checked like the others.
 */
static int
pass_aside(const char *rel, const char *folder, const char *commit,
    const char *owner, void *arg)
{
	struct fsck *f = arg;
	int rc = 0;

	if (snapshot_aside_owned(f->store, rel, owner, f->o->stale_ms))
		return 0;
	if (f->o->repair)
		rc = snapshot_aside_recover(f->store, f->index, rel, folder,
		    commit, f->o->stale_ms);
	issue(f, "manifest_removing", rel,
	    "a manifest set aside by a removal that was stopped (put back"
	    " when leased, else dropped)",
	    1, rc > 0);
	return 0;
}

struct stale_rows {
	struct fsck *f;
	int64_t *ids;
	size_t n;
};

static int
pass_row(void *arg, const struct index_snapshot *s)
{
	struct stale_rows *st = arg;
	char key[REF_FOLDER_MAX + 48], rel[STORE_PATH_MAX];
	int64_t *ids;

	snprintf(key, sizeof(key), "%s/%s", s->folder, s->commit);
	if (strset_has(&st->f->manifests, key))
		return 0;
	/* The manifest is removal's commit point: the row is its residue. */
	snprintf(rel, sizeof(rel), "manifests/%s.json", key);
	issue(st->f, "index_stale", rel,
	    "the index lists a snapshot that has no manifest", 1,
	    st->f->o->repair);
	ids = reallocarray(st->ids, st->n + 1, sizeof(*ids));
	if (ids == NULL)
		return -ENOMEM;
	st->ids = ids;
	ids[st->n++] = s->id;
	return 0;
}

static int
pass_index(struct fsck *f)
{
	struct stale_rows st = { f, NULL, 0 };
	size_t i;
	int rc;

	rc = index_each_snapshot(f->index, REPO_MODEL, NULL, NULL, pass_row,
	    &st);
	for (i = 0; rc == 0 && f->o->repair && i < st.n; i++)
		rc = index_remove(f->index, st.ids[i]);
	free(st.ids);
	return rc;
}

static int
has_manifest(void *arg, const char *folder, const char *commit)
{
	struct fsck *f = arg;
	char key[REF_FOLDER_MAX + 48];

	snprintf(key, sizeof(key), "%s/%s", folder, commit);
	return strset_has(&f->manifests, key);
}

struct folder_ctx {
	struct fsck *f;
	const char *folder;
};

static void
folder_bad(void *arg, const char *path, enum hub_problem p)
{
	struct folder_ctx *c = arg;
	char rel[STORE_PATH_MAX];
	int repaired = 0, residue = 0;

	if (p == HUB_SNAPSHOT_MISSING) {
		/*
		 * A folder without snapshots/ is what a publish or removal
		 * stopped half-way leaves: completed from its manifests by the
		 * republish pass, or removed when it has none.
		 */
		residue = 1;
		c->f->republish = 1;
		if (c->f->o->repair && !strset_has(&c->f->folders, c->folder) &&
		    snprintf(rel, sizeof(rel), "hub/%s", c->folder) > 0)
			repaired = store_remove_tree(c->f->store, rel) == 0;
		else
			repaired = c->f->o->repair;
	} else if (p == HUB_SNAPSHOT_STRAY) {
		const char *commit = strrchr(path, '/') + 1;

		/*
		 * A publish saves the manifest before the view, and removal
		 * unlinks it first (its commit point): a view without one is
		 * what a removal stopped half-way leaves.
		 */
		residue = 1;
		repaired = c->f->o->repair &&
		    hub_unpublish(c->f->store, c->folder, commit) == 0;
	} else if (c->f->o->repair) {
		/* A bad ref goes; the republish pass writes the right one. */
		repaired = unlinkat(c->f->store->dirfd, path, 0) == 0;
		c->f->republish = 1;
	}
	issue(c->f, hub_problem_name(p), path, hub_problem_text(p), residue,
	    repaired);
}

/* Whether hub/<folder>/snapshots holds anything (or cannot be read). */
static int
has_snapshot(struct fsck *f, const char *folder)
{
	char rel[STORE_PATH_MAX];
	struct dirent *e;
	DIR *d;
	int any = 0;

	snprintf(rel, sizeof(rel), "hub/%s/snapshots", folder);
	if ((d = store_opendirat(f->store->dirfd, rel)) == NULL)
		return errno != ENOENT;
	while (!any && (e = readdir(d)) != NULL)
		any =
		    strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return any;
}

static int
pass_folder(void *arg, const char *folder)
{
	struct fsck *f = arg;
	struct folder_ctx c = { f, folder };
	struct hub_report hr = { folder_bad, &c, 0 };
	char rel[STORE_PATH_MAX];
	enum repo_type type;
	char repo[REF_FOLDER_MAX];
	int ok;

	ok = hub_folder_parse(folder, &type, repo, sizeof(repo)) == 0;
	snprintf(rel, sizeof(rel), "hub/%s", folder);
	if (!ok) {
		issue(f, "hub_folder_stray", rel,
		    "not a Hugging Face cache folder", 0,
		    f->o->repair && store_remove_tree(f->store, rel) == 0);
		return 0;
	}
	/* A folder that cannot be read is reported by its own checks. */
	hub_check_folder(f->store, folder, has_manifest, f, &hr);
	/*
	 * No manifest and no snapshot: what a removal killed between moving
	 * the last snapshot out and pruning the folder leaves.
	 */
	if (hr.count == 0 && !strset_has(&f->folders, folder) &&
	    !has_snapshot(f, folder))
		issue(f, "hub_folder_empty", rel,
		    "a folder without snapshots or manifests", 1,
		    f->o->repair && store_remove_tree(f->store, rel) == 0);
	return 0;
}

static int
kept_cmp(const void *a, const void *b)
{
	const struct kept *x = a, *y = b;

	return x->updated < y->updated ? -1 : x->updated > y->updated;
}

/* Publishes every view again, oldest first, so the newest refs win. */
static int
pass_republish(struct fsck *f)
{
	struct manifest m;
	const char *why;
	size_t i;
	int rc = 0;

	if (f->nkept > 1)
		qsort(f->kept, f->nkept, sizeof(*f->kept), kept_cmp);
	for (i = 0; rc == 0 && i < f->nkept; i++) {
		manifest_init(&m);
		if (manifest_load(f->store, f->kept[i].rel, &m, &why) == 0)
			rc = hub_publish(f->store, &m);
		manifest_release(&m);
	}
	return rc;
}

/* An orphan blob goes only under its claim, and only if still unused. */
static int
drop_orphan(struct fsck *f, const char *sha256)
{
	struct claim claim = { 0 };
	int64_t refs = 0;
	int rc;

	if (take_claim(f, &claim, sha256) < 0)
		return 0;
	rc = index_blob_refs(f->index, sha256, &refs);
	if (rc == 0 && refs == 0 && !strset_has(&f->blobs, sha256))
		rc = store_blob_unlink(f->store, sha256) == 0 &&
		    index_forget_blob(f->index, sha256) == 0;
	else
		rc = 0;
	claim_release(f->store, &claim);
	return rc;
}

static int
pass_blob(const char *name, const char *rel, void *arg)
{
	struct fsck *f = arg;
	char want[STORE_PATH_MAX];
	struct stat st;

	if (store_blob_path(name, want, sizeof(want)) < 0 ||
	    strcmp(want, rel) != 0 ||
	    fstatat(f->store->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode)) {
		issue(f, "blob_stray", rel,
		    "not a regular file named by its digest in its place", 0,
		    f->o->repair && quarantine(f, rel, ".stray") == 0);
		return 0;
	}
	if ((st.st_mode & 07777) != 0444)
		issue(f, "blob_mode", rel, "a blob is writable (not 0444)", 0,
		    f->o->repair &&
			fchmodat(f->store->dirfd, rel, 0444, 0) == 0);
	if (strset_has(&f->blobs, name))
		return 0;
	/* A blob claimed by a live process is an import in flight. */
	if (claim_live(f->store, name, store_now_ms(f->store), f->o->stale_ms))
		return 0;
	issue(f, "blob_orphan", rel, "no manifest references this blob", 1,
	    f->o->repair && drop_orphan(f, name) == 1);
	return 0;
}

/* Whether a tmp/ entry still belongs to a live process. */
static int
tmp_alive(struct fsck *f, const char *name, const struct stat *st, int64_t now)
{
	/* A pull's partial file resumes a later pull: kept for a day. */
	if (strncmp(name, "partial.", 8) == 0)
		return now - (int64_t)st->st_mtim.tv_sec * 1000 <=
		    PARTIAL_KEEP_MS;
	switch (store_owner_state(f->store, name)) {
	case OWNER_ALIVE:
		return 1;
	case OWNER_DEAD:
		return 0;
	default:
		/* Another node's: alive until older than the stale limit. */
		return now - (int64_t)st->st_mtim.tv_sec * 1000 <=
		    f->o->stale_ms;
	}
}

static int
pass_dir(struct fsck *f, const char *dir, int claims)
{
	char rel[STORE_PATH_MAX];
	struct dirent *e;
	struct stat st;
	int64_t now;
	DIR *d;

	if ((d = store_opendirat(f->store->dirfd, dir)) == NULL) {
		return -errno;
	}
	now = store_now_ms(f->store); /* ages by the store's clock */
	while ((e = readdir(d)) != NULL) {
		/* Evidence kept for people, not residue. */
		if (e->d_name[0] == '.' ||
		    strncmp(e->d_name, "index.db.corrupt", 16) == 0 ||
		    strncmp(e->d_name, "quarantine.", 11) == 0)
			continue;
		snprintf(rel, sizeof(rel), "%s/%s", dir, e->d_name);
		if (fstatat(f->store->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (claims ? !claim_stale(f->store, rel, now, f->o->stale_ms)
			   : tmp_alive(f, e->d_name, &st, now))
			continue;
		issue(f, claims ? "claim_stale" : "tmp_stale", rel,
		    claims ? "a claim whose owner stopped heartbeating"
			   : "a temporary file of a process that is gone",
		    1, f->o->repair && store_remove_tree(f->store, rel) == 0);
	}
	closedir(d);
	return 0;
}

static int
pass_lease(void *arg, const char *id, const char *folder, const char *commit,
    int64_t taken_ms, int live)
{
	struct fsck *f = arg;
	char rel[STORE_PATH_MAX];

	(void)commit;
	(void)taken_ms;
	if (live)
		return 0;
	snprintf(rel, sizeof(rel), "leases/%s", id);
	if (folder[0] == '\0')
		issue(f, "lease_bad", rel,
		    "not a lease file (\"<folder> <commit> <ms>\")", 0,
		    f->o->repair && quarantine(f, rel, ".lease") == 0);
	else
		issue(f, "lease_stale", rel,
		    "a lease whose holder is gone or stopped heartbeating", 1,
		    f->o->repair && unlinkat(f->store->dirfd, rel, 0) == 0);
	return 0;
}

int
fsck_run(struct store *store, struct index *index, const struct fsck_opts *opts,
    struct fsck_result *result)
{
	struct fsck f;
	int rc;

	memset(&f, 0, sizeof(f));
	memset(result, 0, sizeof(*result));
	f.store = store;
	f.index = index;
	f.o = opts;
	f.r = result;
	if (index->rebuilt)
		issue(&f, "index_rebuilt", "index.db",
		    "the index was missing or corrupt and was rebuilt", 1, 1);
	if ((rc = manifest_each_aside(store, pass_aside, &f)) < 0 ||
	    (rc = manifest_each(store, pass_manifest, &f)) < 0 ||
	    (rc = pass_index(&f)) < 0 ||
	    (rc = hub_each_folder(store, pass_folder, &f)) < 0)
		goto out;
	if (opts->repair && f.republish && (rc = pass_republish(&f)) < 0)
		goto out;
	if ((rc = store_blob_each(store, pass_blob, &f)) < 0 ||
	    (rc = pass_dir(&f, "tmp", 0)) < 0 ||
	    (rc = pass_dir(&f, "claims", 1)) < 0 ||
	    (rc = lease_each(store, opts->stale_ms, pass_lease, &f)) < 0)
		goto out;
out:
	strset_release(&f.manifests);
	strset_release(&f.folders);
	strset_release(&f.blobs);
	strset_release(&f.checked);
	strset_release(&f.corrupt);
	free(f.kept);
	return rc;
}
