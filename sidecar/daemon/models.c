/*
 * models: what modelcached does with models (see daemon.h): acquire and
 * release, leases, declared models, status.
 *
 * An acquire is answered from the store when the model is there and its
 * ref is fresh (confirmed at the origin within the refresh interval; a
 * commit id or an https:// digest never needs confirming).  Otherwise the
 * reference goes to a flight (flights.c), whose landing answers its
 * waiters (models_answer()).  When the origin cannot be reached and the
 * store has the model, the answer is the stored one, marked stale.  Every
 * ready answer carries a lease, taken before the snapshot is checked
 * complete (snaps.c).
 *
 * Limits, per connection: at most max_leases_per_client leases, and at
 * most max_pulls_per_client flights started for it at once (flights.c).
 * Only references the allow list matches (or that the operator declared)
 * are acquired.
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
 * for the index (struct lookup).
 */
#include "config.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "claim.h"
#include "daemon.h"
#include "hub.h"
#include "log.h"
#include "origin_https.h"

/*
 * Where ref would be in the store, from the files: a named revision is its
 * ref file, a full commit id names itself (snap_whole() then checks that
 * it is there).  1 (f filled in); 0 when only the index can say (a commit
 * prefix, or a revision without its ref file: lookup_new()); -1 when ref
 * has no place in the store.
 */
int
models_locate(struct daemon *d, const struct ref *ref, struct found *f)
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
 * A lookup of ref (which models_locate() left to the index), not yet
 * queued: the caller sets then and its fields, and queues it
 * (lookup_queue()), which frees it after then().  NULL when out of memory.
 */
struct lookup *
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
	/* (A full commit id never comes here: models_locate() answers it.) */
	lk->f.fresh = ref->kind != REF_HF;
	return lk;
}

void
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
	if (!snap_whole(d, ref, f)) {
		unhold(d, l->held);
		c->nleases--;
		return 0;
	}
	return 1;
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
	snap_touch(c->d, f);
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

/* Answers one waiter of a landed flight, where it was located (or not). */
void
models_answer(struct conn *c, struct flight *fl, const struct found *where,
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
	rc = models_locate(d, &ref, &f);
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

void
models_conn_gone(struct conn *c)
{
	size_t i;

	unlook(c);
	unwait(c);
	flight_disown(c);
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
