/*
 * test_gc: unit tests for src/gc.c's quota after a pull (gc_quota()), on a
 * real store and index (fixture.h).
 *
 * Three models, a (used first), b (used after) and c (just pulled), each
 * one file of its own.  A quota with room for b and c evicts a, the least
 * recently used, and nothing else; one with no room for c alone evicts
 * nothing and removes c again (-ENOSPC), unless a lease holds c; a leased
 * model is never evicted, the next least recently used goes instead.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "unit_store.h"
#include "fixture.h"

#include "gc.h"
#include "index.h"
#include "lease.h"
#include "manifest.h"
#include "snapshot.h"
#include "store.h"

struct model {
	char folder[REF_FOLDER_MAX];
	char repo[32];
	char commit[DIGEST_SHA1_HEX + 1];
	uint64_t size;
	int64_t id;
};

/* Publishes repo with one file of content, used last at time used. */
static void
model(struct fixture *fx, const char *repo, const char *content, int64_t used,
    struct model *out)
{
	struct manifest m;
	struct blob b;

	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, repo,
			     "file:///models/x"),
	    0);
	fixture_add_file(fx, &m, "w.bin", content, 1, &b);
	assert_int_equal(manifest_add_revision(&m, "main"), 0);
	assert_int_equal(manifest_derive_commit(&m), 0);
	assert_int_equal(snapshot_publish(&fx->store, &fx->index, &m, used), 0);
	unit_fmt(out->repo, sizeof(out->repo), "%s", repo);
	unit_fmt(out->commit, sizeof(out->commit), "%s", m.commit);
	assert_int_equal(ref_folder_of(REPO_MODEL, repo, out->folder,
			     sizeof(out->folder)),
	    0);
	out->size = b.size;
	out->id = fixture_one(fx, m.commit).id;
	assert_int_equal(index_touch(&fx->index, out->id, used), 0);
	manifest_release(&m);
}

static void
three(struct fixture *fx, struct model *a, struct model *b, struct model *c)
{
	model(fx, "org/a", "the bytes of model a", 1000, a);
	model(fx, "org/b", "the bytes of model b, a few more", 2000, b);
	model(fx, "org/c", "the bytes of model c, the one just pulled", 3000,
	    c);
}

/* A quota keeping c, the model just pulled. */
static void
quota_for(struct gc_quota *q, uint64_t max_size, const struct model *c)
{
	memset(q, 0, sizeof(*q));
	q->max_size = max_size;
	q->stale_ms = 60000;
	q->type = REPO_MODEL;
	unit_fmt(q->repo, sizeof(q->repo), "%s", c->repo);
	unit_fmt(q->folder, sizeof(q->folder), "%s", c->folder);
	unit_fmt(q->commit, sizeof(q->commit), "%s", c->commit);
}

/* The index rows of m: 1 while it is there, 0 once evicted. */
static size_t
rows_of(struct fixture *fx, const struct model *m)
{
	struct fixture_snaps s;

	fixture_snaps(fx, REPO_MODEL, m->repo, m->commit, &s);
	return s.n;
}

static void
test_quota_evicts_lru(void **state)
{
	struct fixture *fx = *state;
	struct model a, b, c;
	struct gc_quota q;

	three(fx, &a, &b, &c);
	quota_for(&q, b.size + c.size, &c);
	assert_int_equal(gc_quota(&fx->store, &fx->index, &q), 0);
	assert_int_equal(q.evicted, 1);
	assert_int_equal(q.kept, 0);
	assert_int_equal(q.freed, a.size);
	assert_int_equal(q.after, b.size + c.size);
	assert_false(q.dropped);
	assert_int_equal(rows_of(fx, &a), 0);
	assert_int_equal(rows_of(fx, &b), 1);
	assert_int_equal(rows_of(fx, &c), 1);
}

static void
test_quota_keeps_leased(void **state)
{
	struct fixture *fx = *state;
	struct model a, b, c;
	struct gc_quota q;
	struct lease l = { 0 };

	three(fx, &a, &b, &c);
	assert_int_equal(lease_take(&fx->store, a.folder, a.commit, &l), 0);
	quota_for(&q, a.size + c.size, &c);
	assert_int_equal(gc_quota(&fx->store, &fx->index, &q), 0);
	/* Planned around the lease, not found leased while evicting. */
	assert_int_equal(q.evicted, 1);
	assert_int_equal(q.kept, 0);
	assert_int_equal(q.freed, b.size);
	assert_int_equal(q.after, a.size + c.size);
	assert_int_equal(rows_of(fx, &a), 1);
	assert_int_equal(rows_of(fx, &b), 0);
	assert_int_equal(rows_of(fx, &c), 1);
	lease_drop(&fx->store, &l);
}

static void
test_quota_no_room(void **state)
{
	struct fixture *fx = *state;
	struct model a, b, c;
	struct gc_quota q;

	three(fx, &a, &b, &c);
	quota_for(&q, c.size - 1, &c);
	assert_int_equal(gc_quota(&fx->store, &fx->index, &q), -ENOSPC);
	assert_int_equal(q.evicted, 0);
	assert_int_equal(q.freed, 0);
	assert_true(q.dropped);
	assert_int_equal(rows_of(fx, &a), 1);
	assert_int_equal(rows_of(fx, &b), 1);
	assert_int_equal(rows_of(fx, &c), 0);
}

static void
test_quota_no_room_leased(void **state)
{
	struct fixture *fx = *state;
	struct model a, b, c;
	struct gc_quota q;
	struct lease l = { 0 };

	three(fx, &a, &b, &c);
	assert_int_equal(lease_take(&fx->store, c.folder, c.commit, &l), 0);
	quota_for(&q, c.size - 1, &c);
	assert_int_equal(gc_quota(&fx->store, &fx->index, &q), -ENOSPC);
	assert_false(q.dropped);
	assert_int_equal(rows_of(fx, &a), 1);
	assert_int_equal(rows_of(fx, &b), 1);
	assert_int_equal(rows_of(fx, &c), 1);
	lease_drop(&fx->store, &l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_quota_evicts_lru,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_quota_keeps_leased,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_quota_no_room,
		    fixture_setup_index, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_quota_no_room_leased,
		    fixture_setup_index, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
