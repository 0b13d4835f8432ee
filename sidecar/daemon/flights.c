/*
 * flights: modelcached's pulls in the air (see daemon.h).
 *
 * A flight is one pull_ref for everyone who wants that reference,
 * declared models included, with progress sent to each waiter once a
 * second.
 *
 * Limits, per connection: at most max_pulls_per_client flights started
 * for it at once (the flight's owner is charged), the others wait in the
 * air, queued (op NULL), and start as its pulls end.  A queued flight that
 * someone with room (or a declared model) also wants starts at once,
 * charged to that one.  When the owner hangs up, its started flights go on
 * uncharged (declared models and other waiters may want them, and a later
 * acquire finds the bytes), and a queued one passes to its first waiter,
 * or starts uncharged for a declared model, or is dropped.
 *
 * A finished pull's flight stays in the air, "landing", while the index's
 * queue enforces the quota (gc_quota()) and locates the model; its
 * waiters (and those who come meanwhile) are answered after.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "claim.h"
#include "daemon.h"
#include "gc.h"
#include "hub.h"
#include "log.h"

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
struct flight *
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
 * The quota after a pull, enforced by the index's queue (gc_quota()): what
 * it needs is copied in, what it did is copied out and logged on the loop.
 */
struct quota {
	struct index_job job;
	struct flight *fl;
	struct store *store;
	struct gc_quota q;
};

static int
quota_run(struct index_job *job, struct index *index)
{
	struct quota *qj = job->data;

	return gc_quota(qj->store, index, &qj->q);
}

static void land_locate(struct flight *fl);

static void
quota_done(struct index_job *job, int rc)
{
	struct quota *qj = job->data;
	struct gc_quota *q = &qj->q;
	struct flight *fl = qj->fl;

	if (rc == -ENOSPC)
		log_warnx("quota %llu bytes cannot be met with '%s' in the"
			  " store (%llu bytes kept pinned or leased)",
		    (unsigned long long)q->max_size, fl->key,
		    (unsigned long long)q->after);
	if (q->dropped)
		log_info("quota: removed '%s' (commit %.12s) again", q->folder,
		    q->commit);
	if (q->evicted > 0)
		log_info("quota: evicted %zu snapshot(s), %llu bytes freed",
		    q->evicted, (unsigned long long)q->freed);
	if (q->kept > 0)
		log_info("quota: %zu snapshot(s) leased meanwhile: kept",
		    q->kept);
	fl->quota_rc = rc;
	free(qj);
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
	struct quota *qj;
	struct gc_quota *q;
	struct found self;

	if (d->conf.max_size == 0)
		return 0;
	if ((qj = calloc(1, sizeof(*qj))) == NULL) {
		fl->quota_rc = -ENOMEM;
		return 0;
	}
	qj->fl = fl;
	qj->store = &d->store;
	q = &qj->q;
	q->max_size = d->conf.max_size;
	q->stale_ms = d->store.stale_ms;
	/* The snapshot the pull published, when it is there, whole. */
	if (store_locate(&fl->ref, NULL, NULL, &p) == 0) {
		q->type = p.type;
		snprintf(q->repo, sizeof(q->repo), "%s", p.repo);
		snprintf(q->folder, sizeof(q->folder), "%s", p.folder);
		memset(&self, 0, sizeof(self));
		snprintf(self.folder, sizeof(self.folder), "%s", p.folder);
		snprintf(self.commit, sizeof(self.commit), "%s", fl->r.commit);
		/* (self.snap is the loop's cache: not the queue's.) */
		if (snap_whole(d, &fl->ref, &self))
			snprintf(q->commit, sizeof(q->commit), "%s",
			    self.commit);
	}
	qj->job.data = qj;
	index_queue(&d->index, d->loop, &qj->job, quota_run, quota_done);
	return 1;
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
			    snap_whole(d, &fl->ref, &probe))
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
		models_answer(c, fl, f, located);
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
		rc = models_locate(fl->d, &fl->ref, &f);
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

/*
 * c's flights when c goes: started ones go on uncharged; a queued one
 * passes to its first waiter, or starts for a declared model, or goes.
 */
void
flight_disown(struct conn *c)
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

int
flights_stop(struct daemon *d)
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
