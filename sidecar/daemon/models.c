/*
 * models: what modelcached does with models (see daemon.h).
 *
 * An acquire is answered from the store when the model is there and its
 * ref is fresh (confirmed at the origin within the refresh interval; a
 * commit id or an https:// digest never needs confirming).  Otherwise the
 * reference goes to a flight: one pull_ref for everyone who wants that
 * reference, declared models included, with progress sent to each waiter
 * once a second.  When the origin cannot be reached and the store has the
 * model, the answer is the stored one, marked stale.  Every ready answer
 * carries a lease, taken before the snapshot is checked complete.
 *
 * Limits, per connection: at most max_leases_per_client leases; at most
 * max_pulls_per_client flights started for it at once (the flight's owner
 * is charged), the others wait in the air, queued (op NULL), and start as
 * its pulls end.  A queued flight that someone with room (or a declared
 * model) also wants starts at once, charged to that one.  When the owner
 * hangs up, its started flights go on uncharged (declared models and other
 * waiters may want them, and a later acquire finds the bytes), and a
 * queued one passes to its first waiter, or starts uncharged for a declared
 * model, or is dropped.  Only references the allow list matches (or that
 * the operator declared) are acquired.
 *
 * A ready answer too long for one line (PROTO_LINE_MAX) goes to a client
 * that said "chunked" as "files" events then the ready line, sent as the
 * client reads them (models_stream()); another client gets an error.
 *
 * The index is never called from the loop's thread (daemon.h): what needs
 * it goes to its queue, and the loop goes on serving.  A reference is
 * located from the files when they say (a revision's ref file, a full
 * commit id), so that a present model is answered whatever the index is
 * doing; only a commit prefix, or a revision without its ref file, waits
 * for the index (struct lookup).  A finished pull's flight stays in the
 * air, "landing", while the queue enforces the quota and locates the
 * model; its waiters (and those who come meanwhile) are answered after.
 * Uses are recorded for eviction behind the answer (touch()).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "claim.h"
#include "daemon.h"
#include "gc.h"
#include "hub.h"
#include "log.h"
#include "origin_https.h"
#include "snapshot.h"

struct flight {
	struct daemon *d;
	struct flight *next;
	char key[PROTO_MODEL_MAX]; /* the reference, canonical */
	struct ref ref;
	struct pull_ref_opts o;
	struct pull_ref_result r;
	struct pull_ref *op;
	struct conn *waiters;
	struct conn *owner;	 /* charged for it (NULL: nobody) */
	int queued;		 /* waits for room in its owner's pulls */
	struct keep *keep;	 /* when a declared model's */
	char *endpoint, *token;	 /* copies: a reload may change the daemon's */
	char *include, *exclude; /* copies, split into o.hf's globs */
	uint64_t done, total, reused;
	int64_t started_ms;
	int landing; /* pulled: the quota, then the answers (land()) */
	int quota_rc;
};

/*
 * A snapshot known whole, with its file list rendered once: the acquire of
 * a present model then costs a lease and two stats, not a manifest parse,
 * a hundred blob stats and a hundred JSON objects.  An entry holds while
 * its manifest file is the same file (a later filtered pull of the commit
 * replaces it by rename) and the view's snapshot directory exists (removal
 * takes the manifest first, then looks again at the leases).
 */
enum source_kind { SOURCE_OTHER, SOURCE_HUB, SOURCE_HTTPS };

struct snap {
	struct snap *next;
	unsigned refs; /* the cache's, and each chunked answer's */
	char folder[REF_FOLDER_MAX];
	char commit[DIGEST_SHA1_HEX + 1];
	enum repo_type type;
	char *repo;
	char *files; /* the ready answer's "files", as JSON text */
	size_t len;  /* of files */
	size_t *cut; /* where each of its nfiles objects starts */
	size_t nfiles;
	enum source_kind kind;
	/* SOURCE_HTTPS: its nfiles digests, one of which a URL's must be */
	char (*sha256)[DIGEST_SHA256_HEX + 1];
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	int64_t touched; /* the last use recorded in the index */
};

#define SNAP_CACHE_MAX 64
#define SNAP_CACHE_BYTES (64 * 1024 * 1024) /* of file lists, beyond one */

/* A model found in the store, leased. */
struct found {
	char folder[REF_FOLDER_MAX];
	char commit[DIGEST_SHA1_HEX + 1];
	struct snap *snap;
	int fresh;
};

/*
 * After the origin confirmed a revision: the ref file's mtime says when
 * (publishing leaves a ref that already reads right untouched).
 */
static void
confirm_ref(struct daemon *d, const struct ref *ref)
{
	struct store_place p;

	if (ref->kind != REF_HF || store_locate(ref, NULL, NULL, &p) < 0 ||
	    p.is_commit)
		return;
	hub_ref_touch(&d->store, p.folder, p.revision);
}

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

/*
 * Where ref would be in the store, from the files: a named revision is its
 * ref file, a full commit id names itself (whole() then checks that it is
 * there).  1 (f filled in); 0 when only the index can say (a commit
 * prefix, or a revision without its ref file: lookup_new()); -1 when ref
 * has no place in the store.
 */
static int
locate(struct daemon *d, const struct ref *ref, struct found *f)
{
	struct store_place p;
	int64_t age;

	memset(f, 0, sizeof(*f));
	if (store_locate(ref, NULL, NULL, &p) < 0)
		return -1;
	snprintf(f->folder, sizeof(f->folder), "%s", p.folder);
	if (p.is_commit) {
		snprintf(f->commit, sizeof(f->commit), "%.40s", p.revision);
		f->fresh = 1;
		return 1;
	}
	if (hub_ref_read(&d->store, f->folder, p.revision, f->commit, &age) ==
	    0) {
		f->fresh =
		    ref->kind != REF_HF || age < (int64_t)d->conf.refresh_s;
		return 1;
	}
	return 0;
}

/*
 * A reference the files do not locate, resolved by the index's queue; then
 * then() goes on, on the loop, for the acquire of c (NULL once c is gone)
 * or the landing of fl.
 */
struct lookup {
	struct index_job job;
	struct daemon *d;
	struct store_place p;
	struct found f;
	void (*then)(struct lookup *lk, int found);
	struct conn *c;
	int wait;
	uint64_t deadline; /* loop time when c's acquire times out, or 0 */
	struct flight *fl;
};

static int
lookup_run(struct index_job *job, struct index *index)
{
	struct lookup *lk = job->data;

	return hub_resolve(&lk->d->store, index, &lk->p, lk->f.commit, NULL);
}

static void
lookup_done(struct index_job *job, int rc)
{
	struct lookup *lk = job->data;

	lk->then(lk, rc >= 0);
	free(lk);
}

/*
 * A lookup of ref (which locate() left to the index), not yet queued: the
 * caller sets then and its fields, and queues it (lookup_queue()), which
 * frees it after then().  NULL when out of memory.
 */
static struct lookup *
lookup_new(struct daemon *d, const struct ref *ref)
{
	struct lookup *lk = calloc(1, sizeof(*lk));

	if (lk == NULL)
		return NULL;
	if (store_locate(ref, NULL, NULL, &lk->p) < 0) {
		free(lk);
		return NULL;
	}
	snprintf(lk->f.folder, sizeof(lk->f.folder), "%s", lk->p.folder);
	lk->d = d;
	/* (A full commit id never comes here: locate() answers it.) */
	lk->f.fresh = ref->kind != REF_HF;
	return lk;
}

static void
lookup_queue(struct lookup *lk)
{
	lk->job.data = lk;
	index_queue(&lk->d->index, lk->d->loop, &lk->job, lookup_run,
	    lookup_done);
}

/* c stops waiting for its lookup, which then ends on its own, unanswered. */
static void
unlook(struct conn *c)
{
	if (c->lookup != NULL)
		c->lookup->c = NULL;
	c->lookup = NULL;
}

/* Drops a reference to sn: the last frees it. */
static void
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
models_cache_free(struct daemon *d)
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
static int
whole(struct daemon *d, const struct ref *ref, struct found *f)
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

/*
 * The daemon's lease file on folder/commit, shared by every protocol lease
 * on that snapshot (so a busy model costs no file per acquire): taken on
 * the first, dropped with the last.
 */
static int
hold(struct daemon *d, const char *folder, const char *commit,
    struct held **out)
{
	struct held *h;
	int rc;

	for (h = d->held; h != NULL; h = h->next)
		if (strcmp(h->file.folder, folder) == 0 &&
		    strcmp(h->file.commit, commit) == 0) {
			h->refs++;
			*out = h;
			return 0;
		}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -ENOMEM;
	if ((rc = lease_take(&d->store, folder, commit, &h->file)) < 0) {
		free(h);
		return rc;
	}
	h->refs = 1;
	h->next = d->held;
	d->held = h;
	*out = h;
	return 0;
}

static void
unhold(struct daemon *d, struct held *h)
{
	struct held **pp;

	if (--h->refs > 0)
		return;
	for (pp = &d->held; *pp != NULL; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	lease_drop(&d->store, &h->file);
	free(h);
}

/*
 * Leases for c the snapshot where ref was located (f), when it is whole:
 * the lease first, then the check (see lease.h).  Returns 1 (f->snap set,
 * the lease the last of c's), 0 when absent, or a negative errno.
 */
static int
find(struct conn *c, const struct ref *ref, struct found *f)
{
	struct daemon *d = c->d;
	struct conn_lease *l;
	int rc;

	l = reallocarray(c->leases, c->nleases + 1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	c->leases = l;
	l = &c->leases[c->nleases];
	if ((rc = hold(d, f->folder, f->commit, &l->held)) < 0)
		return rc;
	snprintf(l->id, sizeof(l->id), "%s.%llu", l->held->file.id,
	    (unsigned long long)++d->lease_seq);
	c->nleases++;
	if (!whole(d, ref, f)) {
		unhold(d, l->held);
		c->nleases--;
		return 0;
	}
	return 1;
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

/* A use of a snapshot, recorded by the index's queue (touch()). */
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
static void
touch(struct daemon *d, struct found *f)
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

/* Drops the lease find() just took for c (the last of c's). */
static void
unfind(struct conn *c)
{
	unhold(c->d, c->leases[--c->nleases].held);
}

/*
 * The ready answer for what find() leased: one line when it fits; else, to
 * a chunked client, "files" events then the ready line with the rest (see
 * models_stream()); else an error, and the lease goes again.  Returns 0,
 * or -1 when it answered with an error.
 */
static int
send_ready(struct conn *c, const char *model, struct found *f, int stale)
{
	const struct conn_lease *l = &c->leases[c->nleases - 1];
	struct snap *sn = f->snap;
	json_t *name = json_string(model);
	char *quoted = name != NULL
	    ? json_dumps(name, JSON_ENCODE_ANY | JSON_ENSURE_ASCII)
	    : NULL;
	char *line = NULL, dir[STORE_PATH_MAX];
	int whole, n;

	hub_snapshot_dir(f->folder, f->commit, dir, sizeof(dir));
	/* Built as text around the cached file list: no JSON tree per call. */
	n = snprintf(NULL, 0,
	    "{\"ok\":true,\"event\":\"ready\",\"model\":%s,\"repo\":\"%s\","
	    "\"commit\":\"%s\",\"lease\":\"%s\","
	    "\"dir\":\"%s\",\"nfiles\":%zu,\"files\":"
	    "[],\"stale\":%s}",
	    quoted != NULL ? quoted : "", sn->repo, f->commit, l->id, dir,
	    sn->nfiles, stale ? "true" : "false");
	/* The line, its files and its newline within PROTO_LINE_MAX. */
	whole = n >= 0 && (size_t)n + sn->len - 2 + 1 <= PROTO_LINE_MAX;
	if (!whole && !c->chunked) {
		free(quoted);
		json_decref(name);
		unfind(c);
		log_info("acquire '%s' (connection %llu, pid %d): %zu files do"
			 " not fit one line, and the client cannot take chunks",
		    model, (unsigned long long)c->id, (int)c->pid, sn->nfiles);
		conn_error(c, PROTO_UNSUPPORTED_PROTOCOL,
		    "the model's file list is over 1 MiB: this client must"
		    " say hello with \"chunked\":true "
		    "(modelcache-protocol(7))");
		return -1;
	}
	if (quoted == NULL ||
	    asprintf(&line,
		"{\"ok\":true,\"event\":\"ready\",\"model\":%s,\"repo\":\"%s\","
		"\"commit\":\"%s\",\"lease\":\"%s\","
		"\"dir\":\"%s\",\"nfiles\":%zu,\"files\":%s,"
		"\"stale\":%s}",
		quoted, sn->repo, f->commit, l->id, dir, sn->nfiles,
		whole ? sn->files : "[]", stale ? "true" : "false") < 0)
		line = NULL;
	free(quoted);
	json_decref(name);
	touch(c->d, f);
	log_info("acquire '%s' (connection %llu, pid %d): ready, commit %.12s"
		 "%s, lease %s%s",
	    model, (unsigned long long)c->id, (int)c->pid, f->commit,
	    stale ? " (stale: the origin is unreachable)" : "", l->id,
	    whole ? "" : ", files in chunks");
	if (whole || line == NULL) {
		conn_send(c, line);
		return 0;
	}
	sn->refs++;
	c->stream = sn;
	c->stream_next = 0;
	c->stream_last = line;
	models_stream(c);
	return 0;
}

void
models_stream(struct conn *c)
{
	struct snap *sn = c->stream;
	size_t first, end;
	char *line;

	while (c->stream != NULL && !c->closing &&
	    c->out_queued < CONN_OUT_MAX / 2) {
		if (c->stream_next == sn->nfiles) {
			line = c->stream_last;
			c->stream_last = NULL;
			c->stream = NULL;
			snap_put(sn);
			conn_send(c, line);
			conn_resume(c);
			return;
		}
		/*
		 * As many whole objects as fit in PROTO_CHUNK_MAX, and one
		 * at least (a path is far shorter than a line).
		 */
		first = c->stream_next;
		for (end = first + 1; end < sn->nfiles &&
		     sn->cut[end + 1] - sn->cut[first] < PROTO_CHUNK_MAX;
		     end++)
			;
		if (asprintf(&line, "{\"event\":\"files\",\"files\":[%.*s]}",
			(int)(sn->cut[end] - sn->cut[first] -
			    (end < sn->nfiles ? 1 : 0)),
			sn->files + sn->cut[first]) < 0)
			line = NULL;
		c->stream_next = end;
		conn_send(c, line);
	}
}

static void flight_progress(void *arg, const struct pull_progress *pp);

static void
flight_free(struct flight *fl)
{
	ref_release(&fl->ref);
	free(fl->endpoint);
	free(fl->token);
	free(fl->include);
	free(fl->exclude);
	free(fl);
}

static void flight_done(void *arg);

static struct flight *
flight_find(struct daemon *d, const char *key)
{
	struct flight *fl;

	for (fl = d->flights; fl != NULL; fl = fl->next)
		if (strcmp(fl->key, key) == 0)
			return fl;
	return NULL;
}

/*
 * Starts fl's pull, charged to owner (NULL: nobody).  Returns 0; or -1
 * when it cannot start, with why in err, and then fl is done (its waiters
 * answered) and freed.
 */
static int
flight_launch(struct flight *fl, struct conn *owner, char *err, size_t errlen)
{
	struct daemon *d = fl->d;

	fl->queued = 0;
	fl->owner = owner;
	fl->started_ms = claim_now_ms();
	if (pull_ref_start(d->loop, &d->store, &d->index, &d->fetch, &fl->ref,
		1, &fl->o, &fl->r, flight_done, fl, &fl->op) < 0) {
		snprintf(err, errlen, "%s", fl->r.pull.message);
		if (fl->r.pull.error == PULL_OK)
			fl->r.pull.error = PULL_INTERNAL;
		fl->owner = NULL;
		flight_done(fl);
		return -1;
	}
	if (owner != NULL)
		owner->npulls++;
	log_info("pull '%s' started", fl->key);
	return 0;
}

/* Whether c may start one more pull now. */
static int
room(const struct conn *c)
{
	return c == NULL || c->npulls < c->d->conf.max_pulls;
}

/* Starts c's queued flights, oldest first, while it has room. */
static void
promote(struct conn *c)
{
	struct flight *fl, *oldest;
	char err[512];

	while (!c->closing && !c->d->stopping && room(c)) {
		oldest = NULL;
		for (fl = c->d->flights; fl != NULL; fl = fl->next)
			if (fl->queued && fl->owner == c)
				oldest = fl; /* the list is newest first */
		if (oldest == NULL)
			return;
		flight_launch(oldest, c, err, sizeof(err));
	}
}

/*
 * The flight for ref: the one in the air, or a new one, charged to owner
 * (NULL for a declared model), or queued when owner has no room.  NULL,
 * with why in err, when it cannot start.
 */
static struct flight *
flight_get(struct daemon *d, const char *text, const struct ref *parsed,
    struct conn *owner, char *err, size_t errlen)
{
	struct flight *fl;
	char *key = ref_canonical(parsed);
	const char *why;

	if (key == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((fl = flight_find(d, key)) != NULL) {
		free(key);
		/* Queued, but wanted by one with room: it goes now. */
		if (fl->queued && room(owner) &&
		    flight_launch(fl, owner, err, errlen) < 0)
			return NULL;
		return fl;
	}
	if ((fl = calloc(1, sizeof(*fl))) == NULL) {
		free(key);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(fl->key, sizeof(fl->key), "%s", key);
	free(key);
	fl->d = d;
	ref_init(&fl->ref);
	ref_parse(&fl->ref, text, &why);
	fl->endpoint = strdup(d->conf.hf_endpoint);
	fl->token = d->token != NULL ? strdup(d->token) : NULL;
	fl->o.hf.endpoint = fl->endpoint != NULL ? fl->endpoint : "";
	fl->o.hf.token = fl->token;
	fl->include = strdup(d->conf.include);
	fl->exclude = strdup(d->conf.exclude);
	if (fl->endpoint == NULL || fl->include == NULL ||
	    fl->exclude == NULL) {
		snprintf(err, errlen, "out of memory");
		flight_free(fl);
		return NULL;
	}
	fl->o.hf.ninclude =
	    conf_globs(fl->include, fl->o.hf.include, HF_PATTERNS_MAX);
	fl->o.hf.nexclude =
	    conf_globs(fl->exclude, fl->o.hf.exclude, HF_PATTERNS_MAX);
	fl->o.pull.progress = flight_progress;
	fl->o.pull.arg = fl;
	fl->started_ms = claim_now_ms();
	fl->next = d->flights;
	d->flights = fl;
	if (!room(owner)) {
		fl->queued = 1;
		fl->owner = owner;
		log_info("pull '%s' queued: connection %llu has %u pulls in"
			 " the air (max_pulls_per_client)",
		    fl->key, (unsigned long long)owner->id, owner->npulls);
		return fl;
	}
	return flight_launch(fl, owner, err, errlen) < 0 ? NULL : fl;
}

static void
flight_progress(void *arg, const struct pull_progress *pp)
{
	struct flight *fl = arg;
	struct conn *c;

	fl->done = pp->done;
	fl->total = pp->total;
	fl->reused = pp->reused;
	for (c = fl->waiters; c != NULL; c = c->next_waiter)
		conn_send(c,
		    proto_line(json_pack("{s:s, s:s, s:I, s:I, s:I}", "event",
			"progress", "model", c->model, "done_bytes",
			(json_int_t)pp->done, "total_bytes",
			(json_int_t)pp->total, "reused_bytes",
			(json_int_t)pp->reused)));
}

/*
 * The quota after a pull, enforced by the index's queue: what it needs is
 * copied in, what it did is copied out and logged on the loop.
 */
struct quota {
	struct index_job job;
	struct flight *fl;
	struct store *store;
	uint64_t max_size;
	int64_t stale_ms;
	struct found self; /* the snapshot just pulled ("" commit: none) */
	enum repo_type type;
	char repo[2 * REF_REPO_MAX + 2];
	uint64_t after, freed; /* the store's size planned, bytes freed */
	size_t evicted, kept;  /* snapshots removed, leased meanwhile */
	int dropped;	       /* the one just pulled, removed again */
};

/* Kept: what a live lease holds, and the snapshot just pulled. */
static int
skip_kept(void *arg, const char *folder, const char *commit)
{
	struct quota *q = arg;

	if (strcmp(folder, q->self.folder) == 0 &&
	    strcmp(commit, q->self.commit) == 0)
		return 1;
	return lease_live(q->store, folder, commit, q->stale_ms) != 0;
}

/* Removes a snapshot just pulled that the quota has no room for. */
static void
drop_new(struct quota *q, struct index *index)
{
	struct use u = { -1, 0 };

	if (q->self.commit[0] == '\0' ||
	    lease_live(q->store, q->self.folder, q->self.commit, q->stale_ms) !=
		0 ||
	    index_each_snapshot(index, q->type, q->repo, q->self.commit,
		snapshot_use, &u) < 0 ||
	    u.id < 0)
		return;
	q->dropped = snapshot_remove(q->store, index, q->self.folder,
			 q->self.commit, u.id, q->stale_ms, NULL) == 0;
}

/*
 * Evicts least recently used snapshots, neither pinned nor leased, until
 * the store fits the quota.  When it cannot fit with the new snapshot in,
 * the new snapshot goes (unless someone holds it): -ENOSPC.
 */
static int
quota_run(struct index_job *job, struct index *index)
{
	struct quota *q = job->data;
	struct gc_plan plan;
	size_t i;
	int rc;

	if ((rc = index_refresh(index, q->store)) < 0)
		return rc;
	rc = gc_plan(index, q->max_size, skip_kept, q, &plan);
	if (rc < 0)
		return rc;
	q->after = plan.after;
	if (plan.after > q->max_size) {
		gc_plan_release(&plan);
		drop_new(q, index);
		return -ENOSPC;
	}
	rc = gc_run(q->store, index, &plan, q->stale_ms, &q->freed);
	for (i = 0; i < plan.n; i++)
		q->evicted += !plan.victims[i].kept;
	q->kept = plan.n - q->evicted;
	gc_plan_release(&plan);
	return rc;
}

static void land_locate(struct flight *fl);

static void
quota_done(struct index_job *job, int rc)
{
	struct quota *q = job->data;
	struct flight *fl = q->fl;

	if (rc == -ENOSPC)
		log_warnx("quota %llu bytes cannot be met with '%s' in the"
			  " store (%llu bytes kept pinned or leased)",
		    (unsigned long long)q->max_size, fl->key,
		    (unsigned long long)q->after);
	if (q->dropped)
		log_info("quota: removed '%s' (commit %.12s) again",
		    q->self.folder, q->self.commit);
	if (q->evicted > 0)
		log_info("quota: evicted %zu snapshot(s), %llu bytes freed",
		    q->evicted, (unsigned long long)q->freed);
	if (q->kept > 0)
		log_info("quota: %zu snapshot(s) leased meanwhile: kept",
		    q->kept);
	fl->quota_rc = rc;
	free(q);
	land_locate(fl);
}

/*
 * After a pull: the quota goes to the index's queue (the flight lands
 * after it), or there is none to enforce.  1 when queued.
 */
static int
enforce_quota(struct daemon *d, struct flight *fl)
{
	struct store_place p;
	struct quota *q;

	if (d->conf.max_size == 0)
		return 0;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		fl->quota_rc = -ENOMEM;
		return 0;
	}
	q->fl = fl;
	q->store = &d->store;
	q->max_size = d->conf.max_size;
	q->stale_ms = d->store.stale_ms;
	/* The snapshot the pull published, when it is there, whole. */
	if (store_locate(&fl->ref, NULL, NULL, &p) == 0) {
		q->type = p.type;
		snprintf(q->repo, sizeof(q->repo), "%s", p.repo);
		snprintf(q->self.folder, sizeof(q->self.folder), "%s",
		    p.folder);
		snprintf(q->self.commit, sizeof(q->self.commit), "%s",
		    fl->r.commit);
		if (!whole(d, &fl->ref, &q->self))
			q->self.commit[0] = '\0';
		q->self.snap = NULL; /* the loop's cache: not the queue's */
	}
	q->job.data = q;
	index_queue(&d->index, d->loop, &q->job, quota_run, quota_done);
	return 1;
}

/* Answers one waiter of a landed flight, where it was located (or not). */
static void
answer(struct conn *c, struct flight *fl, const struct found *where,
    int located)
{
	enum pull_error e = fl->r.pull.error;
	struct found f = *where;
	int rc;

	uv_timer_stop(&c->timer);
	rc = located ? find(c, &fl->ref, &f) : 0;
	if (rc == 1) {
		send_ready(c, c->model, &f, e != PULL_OK);
	} else if (fl->quota_rc < 0 && fl->quota_rc != -ENOSPC) {
		conn_error(c, PROTO_INTERNAL, strerror(-fl->quota_rc));
	} else if (fl->quota_rc == -ENOSPC) {
		conn_error(c, PROTO_NO_SPACE,
		    "the store's quota cannot be met: other models are"
		    " pinned or in use");
	} else if (e != PULL_OK) {
		conn_error(c, (enum proto_error)e, fl->r.pull.message);
	} else {
		conn_error(c, PROTO_INTERNAL,
		    rc < 0 ? strerror(-rc)
			   : "the model was gone before it could be leased");
	}
	conn_resume(c);
}

/*
 * The end of a flight: the declared model's state, every waiter answered
 * (the model leased where it was located), the flight gone.
 */
static void
land(struct flight *fl, struct found *f, int located)
{
	struct daemon *d = fl->d;
	enum pull_error e = fl->r.pull.error;
	struct flight **pp;
	struct conn *c, *next;
	struct found probe;

	for (pp = &d->flights; *pp != NULL; pp = &(*pp)->next)
		if (*pp == fl) {
			*pp = fl->next;
			break;
		}
	if (fl->keep != NULL) {
		/* An unreachable origin leaves a stored model ready. */
		probe = *f;
		fl->keep->state = (e == PULL_OK && fl->quota_rc == 0) ||
			(e == PULL_NETWORK && located &&
			    whole(d, &fl->ref, &probe))
		    ? "ready"
		    : "failed";
		snprintf(fl->keep->error, sizeof(fl->keep->error), "%.500s",
		    e != PULL_OK	   ? fl->r.pull.message
			: fl->quota_rc < 0 ? "the quota cannot be met"
					   : "");
		snprintf(fl->keep->commit, sizeof(fl->keep->commit), "%s",
		    fl->r.commit);
	}
	for (c = fl->waiters; c != NULL; c = next) {
		next = c->next_waiter;
		c->waiting = NULL;
		c->next_waiter = NULL;
		answer(c, fl, f, located);
	}
	flight_free(fl);
}

static void
land_looked_up(struct lookup *lk, int found)
{
	land(lk->fl, &lk->f, found);
}

/*
 * Locates what the flight pulled (or, the origin unreachable, what the
 * store had), from the files or through the index's queue, then lands.
 */
static void
land_locate(struct flight *fl)
{
	enum pull_error e = fl->r.pull.error;
	struct lookup *lk;
	struct found f;
	int rc = -1;

	memset(&f, 0, sizeof(f));
	if ((e == PULL_OK && fl->quota_rc == 0) || e == PULL_NETWORK)
		rc = locate(fl->d, &fl->ref, &f);
	if (rc == 0 && (lk = lookup_new(fl->d, &fl->ref)) != NULL) {
		lk->then = land_looked_up;
		lk->fl = fl;
		lookup_queue(lk);
		return;
	}
	land(fl, &f, rc == 1);
}

/* The pull is over: the flight lands once the index's work is done. */
static void
flight_done(void *arg)
{
	struct flight *fl = arg;
	struct daemon *d = fl->d;
	struct conn *owner = NULL;

	fl->op = NULL;
	fl->landing = 1;
	if (fl->owner != NULL && !fl->queued) {
		owner = fl->owner;
		owner->npulls--;
	}
	fl->owner = NULL;
	if (fl->r.pull.claims_lost > 0)
		log_warnx("pull '%s': %u claim(s) taken over while this daemon"
			  " stalled: stood down, nothing published over them",
		    fl->key, fl->r.pull.claims_lost);
	if (fl->r.pull.error == PULL_OK) {
		log_info("pull '%s' done: commit %.12s, %llu bytes from the"
			 " origin, %llu reused, %.2f s",
		    fl->key, fl->r.commit,
		    (unsigned long long)fl->r.pull.bytes_origin,
		    (unsigned long long)fl->r.pull.bytes_reused,
		    (double)(claim_now_ms() - fl->started_ms) / 1000);
		if (fl->r.pull.unindexed)
			log_warnx("pull '%s': published, but another process"
				  " held the index past index_busy_timeout:"
				  " its row is written at the next use, or by"
				  " fsck",
			    fl->key);
		confirm_ref(d, &fl->ref);
	} else
		log_warnx("pull '%s' failed (%s): %s", fl->key,
		    err_name((enum err_code)fl->r.pull.error),
		    fl->r.pull.message);
	if (fl->r.pull.error != PULL_OK || !enforce_quota(d, fl))
		land_locate(fl);
	if (owner != NULL)
		promote(owner);
}

static void
unwait(struct conn *c)
{
	struct conn **pp;

	if (c->waiting == NULL)
		return;
	for (pp = &c->waiting->waiters; *pp != NULL; pp = &(*pp)->next_waiter)
		if (*pp == c) {
			*pp = c->next_waiter;
			break;
		}
	c->waiting = NULL;
	c->next_waiter = NULL;
}

static void
acquire_late(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->waiting == NULL && c->lookup == NULL)
		return;
	unwait(c);
	unlook(c);
	conn_error(c, PROTO_TIMEOUT, "the model is not ready yet");
	conn_resume(c);
}

/* The reference of an acquire, checked: one the daemon can pull. */
static int
parse_model(const char *text, struct ref *ref, char *err, size_t len)
{
	char name[2 * REF_REPO_MAX + 2];
	const char *why = NULL;

	if (ref_parse(ref, text, &why) < 0) {
		snprintf(err, len, "bad model '%.200s': %s", text, why);
		return -EINVAL;
	}
	if (ref->kind == REF_HTTPS && ref->sha256[0] == '\0') {
		snprintf(err, len, "an https:// model needs #sha256=");
		return -EINVAL;
	}
	if (ref->kind == REF_HTTPS &&
	    https_default_name(ref, name, sizeof(name)) < 0) {
		snprintf(err, len, "cannot name a model after '%.200s'",
		    ref->url);
		return -EINVAL;
	}
	if (ref->kind != REF_HF && ref->kind != REF_HTTPS) {
		snprintf(err, len, "only hf:// and https:// models");
		return -EINVAL;
	}
	return 0;
}

/*
 * Whether a client may acquire ref: the allow list matches its canonical
 * text, or the operator declared it (models: trusted configuration).
 * 1, 0, or a negative errno.
 */
static int
allowed(struct daemon *d, const struct ref *ref)
{
	const char *globs[CONF_GLOBS_MAX];
	char *key = ref_canonical(ref), *list = strdup(d->conf.allow), *k;
	struct ref other;
	size_t n, i;
	int rc = 0;

	if (key == NULL || list == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	n = conf_globs(list, globs, CONF_GLOBS_MAX);
	for (i = 0; i < n && rc == 0; i++)
		rc = fnmatch(globs[i], key, 0) == 0;
	for (i = 0; i < d->nkeeps && rc == 0; i++) {
		ref_init(&other);
		if (ref_parse(&other, d->keeps[i].text, NULL) == 0 &&
		    (k = ref_canonical(&other)) != NULL) {
			rc = strcmp(k, key) == 0;
			free(k);
		}
		ref_release(&other);
	}
out:
	free(key);
	free(list);
	return rc;
}

/*
 * The rest of an acquire of ref, once located (f, when located) or known
 * to be absent: the ready answer, or the flight to wait for.
 */
static void
acquire_located(struct conn *c, const struct ref *ref, struct found *f,
    int located, int wait, int64_t timeout_ms)
{
	struct daemon *d = c->d;
	struct flight *fl;
	char err[512];
	int rc;

	rc = located ? find(c, ref, f) : 0;
	if (rc < 0) {
		conn_error(c, PROTO_INTERNAL, strerror(-rc));
		goto out;
	}
	/* An imported model has no origin to confirm its ref with. */
	if (rc == 1 && f->snap->kind != SOURCE_HUB)
		f->fresh = 1;
	if (rc == 1 && (f->fresh || !wait)) {
		send_ready(c, c->model, f, 0);
		if (!f->fresh) /* refreshed behind the answer */
			flight_get(d, c->model, ref, c, err, sizeof(err));
		goto out;
	}
	if (rc ==
	    1) /* There, but the ref wants confirming: the flight decides. */
		unfind(c);
	if ((fl = flight_get(d, c->model, ref, c, err, sizeof(err))) == NULL) {
		conn_error(c, PROTO_INTERNAL, err);
		goto out;
	}
	if (!wait) {
		conn_send(c,
		    proto_ok_line(json_pack("{s:s, s:s, s:s, s:I, s:I}",
			"event", "state", "model", c->model, "state",
			fl->queued ? "queued" : "pulling", "done_bytes",
			(json_int_t)fl->done, "total_bytes",
			(json_int_t)fl->total)));
		goto out;
	}
	log_info("acquire '%s' (connection %llu, pid %d): waiting for the"
		 " pull%s",
	    c->model, (unsigned long long)c->id, (int)c->pid,
	    fl->queued ? " (queued)" : "");
	c->waiting = fl;
	c->next_waiter = fl->waiters;
	fl->waiters = c;
	if (timeout_ms > 0)
		uv_timer_start(&c->timer, acquire_late, (uint64_t)timeout_ms,
		    0);
	return; /* answered when the flight lands */
out:
	conn_resume(c);
}

static void
acquire_looked_up(struct lookup *lk, int found)
{
	struct conn *c = lk->c;
	uint64_t now, left = 0;
	struct ref ref;
	char err[512];

	if (c == NULL)
		return; /* gone, or timed out, meanwhile */
	c->lookup = NULL;
	uv_timer_stop(&c->timer);
	/* What is left of the acquire's timeout goes on with its flight. */
	now = uv_now(c->d->loop);
	if (lk->deadline > 0)
		left = lk->deadline > now ? lk->deadline - now : 1;
	ref_init(&ref);
	if (c->d->stopping) {
		conn_error(c, PROTO_SHUTTING_DOWN, "the daemon is stopping");
		conn_resume(c);
	} else if (parse_model(c->model, &ref, err, sizeof(err)) < 0) {
		conn_error(c, PROTO_INTERNAL, err); /* parsed before */
		conn_resume(c);
	} else
		acquire_located(c, &ref, &lk->f, found, lk->wait,
		    (int64_t)left);
	ref_release(&ref);
}

void
models_acquire(struct conn *c, const struct proto_req *req)
{
	struct daemon *d = c->d;
	struct lookup *lk;
	struct ref ref;
	struct found f;
	char err[512];
	int rc;

	ref_init(&ref);
	snprintf(c->model, sizeof(c->model), "%s", req->model);
	if (parse_model(req->model, &ref, err, sizeof(err)) < 0) {
		conn_error(c, PROTO_BAD_REQUEST, err);
		goto out;
	}
	if ((rc = allowed(d, &ref)) <= 0) {
		snprintf(err, sizeof(err),
		    rc < 0 ? "out of memory"
			   : "'%.400s' is not in the daemon's allow list (the"
			     " 'allow' key of modelcache.conf(5))",
		    req->model);
		/* Logged once a connection: a client cannot flood the log. */
		if (rc == 0 && c->refused++ == 0)
			log_warnx("acquire '%s' (connection %llu, pid %d, uid"
				  " %d): refused, not in the allow list",
			    req->model, (unsigned long long)c->id, (int)c->pid,
			    (int)c->uid);
		conn_error(c, rc < 0 ? PROTO_INTERNAL : PROTO_FORBIDDEN, err);
		goto out;
	}
	if (c->nleases >= d->conf.max_leases) {
		snprintf(err, sizeof(err),
		    "this connection holds %zu leases, the most"
		    " max_leases_per_client allows: release one first",
		    c->nleases);
		conn_error(c, PROTO_BUSY, err);
		goto out;
	}
	rc = locate(d, &ref, &f);
	if (rc == 0 && (lk = lookup_new(d, &ref)) != NULL) {
		/* Only the index knows: the connection waits for it. */
		log_debug("acquire '%s' (connection %llu, pid %d): waiting for"
			  " the index",
		    req->model, (unsigned long long)c->id, (int)c->pid);
		lk->then = acquire_looked_up;
		lk->c = c;
		lk->wait = req->wait;
		if (req->timeout_ms > 0) {
			lk->deadline =
			    uv_now(d->loop) + (uint64_t)req->timeout_ms;
			uv_timer_start(&c->timer, acquire_late,
			    (uint64_t)req->timeout_ms, 0);
		}
		c->lookup = lk;
		lookup_queue(lk);
		ref_release(&ref);
		return;
	}
	acquire_located(c, &ref, &f, rc == 1, req->wait, req->timeout_ms);
	ref_release(&ref);
	return;
out:
	ref_release(&ref);
	conn_resume(c);
}

void
models_release(struct conn *c, const struct proto_req *req)
{
	size_t i;

	for (i = 0; i < c->nleases; i++)
		if (strcmp(c->leases[i].id, req->lease) == 0) {
			unhold(c->d, c->leases[i].held);
			c->leases[i] = c->leases[--c->nleases];
			log_info("release of lease %s (connection %llu)",
			    req->lease, (unsigned long long)c->id);
			conn_send(c, proto_ok_line(json_object()));
			return;
		}
	conn_error(c, PROTO_NOT_FOUND, "no such lease on this connection");
}

/*
 * c's flights when c goes: started ones go on uncharged; a queued one
 * passes to its first waiter, or starts for a declared model, or goes.
 */
static void
disown(struct conn *c)
{
	struct daemon *d = c->d;
	struct flight *fl, **pp;
	char err[512];

again:
	for (pp = &d->flights; (fl = *pp) != NULL; pp = &fl->next) {
		if (fl->owner != c)
			continue;
		if (!fl->queued) {
			fl->owner = NULL;
			continue;
		}
		if (fl->waiters != NULL) {
			fl->owner = fl->waiters;
			if (room(fl->owner))
				flight_launch(fl, fl->owner, err, sizeof(err));
		} else if (fl->keep != NULL && !d->stopping) {
			flight_launch(fl, NULL, err, sizeof(err));
		} else {
			*pp = fl->next;
			log_info("pull '%s' dropped: queued for connection"
				 " %llu, which is gone",
			    fl->key, (unsigned long long)c->id);
			flight_free(fl);
		}
		goto again; /* the list may have changed */
	}
	c->npulls = 0;
}

void
models_conn_gone(struct conn *c)
{
	size_t i;

	unlook(c);
	unwait(c);
	disown(c);
	if (c->stream != NULL) {
		snap_put(c->stream);
		c->stream = NULL;
		free(c->stream_last);
		c->stream_last = NULL;
	}
	for (i = 0; i < c->nleases; i++)
		unhold(c->d, c->leases[i].held);
	if (c->nleases > 0)
		log_info("connection %llu gone: %zu lease(s) ended",
		    (unsigned long long)c->id, c->nleases);
	free(c->leases);
	c->leases = NULL;
	c->nleases = 0;
}

void
models_heartbeat(struct daemon *d)
{
	struct held *h;

	/* The beat thread touches them; this only asks what it found. */
	for (h = d->held; h != NULL; h = h->next)
		if (lease_touch(&d->store, &h->file) == -ENOENT) {
			/* Removed in a stall past the stale limit: again. */
			struct lease old = h->file;

			memset(&h->file, 0, sizeof(h->file));
			if (lease_take(&d->store, old.folder, old.commit,
				&h->file) < 0) {
				log_warnx("cannot renew lease %s", old.id);
				h->file = old;
			} else {
				lease_drop(&d->store, &old);
			}
		}
}

static int
keeps_ready(const struct daemon *d)
{
	size_t i;

	for (i = 0; i < d->nkeeps; i++)
		if (strcmp(d->keeps[i].state, "ready") != 0)
			return 0;
	return 1;
}

static json_t *
status_json(struct daemon *d)
{
	json_t *models = json_array(), *pulls = json_array(),
	       *leases = json_array();
	struct flight *fl;
	struct conn *c;
	size_t i;

	for (i = 0; i < d->nkeeps; i++)
		json_array_append_new(models,
		    json_pack("{s:s, s:s, s:s, s:s}", "model", d->keeps[i].text,
			"state", d->keeps[i].state, "commit",
			d->keeps[i].commit, "error", d->keeps[i].error));
	for (fl = d->flights; fl != NULL; fl = fl->next) {
		size_t n = 0;

		for (c = fl->waiters; c != NULL; c = c->next_waiter)
			n++;
		json_array_append_new(pulls,
		    json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:f}", "model",
			fl->key, "state", fl->queued ? "queued" : "pulling",
			"done_bytes", (json_int_t)fl->done, "total_bytes",
			(json_int_t)fl->total, "reused_bytes",
			(json_int_t)fl->reused, "clients", (json_int_t)n,
			"seconds",
			(double)(claim_now_ms() - fl->started_ms) / 1000));
	}
	for (c = d->conns; c != NULL; c = c->next)
		for (i = 0; i < c->nleases; i++)
			json_array_append_new(leases,
			    json_pack("{s:s, s:s, s:s, s:i, s:i}", "lease",
				c->leases[i].id, "folder",
				c->leases[i].held->file.folder, "commit",
				c->leases[i].held->file.commit, "pid",
				(int)c->pid, "uid", (int)c->uid));
	return json_pack("{s:s, s:s, s:f, s:b, s:i, s:o, s:o, s:o}", "server",
	    "modelcached/" PACKAGE_VERSION, "store", d->conf.store, "uptime_s",
	    (double)(claim_now_ms() - d->started_ms) / 1000, "ready",
	    keeps_ready(d), "connections", (int)d->nconns, "models", models,
	    "pulls", pulls, "leases", leases);
}

void
models_status(struct conn *c)
{
	conn_send(c, proto_ok_line(status_json(c->d)));
}

int
models_declare(struct daemon *d, const char *list, char *err, size_t errlen)
{
	struct keep *keeps = NULL;
	char *copy = strdup(list), *tok, *save = NULL;
	size_t n = 0, i;
	struct ref ref;
	int rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	ref_init(&ref);
	for (tok = strtok_r(copy, ", \t\n", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ", \t\n", &save)) {
		struct keep *k = reallocarray(keeps, n + 1, sizeof(*k));

		if (k == NULL) {
			rc = -ENOMEM;
			break;
		}
		keeps = k;
		if ((rc = parse_model(tok, &ref, err, errlen)) < 0)
			break;
		memset(&keeps[n], 0, sizeof(keeps[n]));
		if ((keeps[n].text = strdup(tok)) == NULL)
			rc = -ENOMEM;
		keeps[n++].state = "absent";
	}
	ref_release(&ref);
	free(copy);
	if (rc < 0) {
		for (i = 0; i < n; i++)
			free(keeps[i].text);
		free(keeps);
		return rc;
	}
	/* A model declared before keeps its state: a reload is no restart. */
	for (i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < d->nkeeps; k++)
			if (strcmp(d->keeps[k].text, keeps[i].text) == 0) {
				keeps[i].state = d->keeps[k].state;
				memcpy(keeps[i].error, d->keeps[k].error,
				    sizeof(keeps[i].error));
				memcpy(keeps[i].commit, d->keeps[k].commit,
				    sizeof(keeps[i].commit));
			}
	}
	models_release_all(d);
	d->keeps = keeps;
	d->nkeeps = n;
	return 0;
}

void
models_release_all(struct daemon *d)
{
	struct flight *fl;
	size_t i;

	for (fl = d->flights; fl != NULL; fl = fl->next)
		fl->keep = NULL;
	for (i = 0; i < d->nkeeps; i++)
		free(d->keeps[i].text);
	free(d->keeps);
	d->keeps = NULL;
	d->nkeeps = 0;
}

void
models_keep(struct daemon *d)
{
	struct flight *fl;
	struct ref ref;
	char err[512];
	size_t i;

	for (i = 0; i < d->nkeeps && !d->stopping; i++) {
		struct keep *k = &d->keeps[i];

		ref_init(&ref);
		if (parse_model(k->text, &ref, err, sizeof(err)) == 0 &&
		    (fl = flight_get(d, k->text, &ref, NULL, err,
			 sizeof(err))) != NULL) {
			fl->keep = k;
			if (strcmp(k->state, "ready") != 0)
				k->state = "pulling";
		} else {
			k->state = "failed";
			snprintf(k->error, sizeof(k->error), "%.500s", err);
		}
		ref_release(&ref);
	}
}

int
models_stop(struct daemon *d)
{
	struct flight *fl;

again:
	for (fl = d->flights; fl != NULL; fl = fl->next)
		if (fl->queued) {
			fl->r.pull.error = PULL_STOPPED;
			snprintf(fl->r.pull.message, sizeof(fl->r.pull.message),
			    "shutting down");
			flight_done(fl);
			goto again;
		}
	for (fl = d->flights; fl != NULL; fl = fl->next)
		if (!fl->landing)
			pull_ref_stop(fl->op);
	return d->flights != NULL;
}
