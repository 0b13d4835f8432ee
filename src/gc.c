/*
 * gc: eviction planning (see gc.h).
 *
 * The plan is computed from one consistent read of the index: every file
 * row as (snapshot, blob, size), sorted by blob.  From it we keep, per blob,
 * its size and how many snapshots still use it, and per use the blob's
 * slot; evicting a snapshot decrements its blobs and frees those that reach
 * zero.  Memory is linear in the number of file rows.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "lease.h"
#include "snapshot.h"

struct use {
	int64_t snapshot;
	size_t blob;
};

struct usage {
	struct use *uses;
	size_t nuses, capuses;
	uint64_t *size; /* per blob */
	uint32_t *refs; /* per blob */
	size_t nblobs, capsize, caprefs;
	char last[DIGEST_HEX_MAX];
	uint64_t total;
};

static int
grow(void **v, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap == 0 ? 256 : *cap * 2;
	void *p;

	if (need < *cap)
		return 0;
	p = reallocarray(*v, n, elem);
	if (p == NULL)
		return -ENOMEM;
	*v = p;
	*cap = n;
	return 0;
}

static int
add_use(void *arg, int64_t snapshot, const char *sha256, uint64_t size)
{
	struct usage *u = arg;
	int rc;

	if (strcmp(sha256, u->last) != 0) {
		if ((rc = grow((void **)&u->size, &u->capsize, u->nblobs,
			 sizeof(*u->size))) < 0 ||
		    (rc = grow((void **)&u->refs, &u->caprefs, u->nblobs,
			 sizeof(*u->refs))) < 0)
			return rc;
		u->size[u->nblobs] = size;
		u->refs[u->nblobs] = 0;
		u->nblobs++;
		u->total += size;
		snprintf(u->last, sizeof(u->last), "%s", sha256);
	}
	if ((rc = grow((void **)&u->uses, &u->capuses, u->nuses,
		 sizeof(*u->uses))) < 0)
		return rc;
	u->uses[u->nuses].snapshot = snapshot;
	u->uses[u->nuses].blob = u->nblobs - 1;
	u->nuses++;
	u->refs[u->nblobs - 1]++;
	return 0;
}

static int
use_cmp(const void *a, const void *b)
{
	const struct use *x = a, *y = b;

	if (x->snapshot != y->snapshot)
		return x->snapshot < y->snapshot ? -1 : 1;
	return x->blob < y->blob ? -1 : x->blob > y->blob;
}

/* Evicts a snapshot in the model: returns the bytes that frees. */
static uint64_t
evict(struct usage *u, int64_t snapshot)
{
	struct use key = { snapshot, 0 };
	uint64_t freed = 0;
	size_t lo = 0, hi = u->nuses, mid;

	/* Lower bound of the snapshot's run of uses. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (use_cmp(&u->uses[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < u->nuses && u->uses[lo].snapshot == snapshot; lo++)
		if (--u->refs[u->uses[lo].blob] == 0)
			freed += u->size[u->uses[lo].blob];
	return freed;
}

struct planner {
	struct usage usage;
	struct gc_plan *plan;
	uint64_t max, total;
	int (*skip)(void *, const char *, const char *);
	void *arg;
};

static int
consider(void *arg, const struct index_snapshot *s)
{
	struct planner *p = arg;
	struct gc_victim *v;

	if (p->total <= p->max)
		return 1; /* done: stop the walk */
	if (s->pinned) {
		p->plan->kept_pinned += s->size;
		return 0;
	}
	if (p->skip != NULL && p->skip(p->arg, s->folder, s->commit)) {
		p->plan->kept_leased += s->size;
		return 0;
	}
	v = reallocarray(p->plan->victims, p->plan->n + 1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	p->plan->victims = v;
	v = &v[p->plan->n++];
	memset(v, 0, sizeof(*v));
	v->id = s->id;
	v->last_used = s->last_used;
	snprintf(v->folder, sizeof(v->folder), "%s", s->folder);
	snprintf(v->repo, sizeof(v->repo), "%s", s->repo);
	snprintf(v->commit, sizeof(v->commit), "%s", s->commit);
	v->frees = evict(&p->usage, s->id);
	p->total -= v->frees;
	return 0;
}

int
gc_plan(struct index *index, uint64_t max_size,
    int (*skip)(void *, const char *, const char *), void *arg,
    struct gc_plan *plan)
{
	struct planner p;
	int rc;

	memset(plan, 0, sizeof(*plan));
	memset(&p, 0, sizeof(p));
	p.plan = plan;
	p.max = max_size;
	p.skip = skip;
	p.arg = arg;
	if ((rc = index_each_use(index, add_use, &p.usage)) < 0)
		goto out;
	if (p.usage.nuses > 1)
		qsort(p.usage.uses, p.usage.nuses, sizeof(*p.usage.uses),
		    use_cmp);
	p.total = plan->before = p.usage.total;
	rc = index_each_snapshot(index, REPO_MODEL, NULL, NULL, consider, &p);
	if (rc == 1)
		rc = 0;
	plan->after = p.total;
out:
	free(p.usage.uses);
	free(p.usage.size);
	free(p.usage.refs);
	if (rc < 0)
		gc_plan_release(plan);
	return rc;
}

void
gc_plan_release(struct gc_plan *plan)
{
	free(plan->victims);
	memset(plan, 0, sizeof(*plan));
}

int
gc_run(struct store *store, struct index *index, struct gc_plan *plan,
    int64_t stale_ms, uint64_t *freed)
{
	struct snapshot_blobs left = { NULL, 0, 0 };
	struct gc_victim *v;
	size_t i;
	int rc = 0, drop;

	*freed = 0;
	/* What a killed removal left aside: put back when leased, or dropped. */
	rc = snapshot_recover_asides(store, index, stale_ms);
	for (i = 0; rc == 0 && i < plan->n; i++) {
		v = &plan->victims[i];
		rc = snapshot_unpublish(store, index, v->folder, v->commit,
		    v->id, stale_ms, &left);
		if (rc == -EBUSY) {
			v->kept = 1;
			rc = 0;
		}
	}
	drop = snapshot_drop_blobs(store, index, &left, stale_ms, freed);
	snapshot_blobs_release(&left);
	return rc < 0 ? rc : drop;
}

/* gc_quota()'s store and quota, for gc_plan()'s skip. */
struct quota_run {
	struct store *store;
	struct gc_quota *q;
};

/* Kept: what a live lease holds, and the snapshot just pulled. */
static int
skip_kept(void *arg, const char *folder, const char *commit)
{
	struct quota_run *r = arg;
	struct gc_quota *q = r->q;

	if (strcmp(folder, q->folder) == 0 && strcmp(commit, q->commit) == 0)
		return 1;
	return lease_live(r->store, folder, commit, q->stale_ms) != 0;
}

static int
snapshot_id(void *arg, const struct index_snapshot *s)
{
	*(int64_t *)arg = s->id;
	return 1;
}

/* Removes a snapshot just pulled that the quota has no room for. */
static void
drop_new(struct store *store, struct index *index, struct gc_quota *q)
{
	int64_t id = -1;

	if (q->commit[0] == '\0' ||
	    lease_live(store, q->folder, q->commit, q->stale_ms) != 0 ||
	    index_each_snapshot(index, q->type, q->repo, q->commit, snapshot_id,
		&id) < 0 ||
	    id < 0)
		return;
	q->dropped = snapshot_remove(store, index, q->folder, q->commit, id,
			 q->stale_ms, NULL) == 0;
}

int
gc_quota(struct store *store, struct index *index, struct gc_quota *q)
{
	struct quota_run r = { store, q };
	struct gc_plan plan;
	size_t i;
	int rc;

	if ((rc = index_refresh(index, store)) < 0)
		return rc;
	rc = gc_plan(index, q->max_size, skip_kept, &r, &plan);
	if (rc < 0)
		return rc;
	q->after = plan.after;
	if (plan.after > q->max_size) {
		gc_plan_release(&plan);
		drop_new(store, index, q);
		return -ENOSPC;
	}
	rc = gc_run(store, index, &plan, q->stale_ms, &q->freed);
	for (i = 0; i < plan.n; i++)
		q->evicted += !plan.victims[i].kept;
	q->kept = plan.n - q->evicted;
	gc_plan_release(&plan);
	return rc;
}
