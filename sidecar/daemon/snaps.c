/*
 * snaps: modelcached's cache of whole snapshots (see daemon.h, struct
 * snap), and the uses of them recorded for eviction, behind the answer
 * (snap_touch()).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "daemon.h"
#include "hub.h"
#include "log.h"
#include "manifest.h"
#include "snapshot.h"

#define SNAP_CACHE_MAX 64
#define SNAP_CACHE_BYTES (64 * 1024 * 1024) /* of file lists, beyond one */

/*
 * Every blob of m is in the store, at its size.  One that is not is pulled
 * again: the pull sets a blob of the wrong size aside and fetches it anew.
 */
static int
complete(struct daemon *d, const struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->nfiles; i++)
		if (store_blob_check(&d->store, m->files[i].sha256,
			m->files[i].size) < 0)
			return 0;
	return 1;
}

/* Drops a reference to sn: the last frees it. */
void
snap_put(struct snap *sn)
{
	if (sn == NULL || --sn->refs > 0)
		return;
	free(sn->repo);
	free(sn->files);
	free(sn->cut);
	free(sn->sha256);
	free(sn);
}

/* Appends len bytes of text to sn->files (capacity *cap).  0 or -ENOMEM. */
static int
snap_append(struct snap *sn, size_t *cap, const char *text, size_t len)
{
	char *p;

	if (sn->len + len + 1 > *cap) {
		size_t want = *cap > 0 ? *cap : 4096;

		while (want < sn->len + len + 1)
			want *= 2;
		if ((p = realloc(sn->files, want)) == NULL)
			return -ENOMEM;
		sn->files = p;
		*cap = want;
	}
	memcpy(sn->files + sn->len, text, len);
	sn->len += len;
	sn->files[sn->len] = '\0';
	return 0;
}

/*
 * The file list as one JSON array text, each object's start recorded so
 * that a chunked answer can cut it between objects.
 */
static int
snap_render(struct snap *sn, const struct manifest *m)
{
	size_t cap = 0, i;
	char *one;
	int rc;

	if ((sn->cut = calloc(m->nfiles + 1, sizeof(*sn->cut))) == NULL ||
	    snap_append(sn, &cap, "[", 1) < 0)
		return -ENOMEM;
	for (i = 0; i < m->nfiles; i++) {
		one = proto_line(json_pack("{s:s, s:I, s:s}", "path",
		    m->files[i].path, "size", (json_int_t)m->files[i].size,
		    "sha256", m->files[i].sha256));
		if (one == NULL)
			return -ENOMEM;
		rc = i > 0 ? snap_append(sn, &cap, ",", 1) : 0;
		sn->cut[i] = sn->len;
		if (rc == 0)
			rc = snap_append(sn, &cap, one, strlen(one));
		free(one);
		if (rc < 0)
			return rc;
	}
	sn->cut[m->nfiles] = sn->len;
	sn->nfiles = m->nfiles;
	return snap_append(sn, &cap, "]", 1);
}

/* The digests of an https:// snapshot's files, kept as they are. */
static int
snap_digests(struct snap *sn, const struct manifest *m)
{
	size_t i;

	if ((sn->sha256 = calloc(m->nfiles, sizeof(*sn->sha256))) == NULL)
		return -ENOMEM;
	for (i = 0; i < m->nfiles; i++)
		snprintf(sn->sha256[i], sizeof(sn->sha256[i]), "%s",
		    m->files[i].sha256);
	return 0;
}

/* A manifest read and checked whole, made a cache entry. */
static struct snap *
snap_load(struct daemon *d, const char *folder, const char *commit,
    const struct stat *st)
{
	struct snap *sn = calloc(1, sizeof(*sn));
	struct manifest m;
	const char *why;
	int ok;

	manifest_init(&m);
	if (sn != NULL)
		sn->refs = 1;
	ok = sn != NULL &&
	    snapshot_manifest(&d->store, folder, commit, &m, &why) == 0 &&
	    m.nfiles > 0 && complete(d, &m) && snap_render(sn, &m) == 0;
	if (ok) {
		snprintf(sn->folder, sizeof(sn->folder), "%s", folder);
		snprintf(sn->commit, sizeof(sn->commit), "%s", commit);
		sn->type = m.type;
		sn->kind = m.source == NULL		    ? SOURCE_OTHER
		    : strncmp(m.source, "hf://", 5) == 0    ? SOURCE_HUB
		    : strncmp(m.source, "https://", 8) == 0 ? SOURCE_HTTPS
							    : SOURCE_OTHER;
		sn->dev = st->st_dev;
		sn->ino = st->st_ino;
		sn->mtime = st->st_mtim;
		ok = (sn->repo = strdup(m.repo)) != NULL &&
		    (sn->kind != SOURCE_HTTPS || snap_digests(sn, &m) == 0);
	}
	manifest_release(&m);
	if (!ok && sn != NULL) {
		snap_put(sn);
		sn = NULL;
	}
	return sn;
}

/* The cache entry of folder/commit, checked or (re)loaded; or NULL. */
static struct snap *
snap_get(struct daemon *d, const char *folder, const char *commit)
{
	char rel[STORE_PATH_MAX];
	struct snap **pp, *sn, *old;
	struct stat st;
	size_t n = 0, bytes;

	/*
	 * The view's snapshot, then the manifest: removal makes the manifest
	 * vanish before it looks again at the leases (lease.h), so a holder
	 * must find it after leasing.
	 */
	if (hub_snapshot_dir(folder, commit, rel, sizeof(rel)) < 0 ||
	    fstatat(d->store.dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return NULL;
	if (manifest_rel_of(folder, commit, rel, sizeof(rel)) < 0 ||
	    fstatat(d->store.dirfd, rel, &st, 0) == -1)
		return NULL;
	for (pp = &d->snaps; (sn = *pp) != NULL; pp = &sn->next, n++)
		if (strcmp(sn->folder, folder) == 0 &&
		    strcmp(sn->commit, commit) == 0)
			break;
	if (sn != NULL &&
	    (sn->dev != st.st_dev || sn->ino != st.st_ino ||
		sn->mtime.tv_sec != st.st_mtim.tv_sec ||
		sn->mtime.tv_nsec != st.st_mtim.tv_nsec)) {
		*pp = sn->next; /* replaced since: read again */
		snap_put(sn);
		sn = NULL;
	}
	if (sn == NULL) {
		if ((sn = snap_load(d, folder, commit, &st)) == NULL)
			return NULL;
		sn->next = d->snaps;
		d->snaps = sn;
		/* The oldest go, by count and by bytes; the newest stays. */
		for (pp = &sn->next, n = 1, bytes = sn->len; *pp != NULL;) {
			old = *pp;
			if (n + 1 > SNAP_CACHE_MAX ||
			    bytes + old->len > SNAP_CACHE_BYTES) {
				*pp = old->next;
				snap_put(old);
				continue;
			}
			n++;
			bytes += old->len;
			pp = &old->next;
		}
	}
	return sn;
}

void
snap_cache_free(struct daemon *d)
{
	struct snap *sn;

	while ((sn = d->snaps) != NULL) {
		d->snaps = sn->next;
		snap_put(sn);
	}
}

/*
 * Whether the located snapshot is whole (see struct snap) and, for an
 * https:// reference, holds the digest asked for.  1 or 0.
 */
int
snap_whole(struct daemon *d, const struct ref *ref, struct found *f)
{
	size_t i;

	if ((f->snap = snap_get(d, f->folder, f->commit)) == NULL)
		return 0;
	/* A folder of the Hub's never answers for a URL, nor the reverse. */
	if (ref->kind == REF_HF)
		return f->snap->kind != SOURCE_HTTPS;
	if (f->snap->kind != SOURCE_HTTPS)
		return 0;
	for (i = 0; i < f->snap->nfiles; i++)
		if (strcmp(f->snap->sha256[i], ref->sha256) == 0)
			return 1;
	return 0;
}

struct use {
	int64_t id, last_used;
};

static int
snapshot_use(void *arg, const struct index_snapshot *s)
{
	struct use *u = arg;

	u->id = s->id;
	u->last_used = s->last_used;
	return 1;
}

/* A use of a snapshot, recorded by the index's queue (snap_touch()). */
struct use_job {
	struct index_job job;
	struct daemon *d;
	struct snap *snap; /* a reference of the job's */
	int private;	   /* the index is this node's own */
	int64_t now;
	int reindexed; /* the snapshot's missing row was written */
};

static int
touch_run(struct index_job *job, struct index *index)
{
	struct use_job *t = job->data;
	struct snap *sn = t->snap;
	struct use u = { -1, 0 };
	struct manifest m;
	const char *why;
	int rc;

	index_each_snapshot(index, sn->type, sn->repo, sn->commit, snapshot_use,
	    &u);
	/* Published by another node and not yet in this node's index. */
	if (u.id < 0 && index_refresh(index, &t->d->store) == 0)
		index_each_snapshot(index, sn->type, sn->repo, sn->commit,
		    snapshot_use, &u);
	if (u.id >= 0)
		return t->now - u.last_used >= 60
		    ? index_touch(index, u.id, t->now)
		    : 0;
	if (t->private)
		return 0; /* its refresh finds it once the files are whole */
	/*
	 * A published snapshot that the shared index has no row for: its
	 * publisher found the index busy (snapshot.h).  The manifest gives
	 * the row.
	 */
	manifest_init(&m);
	if ((rc = snapshot_manifest(&t->d->store, sn->folder, sn->commit, &m,
		 &why)) == 0 &&
	    (rc = index_add(index, &m)) == 0)
		t->reindexed = 1;
	manifest_release(&m);
	return rc;
}

static void
touch_done(struct index_job *job, int rc)
{
	struct use_job *t = job->data;

	if (t->reindexed)
		log_info("index: wrote the missing row of '%s' (commit %.12s)",
		    t->snap->folder, t->snap->commit);
	if (rc < 0) /* tried again at the next use */
		t->snap->touched = 0;
	snap_put(t->snap);
	free(t);
}

/*
 * Records a use for least-recently-used eviction, behind the answer; at
 * most once a minute per snapshot, so that a busy model costs the index no
 * write per acquire.  A missing row is written, or tried again at the next
 * use.
 */
void
snap_touch(struct daemon *d, struct found *f)
{
	int64_t now = (int64_t)time(NULL);
	struct use_job *t;

	if (now - f->snap->touched < 60 || (t = calloc(1, sizeof(*t))) == NULL)
		return;
	f->snap->touched = now;
	t->d = d;
	t->snap = f->snap;
	t->snap->refs++;
	t->private = d->index.private;
	t->now = now;
	t->job.data = t;
	index_queue(&d->index, d->loop, &t->job, touch_run, touch_done);
}
